"""The Durable management API as ``handle(method, path, query, body) -> Response``.

Served under ``/runtime/webhooks/durabletask/`` (function key required) on the public listener
and under ``/durabletask/`` (no key) on the SDK's RPC listener; the listener checks route and
key, reads the body and sends the ``Response``. Routes, relative to those prefixes::

    POST   orchestrators/{name}[/{id}]           start (202 + management URLs)
    GET    instances?runtimeStatus&createdTimeFrom&createdTimeTo&top&instanceIdPrefix
    DELETE instances?...                          purge by filter
    GET    instances/{id}?showHistory&showHistoryOutput&showInput
    DELETE instances/{id}                         purge
    POST   instances/{id}/raiseEvent/{event}
    POST   instances/{id}/terminate|suspend|resume?reason
    POST   instances/{id}/restart?restartWithNewInstanceId
    POST   instances/{id}/rewind                  501
    GET    entities/{name}/{key}                  an entity's state (404: none)

Also here: the durable client binding JSON (``client_binding``), whose URLs point at these routes.
"""

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from devhost.engine import Engine
from devhost.errors import (
    InstanceExistsError,
    InstanceGoneError,
    InstanceNotFoundError,
    OrchestratorNotFoundError,
)
from devhost.history import TERMINAL_STATUSES, parse_time
from devhost.validation import instance_id_error

__all__ = ["MGMT_PREFIX", "ManagementApi", "Response", "client_binding"]

MGMT_PREFIX = "/runtime/webhooks/durabletask/"

Query = dict[str, list[str]]

_BAD_JSON = "The request body must be JSON."


@dataclass(frozen=True, slots=True)
class Response:
    """An answer: status, a JSON body (None: empty) and headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Call:
    """One request to an instance route."""

    iid: str
    rest: list[str]  # the segments after the instance id
    query: Query
    body: bytes
    request_url: str
    content_type: str | None = None


def client_binding(
    base_url: str, *, task_hub: str, function_key: str, rpc_base_url: str
) -> dict[str, Any]:
    """The durable client binding (what the extension passes to a starter).

    Args:
        base_url: ``http://host:port`` the management URLs point at.
        task_hub: the task hub name.
        function_key: the key the URLs carry as ``code``.
        rpc_base_url: the SDK client's RPC API.
    """
    base = f"{base_url}{MGMT_PREFIX.rstrip('/')}"
    hub = quote(task_hub)
    qs = f"taskHub={hub}&connection=Storage&code={quote(function_key)}"
    inst = f"{base}/instances/INSTANCEID"
    management = {
        "id": "INSTANCEID",
        "statusQueryGetUri": f"{inst}?{qs}",
        "sendEventPostUri": f"{inst}/raiseEvent/{{eventName}}?{qs}",
        "terminatePostUri": f"{inst}/terminate?reason={{text}}&{qs}",
        "rewindPostUri": f"{inst}/rewind?reason={{text}}&{qs}",
        "purgeHistoryDeleteUri": f"{inst}?{qs}",
        "restartPostUri": f"{inst}/restart?{qs}",
        "suspendPostUri": f"{inst}/suspend?reason={{text}}&{qs}",
        "resumePostUri": f"{inst}/resume?reason={{text}}&{qs}",
    }
    create = f"{base}/orchestrators/{{functionName}}[/{{instanceId}}]"
    code = f"code={quote(function_key)}"
    wait = "timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}"
    return {
        "taskHubName": task_hub,
        "creationUrls": {
            "createNewInstancePostUri": f"{create}?{code}",
            "createAndWaitOnNewInstancePostUri": f"{create}?{wait}&{code}",
        },
        "managementUrls": management,
        "baseUrl": base,
        "requiredQueryStringParameters": qs,
        "rpcBaseUrl": rpc_base_url,
        "httpBaseUrl": "",
    }


def _flag(query: Query, name: str) -> bool:
    return (query.get(name) or ["false"])[0].strip().lower() == "true"


def _first(query: Query, name: str) -> str:
    return (query.get(name) or [""])[0]


def _decoded(body: bytes) -> Any:
    """The decoded JSON body; None for an empty body.

    Raises:
        ValueError: the body is not JSON (or nested deeper than the stack).
    """
    if not body.strip():
        return None
    try:
        return json.loads(body)
    except RecursionError as exc:
        raise ValueError("too deeply nested") from exc


def _token_json(body: bytes) -> str | None:
    """A start input or event body as the extension stores it: the JSON token, not unwrapped.

    The SDK client posts ``json.dumps(value)`` as JSON, a string token; the extension
    deserializes the body as it is and stores that token serialized: an event
    (``HttpApiHandler.cs`` ``HandleRaiseEventRequestAsync``, lines 1006-1018, v2.13.7), so
    ``wait_for_external_event`` returns that string (azure-functions-durable-python#295), and a
    start input (``HandleStartOrchestratorRequestAsync``, lines 867-874), so the status shows
    ``input`` as that string (``DurableClient.cs`` ``ConvertOrchestrationStateToStatus`` /
    ``ParseToJToken``, lines 1079-1095) while the orchestrator still gets the value.

    Raises:
        ValueError: the body is not JSON.
    """
    decoded = _decoded(body)
    return None if decoded is None else json.dumps(decoded)


_BAD_ARGUMENTS = "One or more of the arguments submitted is incorrect"
_SOMETHING_WRONG = "Something went wrong while processing your request"
_ALREADY_EXISTS = "DurableTask.Core.Exceptions.OrchestrationAlreadyExistsException"


def _error(status: int, message: str, exception_message: str, exception_type: str) -> Response:
    """ASP.NET's ``CreateErrorResponse(status, message, exception)`` body (``HttpError``)."""
    body = {
        "Message": message,
        "ExceptionMessage": exception_message,
        "ExceptionType": exception_type,
    }
    return Response(status, body)


class ManagementApi:
    """The management API of one engine.

    Args:
        engine: the engine whose instances are managed.
        urls: ``base_url`` → the client binding's management URLs (``client_binding`` with the
            host's task hub, key and RPC URL filled in).
    """

    def __init__(self, engine: Engine, urls: Callable[[str], dict[str, str]]) -> None:
        self._engine = engine
        self._urls = urls
        self._instance_routes: dict[tuple[str, str], Callable[[_Call], Response]] = {
            ("GET", ""): self._status,
            ("DELETE", ""): self._purge,
            ("POST", "raiseEvent/"): self._raise_event,
            ("POST", "terminate"): self._terminate,
            ("POST", "suspend"): self._suspend,
            ("POST", "resume"): self._resume,
            ("POST", "restart"): self._restart,
            ("POST", "rewind"): self._rewind,
        }

    def handle(
        self,
        method: str,
        path: str,
        query: Query,
        body: bytes,
        *,
        origin: str,
        request_url: str,
        content_type: str | None = None,
        continuation: str | None = None,
    ) -> Response:
        """Answer one request.

        Args:
            method: the HTTP method.
            path: the decoded path after the API's prefix (``instances/abc``).
            query: the parsed query string.
            body: the request body (already read and within the cap).
            origin: ``http://host:port`` for the management URLs of a started instance.
            request_url: this request's URL (the ``Location`` of a running instance's status).
            content_type: the request's ``Content-Type`` (``raiseEvent`` needs JSON).
            continuation: the ``x-ms-continuation-token`` request header (instance listing).
        """
        segments = [s for s in path.split("/") if s]
        try:
            if segments[:1] == ["orchestrators"] and method == "POST":
                return self._start(segments[1:], body, origin)
            if segments[:1] == ["entities"] and method == "GET" and len(segments) == 3:
                return self._entity(segments[1], segments[2])
            if segments[:1] != ["instances"]:
                return Response(404, {"Message": "Not Found"})
            if len(segments) == 1:
                return self._list_or_purge(method, query, continuation)
            call = _Call(
                iid=segments[1],
                rest=segments[2:],
                query=query,
                body=body,
                request_url=request_url,
                content_type=content_type,
            )
            route = self._instance_routes.get((method, _operation(call.rest)))
            return route(call) if route else Response(404, {"Message": "Not Found"})
        except InstanceNotFoundError:
            return Response(404)  # empty, as the extension's CreateResponse(NotFound)
        except InstanceGoneError:
            return Response(410)

    def _entity(self, name: str, key: str) -> Response:
        """An entity's state: 200 with the state, 404 when it does not exist (HttpApiHandler.cs
        ``HandleGetEntityRequestAsync``, lines 1022-1044, commit a7c6d694)."""
        exists, state = self._engine.entities.read(f"@{name.lower()}@{key}")
        return Response(200, state) if exists else Response(404)

    # ------------------------------------------------------------------ orchestrators

    def _start(self, segments: list[str], body: bytes, origin: str) -> Response:
        if not segments:
            message = "orchestrator function name missing"
            return Response(400, {"Message": message, "ExceptionMessage": message})
        name = segments[0]
        iid = segments[1] if len(segments) > 1 else None
        try:
            input_json = _token_json(body)
        except ValueError:
            return Response(400, {"Message": _BAD_JSON, "ExceptionMessage": _BAD_JSON})
        id_error = None if iid is None else instance_id_error(iid)
        if id_error is not None:
            return _error(400, _BAD_ARGUMENTS, id_error, "System.ArgumentException")
        try:
            iid = self._engine.start_new(name, iid, input_json=input_json)
        except InstanceExistsError as exc:
            # DTFx's OrchestrationAlreadyExistsException is no ArgumentException: the handler's
            # catch-all answers 500 (HttpApiHandler.cs lines 442-449).
            return _error(500, _SOMETHING_WRONG, str(exc), _ALREADY_EXISTS)
        except (OrchestratorNotFoundError, ValueError) as exc:
            return _error(400, _BAD_ARGUMENTS, str(exc), "System.ArgumentException")
        urls = {k: v.replace("INSTANCEID", iid) for k, v in self._urls(origin).items()}
        # HttpApiHandler.cs CreateCheckStatusResponseMessage, lines 1236-1238: Location and
        # Retry-After 10.
        headers = {"Location": urls["statusQueryGetUri"], "Retry-After": "10"}
        return Response(202, urls, headers)

    # ------------------------------------------------------------------ instances

    def _list_or_purge(self, method: str, query: Query, continuation: str | None) -> Response:
        try:
            created_from = _time_arg(query, "createdTimeFrom")
            created_to = _time_arg(query, "createdTimeTo")
            top_text = _first(query, "top")
            top = int(top_text) if top_text else None
        except ValueError as exc:
            return Response(400, {"Message": f"bad query parameter: {exc}"})
        statuses = _first(query, "runtimeStatus") or None
        if method == "DELETE":
            count = self._engine.purge_by(created_from, created_to, statuses)
            return Response(200, {"instancesDeleted": count}) if count else Response(404)
        if method != "GET":
            return Response(405, {"Message": "Method not allowed"})
        result = self._engine.list_instances(
            statuses,
            created_from,
            created_to,
            None,
            instance_id_prefix=_first(query, "instanceIdPrefix") or None,
            show_input=_flag(query, "showInput"),
        )
        return _page(result, top, continuation)

    def _status(self, call: _Call) -> Response:
        status = self._engine.get_status(
            call.iid,
            show_history=_flag(call.query, "showHistory"),
            show_history_output=_flag(call.query, "showHistoryOutput"),
            show_input=(call.query.get("showInput") or ["true"])[0].lower() != "false",
        )
        if status is None:
            return Response(404)
        if status["runtimeStatus"] in TERMINAL_STATUSES:
            return Response(200, status)
        # HttpApiHandler.cs lines 684-689: "Ask for 5 seconds before retry".
        return Response(202, status, {"Location": call.request_url, "Retry-After": "5"})

    def _purge(self, call: _Call) -> Response:
        if self._engine.purge(call.iid):
            return Response(200, {"instancesDeleted": 1})
        return Response(404)

    def _raise_event(self, call: _Call) -> Response:
        # HttpApiHandler.cs lines 978-1018: 404/410 first, then the media type, then the JSON.
        status = self._engine.get_status(call.iid, show_input=False)
        if status is None:
            return Response(404)
        if status["runtimeStatus"] in TERMINAL_STATUSES:
            return Response(410)
        media_type = (call.content_type or "").split(";")[0].strip()
        if media_type.lower() != "application/json":
            return Response(400, {"Message": "Only application/json request content is supported"})
        try:
            data_json = _token_json(call.body)
        except ValueError:
            return Response(400, {"Message": _BAD_JSON})
        self._engine.raise_event_json(call.iid, call.rest[1], data_json)
        return Response(202)

    def _terminate(self, call: _Call) -> Response:
        self._engine.terminate(call.iid, _first(call.query, "reason"))
        return Response(202)

    def _suspend(self, call: _Call) -> Response:
        self._engine.suspend(call.iid, _first(call.query, "reason"))
        return Response(202)

    def _resume(self, call: _Call) -> Response:
        self._engine.resume(call.iid, _first(call.query, "reason"))
        return Response(202)

    def _restart(self, call: _Call) -> Response:
        status = self._engine.get_status(call.iid, show_input=True)
        if status is None:
            return Response(404)
        query = call.query
        new_id = (
            None
            if _flag(query, "restartWithNewInstanceId") or ("restartWithNewInstanceId" not in query)
            else call.iid
        )
        try:
            # The same input token (DurableClient.RestartAsync starts with ``status.Input``).
            token = None if status["input"] is None else json.dumps(status["input"])
            started = self._engine.start_new(status["name"], new_id, input_json=token)
        except InstanceExistsError as exc:
            return Response(400, {"Message": str(exc)})
        return Response(202, started)

    def _rewind(self, call: _Call) -> Response:
        return Response(501, {"Message": "rewind is not supported by devhost"})


def _operation(rest: list[str]) -> str:
    """The operation an instance route names: ``""`` (the instance), ``terminate``, ..."""
    if not rest:
        return ""
    if len(rest) == 1:
        return rest[0]
    if len(rest) == 2 and rest[0] == "raiseEvent":
        return "raiseEvent/"
    return "/"  # no such route


def _time_arg(query: Query, name: str) -> datetime | None:
    text = _first(query, name)
    return parse_time(text) if text else None


def _page(instances: list[dict[str, Any]], top: int | None, token: str | None) -> Response:
    """One page of ``GET instances``, paged as the extension pages its Azure Storage table.

    ``HttpApiHandler.cs`` (``HandleGetStatusRequestAsync``) reads ``top`` from the query and the
    ``x-ms-continuation-token`` request header, and answers the next token in the same header;
    the tracking store (Azure Table storage) returns instances in partition-key order, i.e. by
    instance id, which is the order of this cursor: instances created or purged between pages
    are neither skipped nor repeated. A token devhost did not issue is a 400.
    """
    ordered = sorted(instances, key=lambda s: str(s.get("instanceId")))
    if token:
        try:
            after = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
        except (ValueError, UnicodeError):
            return Response(400, {"Message": "invalid x-ms-continuation-token"})
        ordered = [s for s in ordered if str(s.get("instanceId")) > after]
    if top is None or top <= 0 or len(ordered) <= top:
        return Response(200, ordered)
    page = ordered[:top]
    cursor = base64.urlsafe_b64encode(str(page[-1]["instanceId"]).encode()).decode("ascii")
    return Response(200, page, {"x-ms-continuation-token": cursor})
