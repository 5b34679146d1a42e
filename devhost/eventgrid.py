"""Event Grid deliveries to the blob extension's webhook, ``/runtime/webhooks/blobs``.

Pure helpers for ``devhost.listener`` (what a delivery answers) and ``devhost.blob_events``
(what it queues). A blob trigger indexed with ``"source": "EventGrid"`` is not polled: Event Grid
posts ``Microsoft.Storage.BlobCreated`` events to
``/runtime/webhooks/blobs?functionName=Host.Functions.<fn>&code=<blobs_extension key>``.

Sources. Functions host: Azure/azure-functions-host at commit
89dc438d476542786f2fc4070f553423213a6223. Extensions: Azure/azure-sdk-for-net, the commits named.

- Route and key: ``HostController.ExtensionWebHookHandler``
  (``src/WebJobs.Script.WebHost/Controllers/HostController.cs`` lines 479-496): verbs GET, PUT,
  POST, DELETE, OPTIONS on ``runtime/webhooks/{extensionName}/{*extra}``; the policy
  ``SystemKeyAuthLevel`` runs first and wants the system key ``<extensionName>_extension``
  (``Security/Authorization/Policies/AuthorizationOptionsExtensions.cs`` lines 72-108,
  ``WebHooks/DefaultScriptWebHookProvider.cs`` lines 88-92); an extension without a handler is
  404 (the handler map ignores case: same file, line 24).
- The handshake and the delivery types: ``HttpRequestProcessor.ProcessAsync``
  (``sdk/eventgrid/Microsoft.Azure.WebJobs.Extensions.EventGrid/src/TriggerBinding/
  HttpRequestProcessor.cs``, commit 515190d38f718358bd0ea8af436d0f425d677595): ``OPTIONS`` is the
  CloudEvents handshake, 200 with ``Webhook-Allowed-Origin`` (lines 43-56, 131-153);
  ``aeg-event-type`` (first value, any case) ``SubscriptionValidation``: the first event's
  ``data.validationCode`` of an array, or of a single object whose ``data`` may be
  double-encoded, answered 200 ``{"validationResponse": code}`` (lines 64-103; the casing:
  ``SubscriptionValidationResponse.cs``); ``Notification``: an array or one object, each event
  queued, 202 (lines 105-123, and ``ProcessEventsAsync`` in the blob extension's
  ``BlobsExtensionConfigProvider.cs``); ``Unsubscribe``: 202; anything else: 400 (lines 125-128).
- One event: ``BlobsExtensionConfigProvider.GetBlobTriggerMessage``
  (``sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Blobs/src/Config/
  BlobsExtensionConfigProvider.cs``, commit 09d58b3a21fa08be57ee0a755267d85218106ea1): container
  and blob name from ``data.url`` (``BlobUriBuilder``, which takes the account from the first
  path segment for an IP-style URL such as Azurite's), ETag ``"<data.eTag>"`` (quoted), blob
  type ``data.blobType`` without ``Blob``; the event type is not looked at, and the function id
  is ``functionName`` as sent.

devhost answers 400 where the extension would throw (a 500): a body that is not JSON, a
validation without a first event's ``data.validationCode``, an event that is not an object, has
no blob ``data.url`` or a blob type other than Block/Page/Append. It checks every event before
queueing any, so a refused delivery queues nothing (the extension may have queued the events
before the one it failed on).
"""

import ipaddress
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from devhost.errors import RequestRejected

__all__ = [
    "BLOBS_EXTENSION",
    "HOST_FUNCTIONS_PREFIX",
    "WEBHOOKS_PREFIX",
    "WEBHOOK_METHODS",
    "BlobEvent",
    "WebhookAnswer",
    "answer_delivery",
    "extension_of",
    "parse_blob_event",
    "short_function_name",
]

#: Where extension webhooks live (``{extensionName}/{*extra}`` follows).
WEBHOOKS_PREFIX = "/runtime/webhooks/"
#: The blob extension's name (its config section), hence ``/runtime/webhooks/blobs``.
BLOBS_EXTENSION = "blobs"
#: The function id prefix of the Functions host (``Host.Functions.<name>``).
HOST_FUNCTIONS_PREFIX = "Host.Functions."
#: The verbs of ``ExtensionWebHookHandler``.
WEBHOOK_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS"})

_EVENT_TYPE_HEADER = "aeg-event-type"
_PUBLIC_CLOUD_ORIGIN = "eventgrid.azure.net"
_KNOWN_ORIGINS = frozenset(
    {
        _PUBLIC_CLOUD_ORIGIN,
        "eventgrid.azure.us",
        "eventgrid.azure.eaglex.ic.gov",
        "eventgrid.azure.microsoft.scloud",
        "eventgrid.azure.cn",
    }
)
# ``Enum.Parse(typeof(BlobType), blobType.Replace("Blob", ""))``: case-sensitive names.
_BLOB_TYPES = frozenset({"Block", "Page", "Append"})


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobEvent:
    """One blob event, as the extension queues it (a ``BlobTriggerMessage``)."""

    container: str
    blob_name: str
    etag: str  # quoted, as the extension writes it; not compared on the EventGrid path
    blob_type: str  # Block | Page | Append
    event_type: str  # informational: the extension queues every event type alike


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookAnswer:
    """What a delivery is answered with, and the events it queues."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    events: tuple[BlobEvent, ...] = ()


def extension_of(path: str) -> str | None:
    """The ``{extensionName}`` of a decoded path under ``/runtime/webhooks/``, lower-cased."""
    if not path.lower().startswith(WEBHOOKS_PREFIX):
        return None
    name = path[len(WEBHOOKS_PREFIX) :].split("/", 1)[0]
    return name.lower() or None


def short_function_name(function_name: str | None) -> str | None:
    """The function name of ``functionName``: the extension registers each blob-triggered
    function under its id ``Host.Functions.<name>`` and under ``<name>`` (case-sensitive keys:
    ``BlobListenerFactory.RegisterWithSharedBlobQueueListenerAsync``, azure-sdk-for-net commit
    09f941ef948dff0fcb87e83c0e1e092ffc423205)."""
    if not function_name:
        return None
    if function_name.startswith(HOST_FUNCTIONS_PREFIX):
        return function_name[len(HOST_FUNCTIONS_PREFIX) :] or None
    return function_name


def answer_delivery(
    method: str, headers: Mapping[str, str], read_body: Callable[[], bytes]
) -> WebhookAnswer:
    """Answer one request to ``/runtime/webhooks/blobs`` (after the key check).

    Args:
        method: the request method.
        headers: the request headers, names lower-cased (first value of each).
        read_body: called for the body only when the delivery type needs one.

    Raises:
        RequestRejected: 400 for a malformed body.
    """
    if method == "OPTIONS":
        origin = headers.get("webhook-request-origin")
        allowed = origin if origin in _KNOWN_ORIGINS else _PUBLIC_CLOUD_ORIGIN
        return WebhookAnswer(status=200, headers={"Webhook-Allowed-Origin": allowed})
    kind = (headers.get(_EVENT_TYPE_HEADER) or "").lower()
    if kind not in ("subscriptionvalidation", "notification"):
        return WebhookAnswer(status=202 if kind == "unsubscribe" else 400)
    decoded = _json(read_body())
    if kind == "subscriptionvalidation":
        code = _validation_code(decoded)
        text = json.dumps({"validationResponse": code}, separators=(",", ":"))
        return WebhookAnswer(
            status=200,
            headers={"Content-Type": "text/plain; charset=utf-8"},
            body=text.encode("utf-8"),
        )
    if not isinstance(decoded, (list, dict)):
        raise RequestRejected(400, "the events must be a JSON array or object")
    events = decoded if isinstance(decoded, list) else [decoded]
    return WebhookAnswer(status=202, events=tuple(parse_blob_event(e) for e in events))


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except RecursionError as exc:  # nested deeper than the stack
        raise RequestRejected(400, "the body is nested too deeply") from exc
    except ValueError as exc:  # also UnicodeDecodeError
        raise RequestRejected(400, "the body is not JSON") from exc


def _validation_code(decoded: Any) -> str:
    """``data.validationCode`` of the first event of an array, or of one (CloudEvents) object
    whose ``data`` may be a JSON string."""
    if isinstance(decoded, list):
        first = decoded[0] if decoded else None
        data = first.get("data") if isinstance(first, dict) else None
    elif isinstance(decoded, dict):
        data = decoded.get("data")
        if isinstance(data, str):  # double-encoded
            data = _json(data.encode("utf-8"))
    else:
        raise RequestRejected(400, "the events must be a JSON array or object")
    code = data.get("validationCode") if isinstance(data, dict) else None
    if not isinstance(code, str):
        raise RequestRejected(400, "no data.validationCode in the validation event")
    return code


def parse_blob_event(event: Any) -> BlobEvent:
    """The queued form of one delivered event.

    Raises:
        RequestRejected: 400 when the event has no ``data.url`` of a blob or an unknown
            ``data.blobType``.
    """
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict):
        raise RequestRejected(400, "an event has no data object")
    url = data.get("url")
    container, blob_name = _blob_path(url if isinstance(url, str) else "")
    blob_type = data.get("blobType")
    kind = blob_type.replace("Blob", "") if isinstance(blob_type, str) else ""
    if kind not in _BLOB_TYPES:
        raise RequestRejected(400, "an event's data.blobType is not BlockBlob/PageBlob/AppendBlob")
    etag = data.get("eTag")
    event_type = event.get("eventType") or event.get("type") or ""
    return BlobEvent(
        container=container,
        blob_name=blob_name,
        etag=f'"{etag if isinstance(etag, str) else ""}"',
        blob_type=kind,
        event_type=str(event_type),
    )


def _blob_path(url: str) -> tuple[str, str]:
    """(container, blob name) of a blob URL, as ``BlobUriBuilder`` splits it: for an IP-style
    host (Azurite, ``http://127.0.0.1:10000/devstoreaccount1/c/b``) the account is the first
    path segment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        raise RequestRejected(400, "an event's data.url is not a URL") from exc
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise RequestRejected(400, "an event has no data.url of a blob")
    segments = parts.path.lstrip("/").split("/")
    if _is_ip_style(host):
        segments = segments[1:]
    container = segments[0] if segments else ""
    blob_name = unquote("/".join(segments[1:]))
    if not container or not blob_name:
        raise RequestRejected(400, "an event's data.url names no container and blob")
    return unquote(container), blob_name


def _is_ip_style(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
