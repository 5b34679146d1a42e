"""Fuzz fixtures: the app served by devhost with the *documented default* bounds, and the spec.

docs/openapi.yaml states the default app-setting bounds (poll interval 10-3600 s, timeout up to
30 days). The e2e stack shortens them for speed; here they are the defaults, so that every
bound the spec states is the bound the running app enforces.

Runs started by valid requests score a tiny folder (3 rows) where the test chooses the input,
and poll at most every 10 s, so the emulator sees about one job per started run.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from azure.storage.blob import BlobServiceClient
from schemathesis.specs.openapi.schemas import OpenApiSchema

from aml_emulator import generate_sample_files
from scripts.devstack import DATASTORE_CONTAINER, REPO_ROOT, Stack
from tests.support import Azurite

SPEC_PATH: Path = REPO_ROOT / "docs" / "openapi.yaml"

#: App settings for the fuzz stack: the documented defaults, and no timer runs.
DEFAULT_BOUNDS = {
    "POLL_INTERVAL_SECONDS": "120",
    "POLL_INTERVAL_MIN": "10",
    "POLL_INTERVAL_MAX": "3600",
    "RUN_TIMEOUT_SECONDS": "86400",
    "RUN_TIMEOUT_MAX_SECONDS": "2592000",
    "SCHEDULED_INPUT_URI": "",
}

#: Notifications and the output hand-off on, for the hosts of the spec's examples, so that a
#: valid ``notify_url`` / ``copy_output_to`` is accepted (their deliveries fail offline).
HANDOFF_SETTINGS = {
    "NOTIFY_ALLOWED_HOSTS": "hooks.example.com",
    "NOTIFY_SIGNING_SECRET": "fuzz-signing-secret-0123456789",
    "COPY_ALLOWED_HOSTS": "*.blob.core.windows.net,*.dfs.core.windows.net",
    "OUTPUT_DATASTORE_URLS": "workspaceblobstore=https://fuzzws01.blob.core.windows.net/azureml",
}

TINY_PREFIX = "fuzz-tiny"
#: A folder with one 3-row CSV: what valid requests built by the tests score.
TINY_INPUT = f"azureml://datastores/workspaceblobstore/paths/{TINY_PREFIX}/"


@dataclass(frozen=True)
class FuzzEnv:
    """The running stack, and a run started first that completes while the fuzz tests run."""

    stack: Stack
    completing_run: str

    def post_run(self, body: dict[str, Any], **headers: str) -> requests.Response:
        return self.stack.api("POST", "runs", json=body, headers=headers)


def _upload_tiny_folder(connection_string: str) -> None:
    smallest = min(generate_sample_files(), key=lambda f: f.rows)
    service = BlobServiceClient.from_connection_string(connection_string)
    container = service.get_container_client(DATASTORE_CONTAINER)
    if not container.exists():
        container.create_container()
    container.upload_blob(f"{TINY_PREFIX}/{smallest.name}", smallest.content, overwrite=True)


@pytest.fixture(scope="package")
def api_schema() -> OpenApiSchema:
    """docs/openapi.yaml, loaded (and checked to be a valid OpenAPI document) by schemathesis."""
    return schemathesis.openapi.from_path(str(SPEC_PATH))


@pytest.fixture(scope="package")
def fuzz_env(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzEnv]:
    """One devhost + emulator for the fuzz package, on the session's Azurite."""
    _upload_tiny_folder(azurite.connection_string)
    stack = Stack(
        run_dir=tmp_path_factory.mktemp("fuzz-stack"),
        azurite_port=azurite.port,
        azurite_queue_port=azurite.queue_port,
        external_azurite=True,
        phase_seconds=0.2,
        settings={**DEFAULT_BOUNDS, **HANDOFF_SETTINGS},
    )
    stack.start()
    try:
        # Started first so that it has completed (first poll after 10 s) by the last test.
        started = stack.api(
            "POST", "runs", json={"endpoint_input_uri": TINY_INPUT, "poll_interval": 10}
        )
        assert started.status_code == 202, started.text
        yield FuzzEnv(stack=stack, completing_run=started.json()["id"])
    finally:
        stack.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A keep-alive session (no auth of its own: each request chooses its key)."""
    with requests.Session() as session:
        yield session
