"""End-to-end fixtures: the real app served by devhost, the emulator and Azurite, as processes."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.devstack import Stack
from tests.support import Azurite

INPUT_FOLDER = "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/"


def make_stack(tmp: Path, azurite: Azurite, **kwargs) -> Stack:
    stack = Stack(
        run_dir=tmp,
        azurite_port=azurite.port,
        azurite_queue_port=azurite.queue_port,
        external_azurite=True,
        **kwargs,
    )
    stack.start()
    return stack


@pytest.fixture(scope="session")
def sample_data(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The emulator's sample CSVs (303 rows in 4 files), uploaded under heart-unlabeled/."""
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("sample-data")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "aml_emulator",
            "sample-data",
            "--out",
            str(out),
            "--upload",
            "--storage-connection-string",
            azurite.connection_string,
        ],
        check=True,
        capture_output=True,
    )
    return sorted(out.glob("*.csv"))


@pytest.fixture(scope="module", params=["documented", "lenient"])
def stack(
    request: pytest.FixtureRequest,
    azurite: Azurite,
    sample_data: list[Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """One devhost + emulator for a test module, once per emulator profile (the documented
    contract and the lenient one; docs/service-contract.md); the schedule is off."""
    s = make_stack(
        tmp_path_factory.mktemp("stack"),
        azurite,
        contract=request.param,
        phase_seconds=0.3,
        settings={
            "SCHEDULED_INPUT_URI": "",
            "POLL_INTERVAL_SECONDS": "1",
            # Azurite is shared by both profiles' stacks: each writes and watches its own paths.
            "SCORING_BLOB_PATH": f"scoring-input-{request.param}/{{name}}",
            "OUTPUT_URI_TEMPLATE": (
                f"azureml://datastores/workspaceblobstore/paths/e2e-{request.param}/{{run_id}}"
                "/predictions.csv"
            ),
        },
    )
    try:
        yield s
    finally:
        s.stop()
