"""Security pass 3: the copy's source SAS never reaches a log, even with the Azure SDK's own
loggers at DEBUG (the Functions host records worker logs), against a real Azurite."""

import logging
import re
import uuid
from types import SimpleNamespace

import pytest
from azure.storage.blob import BlobServiceClient

from batch_runs.handoff import BlobTarget, StorageAccess, copy_output, run_copy
from tests.support import Azurite

SOURCE = "attack-src"
DEST = "attack-dst"


class _RecordingAccess(StorageAccess):
    """The real offline access (Azurite's key); remembers the SAS it signed."""

    def __init__(self, inner: StorageAccess) -> None:
        super().__init__(inner.credential, inner.account_key)
        self.signed: list[str] = []

    def source_sas(self, source, now):
        sas = super().source_sas(source, now)
        self.signed.append(sas)
        return sas


def test_the_source_sas_is_in_no_log_line(azurite: Azurite, caplog: pytest.LogCaptureFixture):
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    for name in (SOURCE, DEST):
        if not service.get_container_client(name).exists():
            service.create_container(name)
    blob = f"{uuid.uuid4().hex}/predictions.csv"
    service.get_blob_client(SOURCE, blob).upload_blob(b"a,b\n1,2\n")
    from batch_runs.handoff import storage_access

    settings = SimpleNamespace(auth_mode="none", storage_connection=azurite.connection_string)
    access = _RecordingAccess(storage_access(settings))
    caplog.set_level(logging.DEBUG)
    for name in ("azure", "azure.core", "azure.storage", "urllib3"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    account = azurite.blob_endpoint
    result = copy_output(
        BlobTarget("devstoreaccount1", account, SOURCE, blob),
        BlobTarget("devstoreaccount1", account, DEST, f"copy/{blob}"),
        access,
    )
    assert result.ok, result
    ((sas,),) = [access.signed]
    signature = re.search(r"(?:^|&)sig=([^&]+)", sas)
    assert signature is not None
    assert caplog.records, "the SDK logged nothing at DEBUG: the test would prove nothing"
    assert signature.group(1) not in caplog.text
    assert "sig=" not in result.to_dict().__repr__()
    # The failure text of a copy that cannot start shows no SAS either.
    failed = run_copy(
        "azureml://datastores/workspaceblobstore/paths/none/predictions.csv",
        f"{account}/{DEST}/x.csv",
        SimpleNamespace(
            copy_allowed_hosts=(f"127.0.0.1:{azurite.port}",),
            output_datastore_urls=(("workspaceblobstore", f"{account}/{SOURCE}"),),
            auth_mode="none",
            storage_connection=azurite.connection_string,
        ),
    )
    assert not failed.ok
    assert "sig=" not in str(failed.error)
    assert "se=" not in str(failed.error)
