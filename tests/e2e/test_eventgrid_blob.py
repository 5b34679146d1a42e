"""End to end, the Event Grid blob source: the real app on devhost with
``SCORING_BLOB_SOURCE=EventGrid``, Azurite and the batch-endpoint emulator.

Azurite sends no Event Grid events, so the test plays Event Grid: it subscribes (the validation
handshake) and delivers ``Microsoft.Storage.BlobCreated`` to the webhook the azd template
subscribes, ``/runtime/webhooks/blobs?functionName=Host.Functions.start_run_on_blob&code=<key>``
(``infra/hooks/postdeploy.sh``). What devhost does with a delivery follows the blob extension:
Azure/azure-sdk-for-net ``sdk/eventgrid/Microsoft.Azure.WebJobs.Extensions.EventGrid/src/
TriggerBinding/HttpRequestProcessor.cs`` (commit 515190d3, lines 64-123) and
``sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Blobs/src/Listeners/
BlobQueueTriggerExecutor.cs`` (commit f7304451, lines 101-135: no receipt on this path, so a
repeated delivery runs the function again and the app's ETag-derived instance id keeps one run).
"""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from scripts.devstack import Stack, read_predictions, wait_until
from tests.e2e.conftest import make_stack
from tests.support import Azurite

pytestmark = pytest.mark.integration

CONTAINER = "scoring-eventgrid"
WEBHOOK = "/runtime/webhooks/blobs"
FUNCTION_ID = "Host.Functions.start_run_on_blob"


@pytest.fixture(scope="module")
def eg_stack(
    azurite: Azurite, sample_data: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """devhost serving the app with the EventGrid blob source (schedule off)."""
    stack = make_stack(
        tmp_path_factory.mktemp("eventgrid"),
        azurite,
        phase_seconds=0.3,
        settings={
            "SCHEDULED_INPUT_URI": "",
            "POLL_INTERVAL_SECONDS": "1",
            "SCORING_BLOB_PATH": f"{CONTAINER}/{{name}}",
            "SCORING_BLOB_SOURCE": "EventGrid",
        },
    )
    try:
        yield stack
    finally:
        stack.stop()


def deliver(stack: Stack, kind: str, events: list[dict[str, Any]]) -> requests.Response:
    """POST to the blobs webhook as Event Grid does (EventGridSchema, an array of events)."""
    return requests.post(
        f"{stack.devhost_url}{WEBHOOK}",
        params={"functionName": FUNCTION_ID, "code": stack.function_key},
        headers={"aeg-event-type": kind, "Content-Type": "application/json"},
        data=json.dumps(events),
        timeout=10,
    )


def blob_created_event(blob: Any) -> dict[str, Any]:
    props = blob.get_blob_properties()
    return {
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/"
        "providers/Microsoft.Storage/storageAccounts/devstoreaccount1",
        "subject": f"/blobServices/default/containers/{CONTAINER}/blobs/{blob.blob_name}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": "6d79fe1e-e01e-0061-0d3c-3a4d6a000000",
        "data": {
            "api": "PutBlob",
            "clientRequestId": "6d79dbfb-0e37-4fc4-981f-442c9ca65760",
            "requestId": "6d79fe1e-e01e-0061-0d3c-3a4d6a000000",
            "eTag": str(props.etag).strip('"'),
            "contentType": "text/csv",
            "contentLength": props.size,
            "blobType": "BlockBlob",
            "url": blob.url,
            "sequencer": "00000000000000000000000000000000000000000000",
        },
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": "2026-11-30T12:00:00.0000000Z",
    }


def test_event_grid_delivery_starts_exactly_one_run_and_the_poller_none(
    eg_stack: Stack, azurite: Azurite, sample_data: list[Path]
):
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client(CONTAINER)
    if not container.exists():
        container.create_container()
    blob = container.upload_blob("eg-one.csv", sample_data[1].read_bytes(), overwrite=True)
    # Observation window (not synchronisation): devhost polls LogsAndContainerScan triggers
    # every second; an EventGrid-source trigger must not be polled.
    time.sleep(3)
    assert eg_stack.list_instances("blob-") == []

    validation = {
        "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000",
        "subject": "",
        "data": {
            "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
            "validationUrl": "https://rp-eastus2.eventgrid.azure.net/eventsubscriptions/x",
        },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2026-11-30T12:00:00.0000000Z",
        "metadataVersion": "1",
        "dataVersion": "2",
    }
    handshake = deliver(eg_stack, "SubscriptionValidation", [validation])
    assert handshake.status_code == 200
    assert handshake.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}

    event = blob_created_event(blob)
    assert deliver(eg_stack, "Notification", [event]).status_code == 202
    wait_until(
        lambda: len(eg_stack.list_instances("blob-")) >= 1, timeout=30, what="the blob's run"
    )
    (instance,) = eg_stack.list_instances("blob-")
    view = eg_stack.wait_run(instance["instanceId"])
    assert view["runtime_status"] == "Completed"
    rows = read_predictions(azurite.connection_string, view["output"]["output_uri"])
    assert len(rows) == 100
    assert {r[2] for r in rows} == {"eg-one.csv"}

    # Event Grid delivers at least once: the same event again runs the function again, which
    # finds the run of this blob version and starts nothing.
    assert deliver(eg_stack, "Notification", [event]).status_code == 202
    assert eg_stack.devhost is not None
    devhost = eg_stack.devhost
    wait_until(
        lambda: "already has run" in devhost.log_text(), timeout=30, what="the repeat skipped"
    )
    assert [i["instanceId"] for i in eg_stack.list_instances("blob-")] == [instance["instanceId"]]
    service.close()
