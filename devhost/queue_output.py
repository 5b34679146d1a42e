"""Queue output bindings: what a function set on its ``func.Out`` goes onto a Storage queue.

After the function returns, the host's queue extension adds each value set on a ``queue`` output
binding to the named queue (``queueName``, ``%SETTING%`` references resolved; a missing queue is
created first), with the storage account of the ``connection`` setting.

Message encoding: Base64 of the UTF-8 text by default, ``QueuesOptions.MessageEncoding`` /
host.json ``extensions.queues.messageEncoding`` (``none`` turns it off): Azure/azure-sdk-for-net
``sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Queues/CHANGELOG.md``, 5.0.0-beta.2
("This version Base64-encodes/decodes queue messages by default ... preserves compatibility with
previous major versions"); the app's host.json leaves it at the default. devhost always encodes.

devhost writes with the Queue service REST API (Put Message, Create Queue) and Shared Key
authorization from the connection string (``AccountName``/``AccountKey``/``QueueEndpoint``):
https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key (service
version 2021-08-06 string-to-sign). Dev-only: the deployed app never runs this code.
"""

import base64
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

__all__ = [
    "OutValue",
    "QueueOutput",
    "flush_outputs",
    "parse_connection_string",
    "put_message",
    "queue_outputs",
    "signed_request",
]

API_VERSION = "2021-08-06"


class OutValue:
    """The ``func.Out`` the worker passes for an output binding (``azure_functions_worker``
    ``bindings/out.py``: ``set``/``get``, None until set)."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


@dataclass(frozen=True, slots=True)
class QueueOutput:
    """One ``queue`` output binding: parameter name, queue name (may hold ``%SETTING%``) and
    the connection setting's name."""

    name: str
    queue_name: str
    connection: str


def queue_outputs(fn: Any) -> tuple[QueueOutput, ...]:
    """The ``queue`` output bindings of an indexed function (``FunctionBuilder`` result)."""
    found = []
    for binding in fn.get_bindings():
        raw = binding.get_dict_repr()
        direction = str(getattr(raw.get("direction"), "name", raw.get("direction"))).lower()
        if raw.get("type") == "queue" and direction in ("out", "1"):
            found.append(
                QueueOutput(
                    name=str(raw["name"]),
                    queue_name=str(raw["queueName"]),
                    connection=str(raw.get("connection") or "AzureWebJobsStorage"),
                )
            )
    return tuple(found)


def parse_connection_string(text: str) -> dict[str, str]:
    """``Key=Value;...`` → dict (values may contain ``=``, as account keys do)."""
    parts = (p.split("=", 1) for p in text.split(";") if "=" in p)
    return {k.strip(): v.strip() for k, v in parts}


def _queue_endpoint(conn: Mapping[str, str]) -> str:
    endpoint = conn.get("QueueEndpoint")
    if endpoint:
        return endpoint.rstrip("/")
    account = conn["AccountName"]
    protocol = conn.get("DefaultEndpointsProtocol", "https")
    suffix = conn.get("EndpointSuffix", "core.windows.net")
    return f"{protocol}://{account}.queue.{suffix}"


def _sign(method: str, url: str, headers: Mapping[str, str], account: str, key: str) -> str:
    """The ``SharedKey`` Authorization value (query parameters canonicalized: sorted lowercase
    names, ``\nname:value`` each)."""
    length = headers.get("Content-Length", "")
    canonical_headers = "".join(
        f"{k.lower()}:{v}\n" for k, v in sorted(headers.items()) if k.lower().startswith("x-ms-")
    )
    fields = [
        method,
        "",  # Content-Encoding
        "",  # Content-Language
        "" if length == "0" else length,
        "",  # Content-MD5
        headers.get("Content-Type", ""),
        "",  # Date (x-ms-date is sent)
        "",
        "",
        "",
        "",
        "",  # If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range
    ]
    parts = urlsplit(url)
    query = sorted((k.lower(), v) for k, v in parse_qsl(parts.query, keep_blank_values=True))
    resource = f"/{account}{parts.path}" + "".join(f"\n{k}:{v}" for k, v in query)
    text = "\n".join(fields) + "\n" + canonical_headers + resource
    digest = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
    return f"SharedKey {account}:{base64.b64encode(digest).decode()}"


def signed_request(
    session: Any, method: str, url: str, conn: Mapping[str, str], body: bytes
) -> Any:
    """One Shared Key request to the queue service (``conn``: the parsed connection string)."""
    headers = {
        "x-ms-date": formatdate(usegmt=True),
        "x-ms-version": API_VERSION,
        "Content-Length": str(len(body)),
    }
    if body:
        headers["Content-Type"] = "application/xml"
    headers["Authorization"] = _sign(method, url, headers, conn["AccountName"], conn["AccountKey"])
    return session.request(method, url, data=body, headers=headers, timeout=(5.0, 15.0))


def put_message(connection_string: str, queue: str, text: str, *, session: Any = None) -> None:
    """Add ``text`` (Base64 of its UTF-8 bytes) to ``queue``, creating the queue if missing.

    Raises:
        RuntimeError: the service refused (status and body named).
    """
    import requests

    http = session or requests.Session()
    conn = parse_connection_string(connection_string)
    base = f"{_queue_endpoint(conn)}/{queue}"
    encoded = base64.b64encode(text.encode("utf-8")).decode("ascii")
    body = f"<QueueMessage><MessageText>{escape(encoded)}</MessageText></QueueMessage>".encode()
    response = signed_request(http, "POST", f"{base}/messages", conn, body)
    if response.status_code == 404:  # the queue does not exist yet: create it, then retry
        created = signed_request(http, "PUT", base, conn, b"")
        if created.status_code not in (201, 204):
            raise RuntimeError(
                f"creating queue {queue}: {created.status_code} {created.text[:200]}"
            )
        response = signed_request(http, "POST", f"{base}/messages", conn, body)
    if response.status_code != 201:
        raise RuntimeError(f"queue {queue}: {response.status_code} {response.text[:200]}")


def flush_outputs(
    outputs: tuple[QueueOutput, ...],
    values: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
) -> None:
    """Put each output's value (``func.Out.get()``; None: nothing set) on its queue."""
    from devhost.app_loader import resolve_setting_refs

    env = os.environ if environ is None else environ
    for out in outputs:
        value = values[out.name].get()
        if value is None:
            continue
        queue = resolve_setting_refs(out.queue_name, env, what=f"queue output '{out.name}'")
        conn = env.get(out.connection)
        if not conn:
            raise RuntimeError(
                f"queue output '{out.name}': app setting {out.connection} is not set"
            )
        text = value if isinstance(value, str) else value.decode("utf-8")
        put_message(conn, queue, text)
