"""Pure helpers of the starters (HTTP, blob, timer): instance ids and the run view.

Deterministic instance ids are how duplicates are collapsed: the same Idempotency-Key, the
same blob version (name + ETag) or the same schedule slot always map to the same
orchestration instance, and a starter that finds that instance starts nothing new.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from batch_runs.failures import readable_error
from batch_runs.request import FieldError, InvalidRunRequest

IDEMPOTENCY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")
# Starts with a letter or digit: "." and ".." would name the instances collection itself in the
# management API's URLs.
_INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,255}\Z")

#: Runtime statuses after which an instance id may be reused by a *new* run.
ENDED_STATUSES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
ACTIVE_STATUSES = frozenset({"Pending", "Running", "Suspended", "ContinuedAsNew"})


def runtime_name(status: object) -> str:
    """An instance status's runtime status as its name (the SDK gives an enum, or a string)."""
    runtime = getattr(status, "runtime_status", None)
    return str(getattr(runtime, "value", runtime))


#: The largest request body a route reads (a run request is well under 4 KiB).
MAX_BODY_BYTES = 64 * 1024
#: The deepest JSON nesting a route parses (run parameters are one flat object).
MAX_JSON_DEPTH = 8

# One left-to-right pass: a string token (its closing quote optional, so an unterminated
# string ends the scan instead of being retried from every later quote) or a bracket.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)


class BodyTooLarge(ValueError):
    """A request body over :data:`MAX_BODY_BYTES` (HTTP 413)."""

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"body is {size} bytes; the limit is {limit} bytes")

    def to_error_body(self) -> dict[str, Any]:
        """The HTTP 413 body, in the shape of every other error."""
        detail = {"field": "body", "message": f"body must be at most {self.limit} bytes"}
        return error_body("PayloadTooLarge", f"The request {self}.", [detail])


def _invalid_body(message: str) -> InvalidRunRequest:
    return InvalidRunRequest([FieldError("body", f"body {message}")])


def decode_json_body(
    raw: bytes, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> object:
    """Decode a request body as JSON within bounds, before anything is started.

    The size is checked first, then UTF-8, then the nesting depth (scanned without recursion,
    so a 100,000-deep array cannot exhaust the parser's stack), then the JSON itself, with
    ``NaN`` and ``Infinity`` refused.

    Raises:
        BodyTooLarge: ``raw`` is over ``max_bytes``.
        InvalidRunRequest: Field ``body``: not UTF-8, too deep, or not JSON.
    """
    if len(raw) > max_bytes:
        raise BodyTooLarge(len(raw), max_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid_body("must be UTF-8 encoded JSON") from None
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        kind = token.group()[0]
        if kind == '"':
            continue
        depth += 1 if kind in "[{" else -1
        if depth > max_depth:
            raise _invalid_body(f"must not nest JSON deeper than {max_depth} levels")

    def refuse_constant(name: str) -> object:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except (ValueError, RecursionError):
        raise _invalid_body("must be a JSON object of run parameters") from None


def _digest(text: str, length: int = 32) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def instance_id_for_idempotency_key(key: str) -> str:
    """``run-<hash>`` for a caller's Idempotency-Key (hashed: keys may carry anything).

    Raises:
        ValueError: the key is empty, too long or has characters outside ``[A-Za-z0-9._:-]``.
    """
    if not _IDEMPOTENCY_KEY.match(key):
        raise ValueError(
            f"{IDEMPOTENCY_HEADER} must be 1-128 characters of letters, digits, "
            "'.', '_', ':' or '-'"
        )
    return f"run-{_digest('idempotency|' + key)}"


def instance_id_for_blob(name: str, etag: str | None) -> str:
    """``blob-<hash>`` of the blob path and its version (ETag; content hash when absent)."""
    version = etag or ""
    return f"blob-{_digest(f'{name}|{version}', 40)}"


def instance_id_for_schedule(slot: datetime) -> str:
    """``schedule-<UTC slot>``, e.g. ``schedule-20261125T020000Z``."""
    utc = slot.astimezone(UTC).replace(microsecond=0)
    return f"schedule-{utc.strftime('%Y%m%dT%H%M%SZ')}"


def is_valid_instance_id(value: str) -> bool:
    return bool(_INSTANCE_ID.match(value))


def blob_source_name(blob_name: str) -> str:
    """The file name of a blob path such as ``scoring-input/dir/file.csv`` → ``file.csv``."""
    return blob_name.rstrip("/").rsplit("/", 1)[-1]


def describe_problems(details: object) -> str:
    """``field: message; field: message`` for an ``InvalidRunRequest``'s details."""
    parts = [
        f"{getattr(d, 'field', '?')}: {getattr(d, 'message', d)}"
        for d in (details if isinstance(details, (list, tuple)) else [])
    ]
    return "; ".join(parts)


def error_body(
    code: str, message: str, details: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def iso_text(value: object) -> str | None:
    """A status timestamp (a datetime from the SDK, or text) as ISO-8601 text; None when unset."""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if value else None


def run_view(
    *,
    instance_id: str,
    name: str | None,
    runtime_status: str | None,
    custom_status: object,
    output: object,
    created_time: object,
    last_updated_time: object,
    rerun_of: str | None = None,
    notification: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The friendly view of a run returned by ``GET /api/runs/{id}``.

    ``rerun_of`` (the run a rerun repeats, from its input) is shown when given, and so is
    ``notification`` (the delivery outcome, ``batch_runs.notify.notification_view``).
    """
    custom = custom_status if isinstance(custom_status, Mapping) else {}
    view: dict[str, Any] = {
        "id": instance_id,
        "orchestrator": name,
        "runtime_status": runtime_status,
        "phase": custom.get("phase"),
        "job_name": custom.get("job_name"),
        "job_status": custom.get("job_status"),
        "polls": custom.get("polls", 0),
        "next_check": custom.get("next_check"),
        "studio_url": custom.get("studio_url"),
        # createdTime is the current execution's start (it resets on continue_as_new); the
        # run's own start is in the custom status once the job is submitted.
        "created": custom.get("started") or iso_text(created_time),
        "last_updated": iso_text(last_updated_time),
    }
    if custom.get("cancel_requested"):
        view["cancel_requested"] = True
    if isinstance(custom.get("queue_position"), int) and runtime_status in ACTIVE_STATUSES:
        # Admission control (batch_runs/admission.py): "waiting for capacity (position N)".
        view["queue_position"] = custom["queue_position"]
        view["status_message"] = custom.get("status_message")
    if rerun_of:
        view["rerun_of"] = rerun_of
    if notification is not None:
        view["notification"] = dict(notification)
    if runtime_status == "Completed":
        view["output"] = output
    elif runtime_status in ("Failed", "Terminated") and output is not None:
        view["error"], failure = readable_error(output)
        if failure is not None:
            view["failure"] = failure
    return view
