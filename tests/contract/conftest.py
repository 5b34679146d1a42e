"""Targets for the contract cases: the emulator in both profiles, and a real endpoint (opt-in).

The live target needs ``AML_LIVE_ENDPOINT_URI`` (the batch endpoint's scoring URI) and
``AML_WORKSPACE_ID`` (the workspace ARM id); the Azure credential comes from the environment
through ``azure.identity.DefaultAzureCredential``. Optional: ``AML_LIVE_INPUT_URI`` (a folder of
heart CSVs; default the public azureml-examples copy), ``AML_LIVE_OUTPUT_PREFIX`` (default
``azureml://datastores/workspaceblobstore/paths/contract-tests``), ``AML_LIVE_DEPLOYMENT``,
``AML_ARM_ENDPOINT`` (default ``https://management.azure.com``), ``AML_LIVE_TIMEOUT`` (seconds,
default 1800).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

from aml_emulator import generate_sample_files
from tests.contract.target import Target
from tests.integration.emulator.helpers import WS_ID, running_emulator
from tests.support import Azurite

CONTAINER = "azureml-blobstore"
PUBLIC_HEART_DATA = "https://azuremlexampledata.blob.core.windows.net/data/heart-disease-uci/data"
LIVE_ENV = ("AML_LIVE_ENDPOINT_URI", "AML_WORKSPACE_ID")


def _jwt(aud: str) -> str:
    """An unsigned JWT-shaped token (the emulator reads the audience, never the signature)."""

    def enc(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{enc({'alg': 'none'})}.{enc({'aud': aud, 'sub': 'contract'})}.sig"


@pytest.fixture(scope="package")
def contract_data(azurite: Azurite) -> str:
    """The sample heart CSVs in Azurite; returns their folder as a datastore URI."""
    prefix = f"contract-{uuid.uuid4().hex[:8]}"
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        container = service.get_container_client(CONTAINER)
        with contextlib.suppress(ResourceExistsError):
            container.create_container()
        for sample in generate_sample_files():
            container.upload_blob(f"{prefix}/{sample.name}", sample.content, overwrite=True)
    return f"azureml://datastores/workspaceblobstore/paths/{prefix}/"


@pytest.fixture(scope="package", params=["documented", "lenient"])
def emulator_target(
    request: pytest.FixtureRequest,
    azurite: Azurite,
    contract_data: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    """The emulator under one profile, with audience checks on (as the service has)."""
    profile = str(request.param)
    root = tmp_path_factory.mktemp(f"contract-{profile}")
    config = root / "config.json"
    config.write_text(
        json.dumps(
            {
                "arm_page_size": 2,
                "endpoints": {"heart-classifier": {"reject_audience": True}},
            }
        )
    )
    with (
        running_emulator(
            state=root / "state.sqlite",
            connection_string=azurite.connection_string,
            config=config,
            log_dir=root,
            contract=profile,
        ) as (_proc, url),
        requests.Session() as session,
    ):
        target = Target(
            name=f"emulator-{profile}",
            scoring_uri=f"{url}/endpoints/heart-classifier/jobs",
            workspace_id=WS_ID,
            arm_base=url,
            data_token=lambda: _jwt("https://ml.azure.com"),
            arm_token=lambda: _jwt("https://management.azure.com"),
            input_uri=contract_data,
            output_prefix="azureml://datastores/workspaceblobstore/paths/contract-out",
            session=session,
            profile=profile,
            admin_url=f"{url}/admin",
            timeout=30.0,
            poll=0.05,
        )
        yield target
        target.cleanup()


@pytest.fixture(scope="package")
def live_target() -> Iterator[Target]:
    """A real batch endpoint, or a one-line skip when none is configured."""
    missing = [name for name in LIVE_ENV if not os.environ.get(name)]
    if missing:
        pytest.skip(f"live contract suite: set {' and '.join(missing)} to run against Azure ML")
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential()

    def token(scope: str) -> str:
        return str(credential.get_token(scope).token)

    with requests.Session() as session:
        target = Target(
            name="live",
            scoring_uri=os.environ["AML_LIVE_ENDPOINT_URI"],
            workspace_id=os.environ["AML_WORKSPACE_ID"].rstrip("/"),
            arm_base=os.environ.get("AML_ARM_ENDPOINT", "https://management.azure.com").rstrip("/"),
            data_token=lambda: token("https://ml.azure.com/.default"),
            arm_token=lambda: token("https://management.azure.com/.default"),
            input_uri=os.environ.get("AML_LIVE_INPUT_URI", PUBLIC_HEART_DATA),
            output_prefix=os.environ.get(
                "AML_LIVE_OUTPUT_PREFIX",
                "azureml://datastores/workspaceblobstore/paths/contract-tests",
            ).rstrip("/"),
            session=session,
            deployment=os.environ.get("AML_LIVE_DEPLOYMENT") or None,
            timeout=float(os.environ.get("AML_LIVE_TIMEOUT", "1800")),
            poll=10.0,
        )
        try:
            yield target
        finally:
            target.cleanup()
            credential.close()
