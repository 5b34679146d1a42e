"""The app against the documented contract only (docs/service-contract.md), end to end.

The emulator runs its ``documented`` profile: client job names and repeatability ids are
ignored, a Failed job carries no error text, cancelling a finished job is refused, job ids are
bare names (the workspace comes from ``AML_WORKSPACE_ID``). Each test is one of issue 10's
"done when" behaviours, through devhost with the real app.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from batch_endpoint import ARM_JOBS_API_VERSION
from scripts.devstack import EMULATOR_WORKSPACE_ID, Stack, wait_until
from tests.e2e.conftest import INPUT_FOLDER, make_stack
from tests.support import Azurite

pytestmark = pytest.mark.e2e

NEVER_ENDS = {
    "endpoint": "heart-classifier",
    "kind": "job",
    "count": 1,
    "script": [["Running", 86400.0]],
    "outcome": "Completed",
}


@pytest.fixture(scope="module")
def stack(
    azurite: Azurite, sample_data: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    s = make_stack(
        tmp_path_factory.mktemp("contract-stack"),
        azurite,
        contract="documented",
        phase_seconds=0.3,
        settings={
            "SCHEDULED_INPUT_URI": "",
            "POLL_INTERVAL_SECONDS": "1",
            "CANCEL_GRACE_SECONDS": "30",
            "SCORING_BLOB_PATH": "contract-input/{name}",
            "OUTPUT_URI_TEMPLATE": (
                "azureml://datastores/workspaceblobstore/paths/e2e-contract/{run_id}"
                "/predictions.csv"
            ),
        },
    )
    try:
        yield s
    finally:
        s.stop()


def _fault(stack: Stack, fault: dict) -> None:
    requests.post(f"{stack.emulator_url}/admin/faults", json=fault, timeout=5).raise_for_status()


def _start(stack: Stack, **params) -> str:
    resp = stack.api(
        "POST", "runs", json={"endpoint_input_uri": INPUT_FOLDER, "poll_interval": 1, **params}
    )
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def _arm_job(stack: Stack, name: str) -> dict:
    """The job as ARM shows it (``Jobs_Get``), not as the app last saw it."""
    resp = requests.get(
        f"{stack.emulator_url}{EMULATOR_WORKSPACE_ID}/jobs/{name}",
        params={"api-version": ARM_JOBS_API_VERSION},
        headers={"Authorization": "Bearer local-dev"},
        timeout=5,
    )
    resp.raise_for_status()
    return dict(resp.json())


def test_an_invoke_whose_answer_is_lost_leaves_exactly_one_job(stack: Stack):
    before = stack.emulator_counters()["jobs_created"]
    _fault(stack, {"endpoint": "heart-classifier", "route": "invoke", "kind": "drop"})

    view = stack.wait_run(_start(stack))

    assert view["runtime_status"] == "Completed"
    # The service ignored the client's name; the run found its job through the ARM Jobs list
    # (property batch_run_key) instead of submitting a second one.
    assert stack.emulator_counters()["jobs_created"] == before + 1


def test_a_deadline_on_a_job_that_never_ends_leaves_it_canceled_on_the_service(stack: Stack):
    _fault(stack, NEVER_ENDS)

    view = stack.wait_run(_start(stack, timeout=4))

    assert view["runtime_status"] == "Failed"
    assert "did not finish before the run's deadline" in view["error"]
    assert "it was cancelled and ended Canceled" in view["error"]
    assert _arm_job(stack, view["job_name"])["properties"]["status"] == "Canceled"


def test_a_refused_cancel_fails_the_run_with_the_refusal_within_one_poll(stack: Stack):
    _fault(stack, NEVER_ENDS)
    run_id = _start(stack)
    wait_until(
        lambda: stack.run_view(run_id).get("job_status") == "Running",
        timeout=30,
        what="the job to run",
    )
    job_name = stack.run_view(run_id)["job_name"]
    _fault(
        stack,
        {
            "endpoint": "heart-classifier",
            "route": "cancel",
            "kind": "http_error",
            "status": 403,
            "job": job_name,
            "count": 10,
        },
    )
    polls_before = stack.run_view(run_id)["polls"]

    assert stack.api("POST", f"runs/{run_id}/cancel").status_code == 202
    view = stack.wait_run(run_id)

    assert view["runtime_status"] == "Failed"
    assert "was refused" in view["error"]
    assert "403" in view["error"]
    assert "may still be running" in view["error"]
    assert view["polls"] <= polls_before + 1  # it did not poll on after the refusal
    assert _arm_job(stack, job_name)["properties"]["status"] == "Running"


def test_a_failed_job_without_error_text_gives_the_studio_link(stack: Stack, azurite: Azurite):
    from azure.storage.blob import BlobServiceClient

    existing = "e2e-contract/existing/predictions.csv"
    BlobServiceClient.from_connection_string(azurite.connection_string).get_blob_client(
        "azureml-blobstore", existing
    ).upload_blob(b"already here\n", overwrite=True)

    view = stack.wait_run(
        _start(
            stack, endpoint_output_uri=f"azureml://datastores/workspaceblobstore/paths/{existing}"
        )
    )

    assert view["runtime_status"] == "Failed"
    assert "the service reported no error detail" in view["error"]
    assert "Studio: https://ml.azure.com/runs/" in view["error"]


def test_a_job_stuck_in_queued_is_cancelled_by_the_watchdog(stack: Stack):
    _fault(stack, {**NEVER_ENDS, "script": [["Queued", 86400.0]]})

    view = stack.wait_run(_start(stack, max_queued_seconds=2))

    assert view["runtime_status"] == "Failed"
    assert "stayed Queued for" in view["error"]
    assert "max_queued_seconds=2" in view["error"]
    assert "it was cancelled and ended Canceled" in view["error"]
    assert _arm_job(stack, view["job_name"])["properties"]["status"] == "Canceled"
