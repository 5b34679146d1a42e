"""Fixtures for the app's unit tests: settings in the environment, a fake Durable client."""

from collections.abc import Iterator

import pytest

from batch_runs import get_settings
from tests.unit.app.fake_client import FakeDurableClient

ENDPOINT = "https://heart.westeurope.inference.ml.azure.com/jobs"

BASE_SETTINGS = {
    "BATCH_ENDPOINT_URI": ENDPOINT,
    "BATCH_ENDPOINT_ALLOWED_HOSTS": "*.inference.ml.azure.com",
    "BATCH_ENDPOINT_AUTH": "azure",
    "POLL_INTERVAL_SECONDS": "120",
    "POLL_INTERVAL_MIN": "10",
    "POLL_INTERVAL_MAX": "3600",
    "RUN_TIMEOUT_SECONDS": "86400",
    "SCHEDULED_INPUT_URI": "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/",
    "SCHEDULED_INPUT_TYPE": "UriFolder",
}


@pytest.fixture
def app_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Known app settings in os.environ; the settings cache is cleared around the test."""
    import os

    for key in list(os.environ):
        if key.startswith(
            ("BATCH_ENDPOINT", "POLL_INTERVAL", "RUN_TIMEOUT", "SCHEDULED_", "OUTPUT_URI", "AML_")
        ):
            monkeypatch.delenv(key)
    for key, value in BASE_SETTINGS.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield dict(BASE_SETTINGS)
    get_settings.cache_clear()


@pytest.fixture
def client() -> FakeDurableClient:
    return FakeDurableClient()
