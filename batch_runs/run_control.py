"""Run control: finding runs (with real paging), rerunning a run, and the retention cutoff.

Pure: no Functions or Durable imports. The list pages through the Durable management HTTP API
itself (``GET {base}/instances``), because the SDK's ``get_status_by`` (azure-functions-durable
1.x) neither sends nor returns the ``x-ms-continuation-token`` header and so only ever sees
the first page (azure-functions-durable-python PR #477, not merged). The extension's
``HttpApiHandler`` reads ``top`` from the query and the token from the request header, and
answers the next token in the same header; the SDK's loopback RPC endpoint (``rpcBaseUrl``)
is served by that same handler.

The continuation token this API hands out is opaque: base64url of ``{"u": <the store's
token>, "f": <a digest of the filters>}``, so a token is refused (400) when it is reused with
other filters, is too long, or was not made here.
"""

import base64
import binascii
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from string import Formatter
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl

from batch_runs.fields import run_parameters_of as run_parameters_of
from batch_runs.policy import sanitize_name_part
from batch_runs.request import FieldError, InvalidRunRequest
from batch_runs.starts import is_valid_instance_id, run_view
from batch_runs.uris import parse_endpoint_uri

if TYPE_CHECKING:  # loaded on first use, not when the app is indexed
    import requests

logger = logging.getLogger(__name__)

#: The Durable runtime statuses a list may filter on (the management API's names).
RUNTIME_STATUSES: tuple[str, ...] = (
    "Pending",
    "Running",
    "Completed",
    "ContinuedAsNew",
    "Failed",
    "Canceled",
    "Terminated",
    "Suspended",
)
DEFAULT_TOP = 50
MAX_TOP = 100
#: The longest ``continuation`` accepted (a store token is a few hundred characters).
MAX_CONTINUATION_CHARS = 4096
#: Store pages read per list request at most (filters may drop whole pages).
MAX_STORE_PAGES = 10
CONTINUATION_HEADER = "x-ms-continuation-token"
#: What the Azure Storage backend has answered for "no more pages" (base64 of ``null``;
#: azure-functions-durable-extension#1174), besides an empty or absent header.
_END_TOKENS = frozenset({"", "null", "bnVsbA=="})
_TOKEN_TEXT = re.compile(r"^[A-Za-z0-9_-]+\Z")
_STORE_TOKEN_TEXT = re.compile(r"^[\x21-\x7e]{1,3000}\Z")  # printable ASCII: a safe header value
_MAX_FILTER_TEXT = 2048


def _bad(field: str, message: str) -> InvalidRunRequest:
    return InvalidRunRequest([FieldError(field, f"{field} {message}")])


# ---------------------------------------------------------------------------------- the query


@dataclass(frozen=True, slots=True, kw_only=True)
class RunListQuery:
    """A validated ``GET /api/runs`` query.

    Attributes:
        statuses: Runtime statuses to keep (empty: all).
        endpoint: Canonical endpoint URI to keep (None: all).
        created_from: Runs created at or after this time (aware, UTC).
        created_to: Runs created at or before this time (aware, UTC).
        top: Most runs in one answer (1..100).
        store_token: The store's continuation token (decoded from ``continuation``).
    """

    statuses: tuple[str, ...] = ()
    endpoint: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    top: int = DEFAULT_TOP
    store_token: str | None = None

    def fingerprint(self) -> str:
        """A digest of the filters a continuation token is bound to."""
        text = json.dumps(
            [
                sorted(self.statuses),
                self.endpoint,
                self.created_from.isoformat() if self.created_from else None,
                self.created_to.isoformat() if self.created_to else None,
            ]
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def store_params(self, top: int) -> dict[str, str]:
        """The management API query for one store page of at most ``top`` instances."""
        params = {"top": str(top), "showInput": "true"}
        if self.statuses:
            params["runtimeStatus"] = ",".join(self.statuses)
        if self.created_from:
            params["createdTimeFrom"] = _wire_time(self.created_from)
        if self.created_to:
            params["createdTimeTo"] = _wire_time(self.created_to)
        return params


def _wire_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _statuses(raw: str) -> tuple[str, ...]:
    known = {s.lower(): s for s in RUNTIME_STATUSES}
    result: list[str] = []
    for part in raw.split(","):
        name = known.get(part.strip().lower())
        if name is None:
            raise _bad("status", f"must be runtime statuses among {', '.join(RUNTIME_STATUSES)}")
        if name not in result:
            result.append(name)
    return tuple(result)


def _time(field: str, raw: str) -> datetime:
    text = raw.strip()
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise _bad(field, "must be an ISO-8601 time, e.g. 2026-11-30T00:00:00Z") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _top(raw: str) -> int:
    if not re.fullmatch(r"[0-9]{1,3}", raw.strip()) or not 1 <= int(raw) <= MAX_TOP:
        raise _bad("top", f"must be an integer between 1 and {MAX_TOP}")
    return int(raw)


def _endpoint(raw: str) -> str:
    problem, url = parse_endpoint_uri(raw)
    if url is None:
        raise _bad("endpoint", problem or "must be an endpoint URI")
    return url.url


def parse_list_query(params: Mapping[str, str]) -> RunListQuery:
    """Validate the query of ``GET /api/runs``; other parameters (e.g. ``code``) are ignored.

    An empty filter counts as absent; an empty ``top`` or ``continuation`` is refused.

    Raises:
        InvalidRunRequest: Naming every bad parameter (``status``, ``endpoint``,
            ``created_from``, ``created_to``, ``top``, ``continuation``).
    """
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    readers: dict[str, tuple[str, Callable[[str], Any]]] = {
        "status": ("statuses", _statuses),
        "endpoint": ("endpoint", _endpoint),
        "created_from": ("created_from", lambda raw: _time("created_from", raw)),
        "created_to": ("created_to", lambda raw: _time("created_to", raw)),
        "top": ("top", _top),
    }
    for name, (attr, read) in readers.items():
        raw = params.get(name)
        if raw is None or (not raw.strip() and name != "top"):
            continue  # an empty filter is no filter; an empty top is not a number
        if len(raw) > _MAX_FILTER_TEXT:
            errors.append(FieldError(name, f"{name} must be at most {_MAX_FILTER_TEXT} characters"))
            continue
        try:
            values[attr] = read(raw)
        except InvalidRunRequest as exc:
            errors.extend(exc.details)
    start, end = values.get("created_from"), values.get("created_to")
    if start and end and start > end:
        errors.append(FieldError("created_to", "created_to must not be before created_from"))
    if errors:
        raise InvalidRunRequest(errors)
    query = RunListQuery(**values)
    token = params.get("continuation")
    if token is not None:
        return RunListQuery(**values, store_token=decode_continuation(token, query))
    return query


def encode_continuation(store_token: str, query: RunListQuery) -> str:
    """This API's opaque token for the store's ``store_token`` under ``query``'s filters."""
    data = json.dumps({"u": store_token, "f": query.fingerprint()}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def decode_continuation(token: str, query: RunListQuery) -> str:
    """The store token inside ``token``.

    Raises:
        InvalidRunRequest: Field ``continuation``: too long, not made by this API, or made for
            other filters.
    """
    if len(token) > MAX_CONTINUATION_CHARS:
        raise _bad("continuation", f"must be at most {MAX_CONTINUATION_CHARS} characters")
    refused = _bad("continuation", "must be a token from a previous answer with the same filters")
    if not _TOKEN_TEXT.match(token):
        raise refused
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise refused from None
    if not isinstance(data, dict) or data.get("f") != query.fingerprint():
        raise refused
    store_token = data.get("u")
    if not isinstance(store_token, str) or not _STORE_TOKEN_TEXT.match(store_token):
        raise refused
    return store_token


# ---------------------------------------------------------------------- the management API


class ManagementApiError(Exception):
    """The Durable management API failed or answered something unexpected."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class ManagementEndpoint:
    """Where the instances collection is, and the query every call must carry."""

    instances_url: str
    query: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_binding(cls, binding: str | Mapping[str, Any]) -> "ManagementEndpoint":
        """From the durable client binding (the JSON the extension passes to a starter).

        The loopback ``rpcBaseUrl`` (what the SDK itself calls; no key) when present, else
        ``baseUrl`` with ``requiredQueryStringParameters`` (which carry the system key).

        Raises:
            ManagementApiError: Neither URL is in the binding.
        """
        data = json.loads(binding) if isinstance(binding, str) else binding
        rpc = data.get("rpcBaseUrl") if isinstance(data, Mapping) else None
        if isinstance(rpc, str) and rpc:
            return cls(f"{rpc.rstrip('/')}/instances/")
        base = data.get("baseUrl") if isinstance(data, Mapping) else None
        if not isinstance(base, str) or not base:
            raise ManagementApiError("the durable client binding has no management URL")
        qs = data.get("requiredQueryStringParameters") or ""
        return cls(f"{base.rstrip('/')}/instances/", tuple(parse_qsl(str(qs))))


class InstancesApi(Protocol):
    """One page of Durable instances (the seam the list core is tested through)."""

    def list_instances(
        self, params: Mapping[str, str], continuation: str | None
    ) -> tuple[list[Mapping[str, Any]], str | None]: ...


class HttpInstancesApi:
    """``GET {instances}`` on the Durable management API, over the process's session.

    Args:
        endpoint: The instances URL and required query.
        session: The shared ``requests.Session``.
        timeout: ``(connect, read)`` seconds.
    """

    def __init__(
        self,
        endpoint: ManagementEndpoint,
        *,
        session: "requests.Session",
        timeout: tuple[float, float] = (5.0, 30.0),
    ) -> None:
        self._endpoint = endpoint
        self._session = session
        self._timeout = timeout

    def list_instances(
        self, params: Mapping[str, str], continuation: str | None
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        """One store page and the store's next token (None at the end).

        Raises:
            ManagementApiError: Transport failure, a non-200 answer or a body that is not a list.
        """
        import requests  # the session's own package, already loaded by then

        headers = {CONTINUATION_HEADER: continuation} if continuation else {}
        try:
            resp = self._session.get(
                self._endpoint.instances_url,
                params=[*self._endpoint.query, *params.items()],
                headers=headers,
                timeout=self._timeout,
            )
        except requests.RequestException as exc:
            raise ManagementApiError(f"listing instances failed: {type(exc).__name__}") from exc
        if resp.status_code != 200:
            raise ManagementApiError(
                f"listing instances answered HTTP {resp.status_code}", resp.status_code
            )
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, list):
            raise ManagementApiError("listing instances answered a body that is not a list")
        token = resp.headers.get(CONTINUATION_HEADER)
        return [s for s in body if isinstance(s, Mapping)], token


# ------------------------------------------------------------------------------ the list core


@dataclass(frozen=True, slots=True)
class RunsPage:
    """One answer of ``GET /api/runs``."""

    value: list[dict[str, Any]]
    continuation: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "continuation": self.continuation}


def rerun_of(durable_input: object) -> str | None:
    """The ``rerun_of`` recorded in an instance's input, if it is a run id."""
    params = run_parameters_of(durable_input)
    value = params.get("rerun_of") if params is not None else None
    return value if isinstance(value, str) and is_valid_instance_id(value) else None


def endpoint_of(params: Mapping[str, Any] | None, default: str | None) -> str | None:
    """The canonical endpoint a run used (its parameter, else the default endpoint)."""
    raw = params.get("endpoint_uri") if params is not None else None
    text = raw if isinstance(raw, str) and raw else default
    if text is None:
        return None
    _, url = parse_endpoint_uri(text)
    return url.url if url is not None else text


def _status_time(value: object) -> object:
    """A status time as the SDK shows it (aware datetime), else the value unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    text = text[:-1] + "+00:00" if text.endswith("Z") else text
    if "." in text:  # .NET writes 7 fractional digits; fromisoformat takes at most 6
        head, _, rest = text.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        text = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return value


def view_of_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """The run view of one management API status (as ``GET /api/runs/{id}`` shows it)."""
    return run_view(
        instance_id=str(status.get("instanceId")),
        name=status.get("name"),
        runtime_status=status.get("runtimeStatus"),
        custom_status=status.get("customStatus"),
        output=status.get("output"),
        created_time=_status_time(status.get("createdTime")),
        last_updated_time=_status_time(status.get("lastUpdatedTime")),
        rerun_of=rerun_of(status.get("input")),
    )


def list_runs(
    api: InstancesApi,
    query: RunListQuery,
    *,
    orchestrator: str,
    default_endpoint: str | None,
    max_store_pages: int = MAX_STORE_PAGES,
) -> RunsPage:
    """One page of runs: instances of ``orchestrator`` that pass ``query``'s filters.

    Each store page asks for exactly the runs still missing, so every store page is used
    whole and the store's next token is where the next answer starts. Filters the store
    cannot apply (orchestrator name, endpoint) may leave an answer with fewer than ``top``
    runs, even none, and a continuation: follow it until it is null.

    Raises:
        ManagementApiError: The management API failed.
    """
    views: list[dict[str, Any]] = []
    token = query.store_token
    for _ in range(max_store_pages):
        statuses, next_token = api.list_instances(query.store_params(query.top - len(views)), token)
        for status in statuses:
            if status.get("name") != orchestrator:
                continue
            params = run_parameters_of(status.get("input"))
            if query.endpoint and endpoint_of(params, default_endpoint) != query.endpoint:
                continue
            views.append(view_of_status(status))
        stalled = next_token == token and not statuses
        token = None if next_token is None or next_token in _END_TOKENS or stalled else next_token
        if token is None or len(views) >= query.top:
            break
    if token is not None and not _STORE_TOKEN_TEXT.match(token):
        raise ManagementApiError("the store's continuation token cannot be handed out")
    return RunsPage(views, encode_continuation(token, query) if token else None)


def iter_instances(
    api: InstancesApi, params: Mapping[str, str], *, max_pages: int = 1000
) -> Iterator[Mapping[str, Any]]:
    """Every instance the management API lists for ``params``, following every page."""
    token: str | None = None
    for _ in range(max_pages):
        statuses, next_token = api.list_instances(params, token)
        yield from statuses
        if next_token is None or next_token in _END_TOKENS or next_token == token:
            return
        token = next_token
    logger.warning("listing instances stopped after %d pages", max_pages)


# ------------------------------------------------------------------------------------ rerun


def _template_pattern(template: str, run_id: str) -> re.Pattern[str] | None:
    parts: list[str] = []
    fields = {
        "run_id": re.escape(sanitize_name_part(run_id)),
        "source_name": r"[A-Za-z0-9._-]{1,128}",
        "date": r"[0-9]{4}/[0-9]{2}/[0-9]{2}",
        "timestamp": r"[0-9]{8}T[0-9]{6}Z",
    }
    try:
        for literal, field, _, _ in Formatter().parse(template):
            parts.append(re.escape(literal))
            if field is not None:
                if field not in fields:
                    return None
                parts.append(fields[field])
    except ValueError:
        return None
    return re.compile("".join(parts) + r"\Z")


def output_was_generated(output_uri: str, *, run_id: str, template: str) -> bool:
    """Whether a run's output path came from ``OUTPUT_URI_TEMPLATE`` rather than its caller.

    True when the path fits the template filled in for ``run_id`` (any date, timestamp or
    source name), or when one of its segments is the run id itself (a path from an earlier
    template that named the run).
    """
    pattern = _template_pattern(template, run_id)
    if pattern is not None and pattern.match(output_uri):
        return True
    return sanitize_name_part(run_id) in output_uri.split("/")


def rerun_parameters(
    params: Mapping[str, Any], *, original_id: str, output_template: str
) -> dict[str, Any]:
    """The run parameters of a rerun of ``original_id``.

    The same parameters (``trigger`` ``http``), ``rerun_of`` set to the original, and
    ``endpoint_output_uri``
    dropped when the template made it (the rerun then gets its own path from the template);
    a path the original caller gave is kept.
    """
    body = {k: v for k, v in params.items() if k not in ("rerun_of", "trigger")}
    output = body.get("endpoint_output_uri")
    if isinstance(output, str) and output_was_generated(
        output, run_id=original_id, template=output_template
    ):
        del body["endpoint_output_uri"]
    body["rerun_of"] = original_id
    body["trigger"] = "http"  # a rerun is started through the HTTP API
    return body


# -------------------------------------------------------------------------------- retention


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """Runs created before this time are purged once finished."""
    return now - timedelta(days=retention_days)
