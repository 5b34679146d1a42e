"""devhost as a process: Event Grid deliveries to ``/runtime/webhooks/blobs`` for a blob trigger
indexed with ``"source": "EventGrid"`` (the sample app's ``on_blob``, ``SAMPLE_BLOB_SOURCE``).

Sources (see ``devhost/eventgrid.py`` and ``devhost/blob_events.py`` for the full list):
Azure/azure-functions-host 89dc438d ``src/WebJobs.Script.WebHost/Controllers/HostController.cs``
lines 479-496 (verbs, system key first, 404 for an extension without a handler);
Azure/azure-sdk-for-net 515190d3 ``.../EventGrid/src/TriggerBinding/HttpRequestProcessor.cs``
lines 43-128 (handshake, notification, unsubscribe, 400); azure-sdk-for-net f7304451
``.../Storage.Blobs/src/Listeners/BlobQueueTriggerExecutor.cs`` lines 76-135 (unknown function
and missing blob dropped, no ETag check and no receipt for EventGrid, then the function runs).
"""

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from tests.devhost.hostproc import KEY, DevhostProcess
from tests.support import wait_until

pytestmark = pytest.mark.integration

CONTAINER = "egsamples"
FUNCTION = "Host.Functions.on_blob"
WEBHOOK = "/runtime/webhooks/blobs"


@pytest.fixture(scope="module")
def container(azurite: Any) -> Iterator[Any]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    client = service.get_container_client(CONTAINER)
    client.create_container()
    yield client
    client.delete_container()
    service.close()


@pytest.fixture(scope="module")
def host(azurite: Any, container: Any) -> Iterator[DevhostProcess]:
    proc = DevhostProcess(
        settings={
            "SAMPLE_HUB": "eghub",
            "SAMPLE_BLOB_PATH": f"{CONTAINER}/{{name}}",
            "SAMPLE_BLOB_SOURCE": "EventGrid",
            "SAMPLE_SCHEDULE": "0 0 0 1 1 *",
            "AzureWebJobsStorage": azurite.connection_string,
        },
        env={"DEVHOST_BLOB_POLL_SECONDS": "0.2"},
    ).start()
    yield proc
    proc.stop()


def post(host: DevhostProcess, kind: str | None, body: Any, **params: str) -> requests.Response:
    headers = {"aeg-event-type": kind} if kind else {}
    return requests.post(
        f"{host.base}{WEBHOOK}",
        params={"functionName": FUNCTION, "code": KEY, **params},
        headers=headers,
        data=body if isinstance(body, bytes) else json.dumps(body),
        timeout=10,
    )


def blob_created(container: Any, name: str) -> dict[str, Any]:
    """The BlobCreated event Event Grid would send for the blob as it is now."""
    blob = container.get_blob_client(name)
    props = blob.get_blob_properties()
    return {
        "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/"
        "storageAccounts/devstoreaccount1",
        "subject": f"/blobServices/default/containers/{CONTAINER}/blobs/{name}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": f"event-{name}",
        "data": {
            "api": "PutBlob",
            "eTag": str(props.etag).strip('"'),
            "contentType": "text/csv",
            "contentLength": props.size,
            "blobType": "BlockBlob",
            "url": blob.url,
        },
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": "2026-11-30T12:00:00.0000000Z",
    }


def runs(host: DevhostProcess, name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in host.events_lines("blob.log")]
    return [r for r in lines if r["name"] == f"{CONTAINER}/{name}"]


def test_banner_names_the_webhook_of_the_event_grid_trigger(host):
    assert (
        f"\ton_blob: blobTrigger (EventGrid) POST {host.base}{WEBHOOK}?functionName={FUNCTION}"
        in host.log()
    )


def test_subscription_validation_handshake(host):
    """HttpRequestProcessor.cs lines 64-103: 200 {"validationResponse": <data.validationCode>}."""
    event = {
        "id": "1",
        "topic": "/subscriptions/s",
        "subject": "",
        "data": {"validationCode": "code-42", "validationUrl": "https://example.invalid/v"},
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2026-11-30T12:00:00Z",
        "metadataVersion": "1",
        "dataVersion": "2",
    }

    r = post(host, "SubscriptionValidation", [event])

    assert r.status_code == 200
    assert r.json() == {"validationResponse": "code-42"}


def test_the_system_key_is_checked_before_the_body_is_read(host):
    """HostController.cs line 480 (the policy runs before the handler): without a valid key,
    401 and Connection: close, while the announced body has not been sent."""
    head = (
        f"POST {WEBHOOK}?functionName={FUNCTION}&code=wrong HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{host.port}\r\naeg-event-type: Notification\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", host.port), timeout=5) as sock:
        sock.sendall(head)
        answer = sock.recv(65536)

    assert answer.startswith(b"HTTP/1.1 401")
    assert b"connection: close" in answer.lower()
    assert post(host, "SubscriptionValidation", [], code="").status_code == 401
    no_code = requests.post(f"{host.base}{WEBHOOK}", params={"functionName": FUNCTION}, timeout=5)
    assert no_code.status_code == 401


def test_key_header_other_extensions_and_methods(host):
    """The key also works as x-functions-key; an extension without a webhook handler is 404
    after the key check (HostController.cs lines 485-495); verbs outside GET/PUT/POST/DELETE/
    OPTIONS are not routed (line 479)."""
    with_header = requests.post(
        f"{host.base}{WEBHOOK}",
        params={"functionName": FUNCTION},
        headers={"x-functions-key": KEY, "aeg-event-type": "Unsubscribe"},
        timeout=5,
    )
    options = requests.options(f"{host.base}{WEBHOOK}", params={"code": KEY}, timeout=5)

    assert with_header.status_code == 202
    assert options.status_code == 200
    assert options.headers["Webhook-Allowed-Origin"] == "eventgrid.azure.net"
    assert requests.post(f"{host.base}/runtime/webhooks/queues", timeout=5).status_code == 401
    other = requests.post(f"{host.base}/runtime/webhooks/queues", params={"code": KEY}, timeout=5)
    assert other.status_code == 404
    assert (
        requests.patch(f"{host.base}{WEBHOOK}", params={"code": KEY}, timeout=5).status_code == 405
    )


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (None, []),
        ("Notification", b"{"),
        ("Notification", [{"data": {"url": "http://127.0.0.1:1/devstoreaccount1/c/b"}}]),
        ("SubscriptionValidation", [{"data": {}}]),
    ],
)
def test_malformed_deliveries_are_400_never_500(host, kind, body):
    r = post(host, kind, body)

    assert r.status_code == 400
    assert requests.get(f"{host.base}/admin/host/status", timeout=5).status_code == 200


def test_a_blob_created_notification_runs_the_function_and_the_poller_does_not(host, container):
    """The event is queued (202), then the function gets the blob as the poller would give it.
    Before the notification, several poll intervals pass without a run: an EventGrid-source
    trigger is not polled (BlobListenerFactory creates no blob listener for it)."""
    container.upload_blob("a.csv", b"x,y\n1,2\n", overwrite=True)
    time.sleep(1.0)  # observation window: 5 poll intervals of the LogsAndContainerScan poller
    assert runs(host, "a.csv") == []
    event = blob_created(container, "a.csv")

    r = post(host, "Notification", [event])

    assert r.status_code == 202
    assert r.content == b""
    wait_until(lambda: len(runs(host, "a.csv")) == 1, timeout=20, what="on_blob for a.csv")
    (run,) = runs(host, "a.csv")
    assert run["length"] == run["size"] == 8
    assert run["uri"].endswith(f"/{CONTAINER}/a.csv")
    assert run["etag"] == f'"{event["data"]["eTag"]}"'
    assert "Reason='New blob detected(EventGrid): egsamples/a.csv'" in host.log()


def test_a_repeated_delivery_runs_the_function_again(host, container):
    """BlobQueueTriggerExecutor.cs lines 101-109: no ETag check and no receipt on the EventGrid
    path; Event Grid is at-least-once, so the function must be idempotent itself (the app's is:
    one run per blob path + ETag). A single object is also accepted (HttpRequestProcessor.cs
    line 117), and the short function name too."""
    container.upload_blob("b.csv", b"1", overwrite=True)
    event = blob_created(container, "b.csv")

    assert post(host, "Notification", [event]).status_code == 202
    wait_until(lambda: len(runs(host, "b.csv")) == 1, timeout=20, what="first delivery")
    assert post(host, "notification", event, functionName="on_blob").status_code == 202

    wait_until(lambda: len(runs(host, "b.csv")) == 2, timeout=20, what="second delivery")


def test_events_for_an_unknown_function_a_missing_blob_or_another_path_are_dropped(host, container):
    """BlobQueueTriggerExecutor.cs lines 76-82 (unknown function id) and 90-99 (no such blob):
    accepted with 202, then dropped; a blob outside the trigger path is dropped by devhost."""
    container.upload_blob("c.csv", b"1", overwrite=True)
    event = blob_created(container, "c.csv")
    missing = json.loads(json.dumps(event).replace("c.csv", "gone.csv"))
    elsewhere = json.loads(json.dumps(event).replace(f"/{CONTAINER}/", "/othercontainer/"))

    assert (
        post(host, "Notification", [event], functionName="Host.Functions.nope").status_code == 202
    )
    assert post(host, "Notification", [missing, elsewhere]).status_code == 202
    wait_until(
        lambda: "does not match" in host.log() and "no longer exists" in host.log(),
        timeout=20,
        what="both events dropped",
    )

    assert "functionName='Host.Functions.nope': no blob trigger with source EventGrid" in host.log()
    assert runs(host, "c.csv") == []
    assert runs(host, "gone.csv") == []


def test_a_failing_function_is_retried_five_times_then_poisoned(azurite, container, caplog):
    """In-process: the queue's retries, as the blob trigger queue's MaxDequeueCount (5)."""
    from devhost.app_loader import BlobTriggerSpec
    from devhost.blob_events import BlobEventQueue
    from devhost.eventgrid import parse_blob_event

    container.upload_blob("poison.csv", b"1", overwrite=True)
    spec = BlobTriggerSpec(
        function_name="f",
        path="",
        connection="",
        arg_name="blob",
        function=None,
        source="EventGrid",
    )
    calls: list[str] = []

    def invoke(spec: Any, reason: str, provided: dict[str, Any]) -> None:
        calls.append(provided["blob"].name)
        raise RuntimeError("boom")

    queue = BlobEventQueue(
        [(spec, f"{CONTAINER}/{{name}}", azurite.connection_string)], invoke, retry_delay=0.01
    )
    queue.start()
    try:
        queue.enqueue(
            "Host.Functions.f", (parse_blob_event(blob_created(container, "poison.csv")),)
        )
        wait_until(lambda: "poisoned" in caplog.text, timeout=20, what="the poison log line")
    finally:
        queue.stop()

    assert calls == [f"{CONTAINER}/poison.csv"] * 5


def test_event_grid_blobs_are_invoked_concurrently(azurite, container):
    """In-process: three delivered blobs run at the same time (each waits for the other two), as
    the blob extension's queue listener dispatches its messages (``BlobPoller`` docstring)."""
    import threading

    from devhost.app_loader import BlobTriggerSpec
    from devhost.blob_events import BlobEventQueue
    from devhost.eventgrid import parse_blob_event

    names = ("c1.csv", "c2.csv", "c3.csv")
    for name in names:
        container.upload_blob(name, b"1", overwrite=True)
    spec = BlobTriggerSpec(
        function_name="f",
        path="",
        connection="",
        arg_name="blob",
        function=None,
        source="EventGrid",
    )
    barrier = threading.Barrier(3, timeout=10)
    passed: list[str] = []

    def invoke(spec: Any, reason: str, provided: dict[str, Any]) -> None:
        barrier.wait()  # broken (raises) unless all three run at once
        passed.append(provided["blob"].name)

    queue = BlobEventQueue(
        [(spec, f"{CONTAINER}/{{name}}", azurite.connection_string)], invoke, retry_delay=30
    )
    queue.start()
    try:
        events = tuple(parse_blob_event(blob_created(container, n)) for n in names)
        queue.enqueue("Host.Functions.f", events)
        wait_until(lambda: len(passed) == 3, timeout=20, what="three concurrent invocations")
    finally:
        queue.stop()

    assert sorted(passed) == [f"{CONTAINER}/{n}" for n in names]
