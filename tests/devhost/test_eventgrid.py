"""What devhost answers to Event Grid deliveries on ``/runtime/webhooks/blobs`` (pure helpers).

The expected behaviour is the blob extension's, read in Azure/azure-sdk-for-net:
``sdk/eventgrid/Microsoft.Azure.WebJobs.Extensions.EventGrid/src/TriggerBinding/HttpRequestProcessor.cs``
at commit 515190d38f718358bd0ea8af436d0f425d677595 (``ProcessAsync``) and
``sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Blobs/src/Config/BlobsExtensionConfigProvider.cs``
at commit 09d58b3a21fa08be57ee0a755267d85218106ea1 (``GetBlobTriggerMessage``). Line numbers are
cited per test.
"""

import json

import pytest

from devhost.errors import RequestRejected
from devhost.eventgrid import (
    BlobEvent,
    answer_delivery,
    extension_of,
    parse_blob_event,
    short_function_name,
)

AZURITE_URL = "http://127.0.0.1:10000/devstoreaccount1/scoring-input/x.csv"


def validation_event(code: str = "512d38b6-c7b8-40c8-89fe-f46f9e9622b6") -> dict:
    return {
        "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "topic": "/subscriptions/00000000-0000-0000-0000-000000000000",
        "subject": "",
        "data": {
            "validationCode": code,
            "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/x",
        },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2026-11-30T12:00:00.0000000Z",
        "metadataVersion": "1",
        "dataVersion": "2",
    }


def blob_created(url: str | None = AZURITE_URL, **data: object) -> dict:
    return {
        "topic": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a",
        "subject": "/blobServices/default/containers/scoring-input/blobs/x.csv",
        "eventType": "Microsoft.Storage.BlobCreated",
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "data": {
            "api": "PutBlob",
            "eTag": "0x8D9A1B2C3D4E5F6",
            "contentType": "text/csv",
            "contentLength": 524,
            "blobType": "BlockBlob",
            "url": url,
            **data,
        },
        "dataVersion": "",
        "metadataVersion": "1",
        "eventTime": "2026-11-30T12:00:00.0000000Z",
    }


def deliver(kind: str | None, body: object, method: str = "POST"):
    headers = {} if kind is None else {"aeg-event-type": kind}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return answer_delivery(method, headers, lambda: data)


def test_validation_handshake_echoes_the_code_with_the_extensions_casing():
    """HttpRequestProcessor.cs lines 64-103: the first event's data.validationCode, answered
    200 {"validationResponse": code} (SubscriptionValidationResponse.cs: "validationResponse")."""
    answer = deliver("SubscriptionValidation", [validation_event("abc-123"), validation_event("x")])

    assert answer.status == 200
    assert json.loads(answer.body) == {"validationResponse": "abc-123"}
    assert answer.body == b'{"validationResponse":"abc-123"}'
    assert answer.events == ()


def test_validation_header_is_case_insensitive_and_a_cloud_event_object_may_double_encode():
    """Lines 65 (OrdinalIgnoreCase) and 83-89 (an object's data is parsed again from its text)."""
    single = {"specversion": "1.0", "data": json.dumps({"validationCode": "c1"})}

    assert json.loads(deliver("subscriptionvalidation", single).body) == {
        "validationResponse": "c1"
    }
    plain = {"specversion": "1.0", "data": {"validationCode": "c2"}}
    assert json.loads(deliver("SUBSCRIPTIONVALIDATION", plain).body) == {"validationResponse": "c2"}


def test_options_is_the_cloud_events_handshake():
    """Lines 43-56 and 131-153: 200 with Webhook-Allowed-Origin, a known cloud origin echoed,
    anything else answered with the public cloud's."""
    known = answer_delivery("OPTIONS", {"webhook-request-origin": "eventgrid.azure.us"}, bytes)
    other = answer_delivery("OPTIONS", {"webhook-request-origin": "evil.example"}, bytes)

    assert (known.status, known.headers) == (200, {"Webhook-Allowed-Origin": "eventgrid.azure.us"})
    assert other.headers == {"Webhook-Allowed-Origin": "eventgrid.azure.net"}


def test_notification_queues_each_event_of_an_array_or_one_object():
    """Lines 105-123 (array, or one object wrapped) and BlobsExtensionConfigProvider
    ProcessEventsAsync/GetBlobTriggerMessage: container and name from data.url, the ETag quoted,
    202 with no body."""
    answer = deliver("Notification", [blob_created(), blob_created(AZURITE_URL + "2")])
    single = deliver("notification", blob_created())

    assert answer.status == 202
    assert answer.body == b""
    assert [e.blob_name for e in answer.events] == ["x.csv", "x.csv2"]
    assert single.events == (
        BlobEvent(
            container="scoring-input",
            blob_name="x.csv",
            etag='"0x8D9A1B2C3D4E5F6"',
            blob_type="Block",
            event_type="Microsoft.Storage.BlobCreated",
        ),
    )


@pytest.mark.parametrize(
    ("url", "container", "name"),
    [
        (AZURITE_URL, "scoring-input", "x.csv"),
        ("http://localhost:10000/devstoreaccount1/c/dir/a%20b.csv", "c", "dir/a b.csv"),
        ("https://acct.blob.core.windows.net/scoring-input/in/x.csv", "scoring-input", "in/x.csv"),
    ],
)
def test_the_blob_comes_from_data_url_as_blob_uri_builder_splits_it(url, container, name):
    """BlobUriBuilder: the account is the first path segment for an IP-style host (Azurite)."""
    event = parse_blob_event(blob_created(url))

    assert (event.container, event.blob_name) == (container, name)


def test_unsubscribe_is_accepted_and_any_other_event_type_is_a_bad_request():
    """Lines 125-128: Unsubscribe 202, a missing or unknown aeg-event-type 400; no body read."""

    def no_body() -> bytes:
        raise AssertionError("the body must not be read")

    assert answer_delivery("POST", {"aeg-event-type": "Unsubscribe"}, no_body).status == 202
    assert answer_delivery("POST", {}, no_body).status == 400
    assert answer_delivery("POST", {"aeg-event-type": "Other"}, no_body).status == 400


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("Notification", b"{not json"),
        ("Notification", b"\xff\xfe"),
        ("Notification", b"[" * 100_000),
        ("Notification", b"42"),
        ("Notification", [{"data": "not an object"}]),
        ("Notification", [{"eventType": "Microsoft.Storage.BlobCreated"}]),
        ("Notification", [blob_created(url=None)]),
        ("Notification", [blob_created(url="not a url")]),
        ("Notification", [blob_created(url="http://127.0.0.1:10000/devstoreaccount1/c")]),
        ("Notification", [blob_created(blobType="Unknown")]),
        ("Notification", [blob_created(), 7]),
        ("SubscriptionValidation", []),
        ("SubscriptionValidation", [{"data": {}}]),
        ("SubscriptionValidation", [{"data": {"validationCode": 5}}]),
        ("SubscriptionValidation", {"data": "{broken"}),
        ("SubscriptionValidation", "a string"),
    ],
)
def test_a_malformed_delivery_is_a_bad_request_and_queues_nothing(kind, body):
    """Where the extension throws (a 500 from the host), devhost answers 400, and checks every
    event before queueing any."""
    with pytest.raises(RequestRejected) as caught:
        deliver(kind, body)

    assert caught.value.status == 400


def test_function_name_and_extension_name():
    """The extension registers a function under Host.Functions.<fn> and <fn>; the host's
    handler map ignores the extension name's case (DefaultScriptWebHookProvider.cs line 24)."""
    assert short_function_name("Host.Functions.start_run_on_blob") == "start_run_on_blob"
    assert short_function_name("start_run_on_blob") == "start_run_on_blob"
    assert short_function_name("Host.Functions.") is None
    assert short_function_name(None) is None
    assert extension_of("/runtime/webhooks/Blobs") == "blobs"
    assert extension_of("/runtime/webhooks/blobs/extra/path") == "blobs"
    assert extension_of("/runtime/webhooks/") is None
    assert extension_of("/api/runtime/webhooks/blobs") is None
