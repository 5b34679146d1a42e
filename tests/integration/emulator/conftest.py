"""Fixtures: one emulator subprocess (against the session Azurite) for the whole package."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest
import requests
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient, ContainerClient

from tests.integration.emulator.helpers import CONTAINER, EmulatorApi, running_emulator
from tests.support import Azurite

# Extra endpoints next to the default one, to test routing and the audience check. These tests
# pin the lenient profile (client names, repeatability ids, errorMessage, ARM-form ids); the
# documented profile has its own emulator in test_documented.py.
CONFIG = {
    "contract": "lenient",
    "datastores": {"workspaceblobstore": CONTAINER, "otherstore": "other-container"},
    "endpoints": {
        "heart-classifier": {"deployments": ["default"], "default_deployment": "default"},
        "multi": {"deployments": ["blue", "green"], "default_deployment": "blue"},
        "nodefault": {"deployments": ["only"], "default_deployment": None},
        "strict": {"reject_audience": True},
    },
}


@pytest.fixture(scope="package")
def emulator_url(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a running emulator subprocess (phase 0.1 s)."""
    root = tmp_path_factory.mktemp("emulator")
    config = root / "config.json"
    config.write_text(json.dumps(CONFIG))
    with running_emulator(
        state=root / "state.sqlite",
        connection_string=azurite.connection_string,
        config=config,
        log_dir=root,
    ) as (_proc, url):
        yield url


@pytest.fixture(scope="package")
def blob_service(azurite: Azurite) -> Iterator[BlobServiceClient]:
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        yield service


@pytest.fixture(scope="package")
def container(blob_service: BlobServiceClient) -> ContainerClient:
    client = blob_service.get_container_client(CONTAINER)
    with contextlib.suppress(ResourceExistsError):
        client.create_container()
    return client


@pytest.fixture
def api(emulator_url: str) -> Iterator[EmulatorApi]:
    """A client; faults are cleared before and after each test so tests stay independent."""
    with requests.Session() as session:
        client = EmulatorApi(emulator_url, session)
        client.admin("DELETE", "faults")
        yield client
        client.admin("DELETE", "faults")
