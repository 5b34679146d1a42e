"""The local Functions host: settings, app, engine, HTTP listeners, triggers.

Two ``ThreadingHTTPServer`` listeners:

- the public one (``--host``/``--port``) serves the app's HTTP routes (``/api/...``), the
  Durable management API (``/runtime/webhooks/durabletask/...``, key required from every
  caller) and the admin API (``/admin/host/status``, ``/admin/devhost/clock/advance``);
- the RPC one serves only the SDK client's keyless RPC API (``/durabletask/...``, the binding's
  ``rpcBaseUrl``) on ``127.0.0.1`` and an ephemeral port. The Durable extension does the same:
  its ``LocalHttpListener`` is a separate Kestrel host on ``http://127.0.0.1:{port}/durabletask/``,
  port 17071 unless taken, and that URI is the binding's ``rpcBaseUrl``
  (Azure/azure-functions-durable-extension at a7c6d6944041b48267ed8409bb8ec8144ab9bab9:
  ``src/WebJobs.Extensions.DurableTask/LocalHttpListener.cs`` lines 23 and 73-91,
  ``src/WebJobs.Extensions.DurableTask/HttpApiHandler.cs`` lines 1249-1255,
  ``src/WebJobs.Extensions.DurableTask/Bindings/BindingHelper.cs`` lines 59-63). devhost always
  takes a free port, so that several hosts can run side by side.

Before any body is read, a request passes ``devhost.wire``: request-target, framing, key (for
routes that need one), then the body cap. See README "As a network listener".
"""

import inspect
import json
import logging
import math
import os
import secrets
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import azure.functions as func

from devhost.aio import LoopThread
from devhost.app_loader import (
    AppIndex,
    HttpRoute,
    load_app,
    load_host_json,
    load_settings_file,
    resolve_setting_refs,
)
from devhost.clock import Clock, RealClock, VirtualClock
from devhost.engine import (
    TERMINAL_STATUSES,
    Engine,
    InstanceExistsError,
    InstanceGoneError,
    InstanceNotFoundError,
    OrchestratorNotFoundError,
    parse_time,
)
from devhost.errors import AppLoadError, RequestRejected, SettingsError
from devhost.logs import function_invocation
from devhost.ncrontab import Schedule, parse_schedule
from devhost.routing import RouteTemplate, compile_route
from devhost.triggers import BlobPoller, TimerScheduler
from devhost.wire import Framing, body_limit, framing_of, key_matches, read_body, split_target

__all__ = ["Host", "HostConfig"]

logger = logging.getLogger(__name__)

MGMT_PREFIX = "/runtime/webhooks/durabletask/"
RPC_PREFIX = "/durabletask/"
RPC_HOST = "127.0.0.1"

# After refusing a request whose body is still arriving: drop input for at most this long (and
# this long without any) before closing, so the client can read the answer (see _linger).
_LINGER_SECONDS = 2.0
_LINGER_IDLE_SECONDS = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class HostConfig:
    """Options of ``python -m devhost start``."""

    app_dir: Path = Path(".")
    host: str = "127.0.0.1"
    port: int = 7071
    state_path: Path | None = None  # default <app_dir>/.devhost/state.sqlite
    settings_path: Path | None = None  # default <app_dir>/local.settings.json
    virtual_clock: bool = False
    triggers: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)


def apply_settings(values: dict[str, str]) -> None:
    """Put local.settings.json ``Values`` into ``os.environ``; variables already set win."""
    for key, value in values.items():
        os.environ.setdefault(key, value)


class Host:
    """A running devhost (construct, then ``start()``; ``stop()`` to shut down)."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        app_dir = config.app_dir.resolve()
        self.app_dir = app_dir
        settings_path = config.settings_path or app_dir / "local.settings.json"
        apply_settings(load_settings_file(settings_path))
        for key, value in config.extra_env.items():
            os.environ[key] = value
        self.host_json = load_host_json(app_dir)
        extensions = self.host_json.get("extensions") or {}
        durable = extensions.get("durableTask") or {}
        http_cfg = extensions.get("http") or {}
        self.route_prefix = str(http_cfg.get("routePrefix", "api")).strip("/")
        self.task_hub = resolve_setting_refs(
            str(durable.get("hubName") or "devhost"),
            os.environ,
            what="host.json durableTask.hubName",
        )
        self.index: AppIndex = load_app(app_dir, isolate=False)
        self.routes: list[tuple[RouteTemplate, HttpRoute]] = []
        for route in self.index.http_routes:
            try:
                self.routes.append((compile_route(route.route), route))
            except ValueError as exc:
                raise AppLoadError(f"function '{route.function_name}': {exc}") from exc
        self.state_path = config.state_path or app_dir / ".devhost" / "state.sqlite"
        self.clock: Clock = VirtualClock(auto_advance=True) if config.virtual_clock else RealClock()
        self.loop = LoopThread()
        self.engine = Engine(
            state_path=self.state_path,
            orchestrators=self.index.orchestrators,
            activities=self.index.activities,
            clock=self.clock,
            max_concurrent_activities=_int_setting(durable, "maxConcurrentActivityFunctions"),
            max_concurrent_orchestrations=_int_setting(
                durable, "maxConcurrentOrchestratorFunctions"
            ),
            task_hub=self.task_hub,
            loop=self.loop,
            replace_running=str(durable.get("overridableExistingInstanceStates", "")).lower()
            == "anystate",
        )
        self.function_key = self._function_key()
        self.blob_triggers = self._resolve_blob_triggers() if config.triggers else []
        self.timer_triggers = self._resolve_timer_triggers() if config.triggers else []
        self.body_limit = body_limit(os.environ)
        self.server = _Server((config.host, config.port), _make_handler(self, rpc=False))
        try:
            self.rpc_server = _Server((RPC_HOST, 0), _make_handler(self, rpc=True))
        except OSError:
            self.server.server_close()
            raise
        self.port = int(self.server.server_address[1])
        self.rpc_port = int(self.rpc_server.server_address[1])
        self._server_threads = [
            threading.Thread(target=server.serve_forever, name=name, daemon=True)
            for server, name in ((self.server, "devhost-http"), (self.rpc_server, "devhost-rpc"))
        ]
        self._blob_poller: BlobPoller | None = None
        self._timers: TimerScheduler | None = None

    # ------------------------------------------------------------------ setup

    def _function_key(self) -> str:
        key = os.environ.get("DEVHOST_FUNCTION_KEY")
        if key:
            return key
        stored = self.engine.kv_get("function_key")
        if stored:
            return stored
        key = secrets.token_urlsafe(32)
        self.engine.kv_set("function_key", key)
        return key

    def _resolve_blob_triggers(self) -> list[tuple[Any, str, str]]:
        result = []
        for spec in self.index.blob_triggers:
            what = f"function '{spec.function_name}' blob trigger path"
            path = resolve_setting_refs(spec.path, os.environ, what=what)
            conn_name = spec.connection
            conn = os.environ.get(conn_name) or os.environ.get(f"{conn_name}__connectionString")
            if not conn:
                raise SettingsError(
                    f"function '{spec.function_name}': connection setting '{conn_name}' is not set"
                )
            if "/" not in path.strip("/"):
                raise SettingsError(f"{what}: {path!r} must look like 'container/{{name}}'")
            result.append((spec, path.strip("/"), conn))
        return result

    def _resolve_timer_triggers(self) -> list[tuple[Any, Schedule]]:
        result = []
        for spec in self.index.timer_triggers:
            what = f"function '{spec.function_name}' timer schedule"
            text = resolve_setting_refs(spec.schedule, os.environ, what=what)
            try:
                result.append((spec, parse_schedule(text)))
            except ValueError as exc:
                raise SettingsError(f"{what}: {exc}") from exc
        return result

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>`` as printed at start."""
        host = self.config.host if self.config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def rpc_base_url(self) -> str:
        """The SDK client's ``rpcBaseUrl``: ``http://127.0.0.1:<rpc port>/durabletask/``."""
        return f"http://{RPC_HOST}:{self.rpc_port}{RPC_PREFIX}"

    def start(self) -> None:
        """Start the engine, HTTP server and triggers."""
        self.engine.start()
        for thread in self._server_threads:
            thread.start()
        if self.blob_triggers:
            interval = float(os.environ.get("DEVHOST_BLOB_POLL_SECONDS", "2"))
            self._blob_poller = BlobPoller(self.engine, self.blob_triggers,
                                           self.invoke_trigger, interval)
            self._blob_poller.start()
        if self.timer_triggers:
            self._timers = TimerScheduler(self.engine, self.timer_triggers,
                                          self.invoke_trigger, self.clock)
            self._timers.start()

    def stop(self) -> None:
        """Stop everything (idempotent enough for signal handlers)."""
        if self._timers is not None:
            self._timers.stop()
        if self._blob_poller is not None:
            self._blob_poller.stop()
        for server in (self.server, self.rpc_server):
            server.shutdown()
            server.server_close()
        self.engine.stop()
        self.loop.close()

    def banner(self) -> str:
        """The function list, as ``func start`` prints it."""
        lines = ["", "Functions:", ""]
        routes = {r.function_name: r for r in self.index.http_routes}
        for name, kind in self.index.functions.items():
            if name in routes:
                route = routes[name]
                methods = ",".join(route.methods) if route.methods else "GET,POST,PUT,DELETE"
                prefix = f"/{self.route_prefix}" if self.route_prefix else ""
                lines.append(f"\t{name}: [{methods}] {self.base_url}{prefix}/{route.route}")
            else:
                lines.append(f"\t{name}: {kind}")
            lines.append("")
        lines.append(f"Function key (x-functions-key or ?code=): {self.function_key}")
        lines.append(f"Durable SDK RPC (loopback only, no key): {self.rpc_base_url}")
        lines.append(f"Task hub: {self.task_hub}; state: {self.state_path}")
        if isinstance(self.clock, VirtualClock):
            lines.append("Virtual clock: on (POST /admin/devhost/clock/advance?seconds=N)")
        return "\n".join(lines)

    # ------------------------------------------------------------------ binding JSON

    def client_binding(self, origin: str | None = None) -> str:
        """The durable client binding JSON (what the extension passes to a starter)."""
        base = f"{origin or self.base_url}{MGMT_PREFIX.rstrip('/')}"
        hub = quote(self.task_hub)
        qs = f"taskHub={hub}&connection=Storage&code={quote(self.function_key)}"
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
        code = f"code={quote(self.function_key)}"
        wait = "timeout={timeoutInSeconds}&pollingInterval={intervalInSeconds}"
        return json.dumps({
            "taskHubName": self.task_hub,
            "creationUrls": {
                "createNewInstancePostUri": f"{create}?{code}",
                "createAndWaitOnNewInstancePostUri": f"{create}?{wait}&{code}",
            },
            "managementUrls": management,
            "baseUrl": base,
            "requiredQueryStringParameters": qs,
            "rpcBaseUrl": self.rpc_base_url,
            "httpBaseUrl": "",
        })

    # ------------------------------------------------------------------ invocation

    def _call_function(self, function: Any, kwargs: dict[str, Any]) -> Any:
        user = function.get_user_function()
        if inspect.iscoroutinefunction(user):
            return self.loop.run(user(**kwargs))
        result = user(**kwargs)
        if inspect.isawaitable(result):
            return self.loop.run(_await(result))
        return result

    def _binding_kwargs(self, function: Any, provided: dict[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        binding_data = provided.pop("_binding_data", {})
        for binding in function.get_bindings():
            repr_ = binding.get_dict_repr()
            direction = getattr(repr_.get("direction"), "value", repr_.get("direction"))
            name = repr_.get("name")
            if name in provided:
                kwargs[name] = provided[name]
            elif repr_.get("type") == "durableClient":
                kwargs[name] = self.client_binding()
            elif name == "$return" or direction == 1:
                continue
            else:
                raise AppLoadError(
                    f"function '{function.get_function_name()}': binding '{name}' of type "
                    f"{repr_.get('type')} is not supported by devhost"
                )
        params = inspect.signature(function.get_user_function()).parameters
        for key, value in binding_data.items():
            if key in params and key not in kwargs:
                kwargs[key] = value
        if "context" in params and "context" not in kwargs:
            kwargs["context"] = None
        return kwargs

    def invoke_trigger(self, spec: Any, reason: str, provided: dict[str, Any]) -> None:
        """Invoke a blob/timer-triggered function (raises on failure, after logging)."""
        function = spec.function
        with function_invocation(spec.function_name, reason):
            try:
                kwargs = self._binding_kwargs(function, dict(provided))
                self._call_function(function, kwargs)
            except Exception:
                logger.exception("Function '%s' failed", spec.function_name)
                raise

    def invoke_http(
        self, route: HttpRoute, request: func.HttpRequest
    ) -> tuple[int, dict[str, str], bytes]:
        """Run an HTTP-triggered function; map its result to (status, headers, body)."""
        function = route.function
        trigger_name = function.get_trigger().name
        try:
            with function_invocation(route.function_name, "This function was programmatically "
                                     "called via the host APIs."):
                kwargs = self._binding_kwargs(function, {trigger_name: request})
                result = self._call_function(function, kwargs)
        except Exception:
            logger.error("Function '%s' failed:\n%s", route.function_name, traceback.format_exc())
            body = json.dumps({"error": "Internal Server Error"}).encode()
            return 500, {"Content-Type": "application/json"}, body
        if result is None:
            return 204, {}, b""
        if isinstance(result, func.HttpResponse):
            headers = {k: v for k, v in result.headers.items()}
            if result.mimetype and not any(k.lower() == "content-type" for k in headers):
                charset = f"; charset={result.charset}" if result.charset else ""
                headers["Content-Type"] = f"{result.mimetype}{charset}"
            return result.status_code, headers, result.get_body() or b""
        if isinstance(result, (bytes, str)):
            data = result.encode() if isinstance(result, str) else result
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, data
        return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of starters/status polls must not be refused


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _int_setting(section: dict[str, Any], name: str, default: int = 10) -> int:
    value = section.get(name, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise SettingsError(f"host.json durableTask.{name}: must be a positive integer")
    return number


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return (query.get(name) or ["false"])[0].strip().lower() == "true"


def _make_handler(host: Host, *, rpc: bool) -> type[BaseHTTPRequestHandler]:
    """The request handler of the public listener, or (``rpc``) of the SDK's RPC listener."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "devhost"
        protocol_version = "HTTP/1.1"
        # Keep-alive clients would otherwise stall ~40 ms per call (Nagle + delayed ACK).
        disable_nagle_algorithm = True

        # Per request, reset in parse_request.
        _framing = Framing(length=None, chunked=False)
        _body_pending = False  # body bytes follow that nobody has read
        _expect_continue = False  # the client waits for "100 Continue" before the body
        _responded = False

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s - %s", self.address_string(), format % args)

        def parse_request(self) -> bool:
            self._framing = Framing(length=None, chunked=False)
            self._body_pending = self._expect_continue = self._responded = False
            return super().parse_request()

        def handle_expect_100(self) -> bool:
            # http.server would answer "100 Continue" right away, inviting the body before the
            # key, route and size are checked; _read_body sends it once the body is wanted.
            self._expect_continue = True
            return True

        # -------------------------------------------------------------- plumbing

        def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                  raw: bytes | None = None, *, close: bool = False) -> None:
            data = raw if raw is not None else (
                b"" if body is None else json.dumps(body).encode()
            )
            self._responded = True
            self.send_response(status)
            sent_type = False
            for key, value in (headers or {}).items():
                if key.lower() in ("content-length", "transfer-encoding", "connection"):
                    continue
                sent_type = sent_type or key.lower() == "content-type"
                self.send_header(key, value)
            if not sent_type and raw is None and body is not None:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            if close or self._body_pending:
                # The unread body would otherwise be parsed as the next request.
                self.send_header("Connection", "close")  # also sets self.close_connection
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            if self._body_pending:
                self._linger()

        def _linger(self) -> None:
            """Drop what the client still sends, for a moment, then let the connection close.

            Closing a socket with unread input makes the kernel answer with a reset, and a
            client still uploading loses our response; so shut our sending side and discard
            (never keep) input until EOF, a pause or the deadline, as nginx's lingering close.
            """
            sock = self.connection
            chunk = bytearray(65536)
            deadline = time.monotonic() + _LINGER_SECONDS
            try:
                self.wfile.flush()
                sock.shutdown(socket.SHUT_WR)
                while (left := deadline - time.monotonic()) > 0:
                    sock.settimeout(min(left, _LINGER_IDLE_SECONDS))
                    if not sock.recv_into(chunk):
                        break
            except OSError:  # timeout, reset: the connection is closing anyway
                pass

        def _read_body(self) -> bytes:
            """The request body (after the route and key checks; never over the cap)."""
            if not self._body_pending:
                return b""
            if (self._framing.length or 0) > host.body_limit:
                raise RequestRejected(413, f"request body larger than {host.body_limit} bytes")
            if self._expect_continue:
                self._expect_continue = False
                self.send_response_only(100)
                self.end_headers()
            data = read_body(self.rfile, self._framing, host.body_limit)
            self._body_pending = False
            return data

        def _key_ok(self, query: dict[str, list[str]]) -> bool:
            # As the Functions host: the x-functions-key header wins over ?code=.
            header = self.headers.get("x-functions-key")
            codes = query.get("code")
            given = header if header is not None else (codes[0] if codes else None)
            return key_matches(given, host.function_key)

        def _unauthorized(self) -> None:
            self._send(401, close=True)

        def _dispatch(self) -> None:
            try:
                self._handle()
            except (ConnectionError, TimeoutError):  # the client went away, even mid-answer
                self.close_connection = True

        def _handle(self) -> None:
            try:
                raw_path, raw_query = split_target(self.path)
                self._framing = framing_of(self.headers,
                                           http10=self.request_version == "HTTP/1.0")
                self._body_pending = self._framing.has_body
                path = unquote(raw_path)
                query = parse_qs(raw_query, keep_blank_values=True)
                if rpc:
                    self._rpc(path, query)
                else:
                    self._public(path, raw_path, raw_query, query)
            except RequestRejected as exc:
                if self._responded:
                    self.close_connection = True
                else:
                    self._send(exc.status, {"error": exc.message}, close=True)
            except (ConnectionError, TimeoutError):
                raise
            except Exception:
                logger.error("devhost request %s %s failed:\n%s", self.command,
                             self.path.partition("?")[0], traceback.format_exc())
                if self._responded:
                    self.close_connection = True
                else:
                    self._send(500, {"error": "Internal Server Error"}, close=True)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

        def _public(self, path: str, raw_path: str, raw_query: str,
                    query: dict[str, list[str]]) -> None:
            if path == "/admin/host/status":
                self._send(200, {"state": "Running", "version": "devhost",
                                 "taskHub": host.task_hub})
            elif path == "/admin/devhost/clock/advance":
                self._clock_advance(query)
            elif path.startswith(MGMT_PREFIX):
                if not self._key_ok(query):  # from every caller, loopback included
                    self._unauthorized()
                    return
                self._management(path[len(MGMT_PREFIX):], query, self._read_body())
            elif path.startswith(RPC_PREFIX):
                # The keyless SDK API is served on the loopback RPC listener only.
                self._send(404, {"error": "Not Found"})
            else:
                self._http_trigger(raw_path, raw_query, query)

        # -------------------------------------------------------------- SDK RPC listener

        def _rpc(self, path: str, query: dict[str, list[str]]) -> None:
            if not path.startswith(RPC_PREFIX):
                self._send(404, {"error": "Not Found"})
                return
            # Only local processes can connect; a browser on this machine can still be made to
            # call here (DNS rebinding: a foreign Host; a cross-site request: an Origin), and
            # the SDK client sends neither.
            own = {f"{RPC_HOST}:{host.rpc_port}", f"localhost:{host.rpc_port}"}
            if (self.headers.get("Host") or "").lower() not in own:
                raise RequestRejected(403, "the RPC listener serves local SDK clients only")
            if self.headers.get("Origin") is not None:
                raise RequestRejected(403, "the RPC listener serves local SDK clients only")
            self._management(path[len(RPC_PREFIX):], query, self._read_body())

        # -------------------------------------------------------------- admin

        def _clock_advance(self, query: dict[str, list[str]]) -> None:
            if self.command != "POST":
                self._send(405, {"error": "use POST"})
                return
            if not self._key_ok(query):
                self._unauthorized()
                return
            if not isinstance(host.clock, VirtualClock):
                self._send(400, {"error": "the virtual clock is off (start with --virtual-clock)"})
                return
            try:
                seconds = float((query.get("seconds") or [""])[0])
                if not math.isfinite(seconds) or seconds < 0:
                    raise ValueError
                now = host.clock.advance(seconds)
            except (ValueError, OverflowError):
                self._send(400, {"error": "seconds: must be a non-negative number of seconds "
                                          "that keeps the clock before year 10000"})
                return
            self._send(200, {"now": now.isoformat()})

        # -------------------------------------------------------------- HTTP triggers

        def _http_trigger(self, raw_path: str, raw_query: str,
                          query: dict[str, list[str]]) -> None:
            path = unquote(raw_path).strip("/")
            prefix = host.route_prefix
            if prefix:
                if not (path == prefix or path.startswith(prefix + "/")):
                    self._send(404, {"error": "Not Found"})
                    return
                path = path[len(prefix):].strip("/")
            for template, route in host.routes:
                params = template.match(path)
                if params is None:
                    continue
                if route.methods and self.command not in route.methods:
                    continue
                if route.auth_level != "anonymous" and not self._key_ok(query):
                    self._unauthorized()
                    return
                body = self._read_body()
                host_header = self.headers.get("Host") or f"127.0.0.1:{host.port}"
                url = f"http://{host_header}{raw_path}" + (f"?{raw_query}" if raw_query else "")
                request = func.HttpRequest(
                    method=self.command,
                    url=url,
                    headers={k: v for k, v in self.headers.items()},
                    params={k: v[0] for k, v in query.items()},
                    route_params=params,
                    body=body,
                )
                status, headers, data = host.invoke_http(route, request)
                self._send(status, headers=headers, raw=data)
                return
            self._send(404, {"error": "Not Found"})

        # -------------------------------------------------------------- management API

        def _management(self, rest: str, query: dict[str, list[str]], body: bytes) -> None:
            segments = [s for s in rest.split("/") if s]
            engine = host.engine
            method = self.command
            if segments and segments[0] == "orchestrators" and method == "POST":
                self._start(segments[1:], body)
                return
            if not segments or segments[0] != "instances":
                self._send(404, {"Message": "Not Found"})
                return
            if len(segments) == 1:
                self._list_or_purge(query)
                return
            iid = segments[1]
            try:
                if len(segments) == 2 and method == "GET":
                    status = engine.get_status(
                        iid,
                        show_history=_flag(query, "showHistory"),
                        show_history_output=_flag(query, "showHistoryOutput"),
                        show_input=(query.get("showInput") or ["true"])[0].lower() != "false",
                    )
                    if status is None:
                        self._send(404, {"Message": f"No instance with ID '{iid}' found."})
                    else:
                        code = 200 if status["runtimeStatus"] in TERMINAL_STATUSES else 202
                        headers = {} if code == 200 else {"Location": self._self_url(),
                                                          "Retry-After": "10"}
                        self._send(code, status, headers)
                elif len(segments) == 2 and method == "DELETE":
                    if engine.purge(iid):
                        self._send(200, {"instancesDeleted": 1})
                    else:
                        self._send(404, {"instancesDeleted": 0})
                elif len(segments) == 4 and segments[2] == "raiseEvent" and method == "POST":
                    data_json = self._event_payload(body)
                    if data_json is False:
                        self._send(400, {"Message": "The request body must be JSON."})
                        return
                    engine.raise_event_json(iid, segments[3], data_json)  # type: ignore[arg-type]
                    self._send(202)
                elif len(segments) == 3 and method == "POST" and segments[2] in (
                    "terminate", "suspend", "resume"
                ):
                    reason = (query.get("reason") or [""])[0]
                    getattr(engine, segments[2])(iid, reason)
                    self._send(202)
                elif len(segments) == 3 and method == "POST" and segments[2] == "restart":
                    self._restart(iid, query)
                elif len(segments) == 3 and method == "POST" and segments[2] == "rewind":
                    self._send(501, {"Message": "rewind is not supported by devhost"})
                else:
                    self._send(404, {"Message": "Not Found"})
            except InstanceNotFoundError as exc:
                self._send(404, {"Message": str(exc)})
            except InstanceGoneError as exc:
                self._send(410, {"Message": str(exc)})

        def _self_url(self) -> str:
            host_header = self.headers.get("Host") or f"127.0.0.1:{host.port}"
            return f"http://{host_header}{self.path}"

        def _event_payload(self, body: bytes) -> str | bool | None:
            """The JSON text of an input or event body; ``False`` when the body is not JSON."""
            if not body.strip():
                return None
            try:
                decoded = json.loads(body)
                if isinstance(decoded, str):
                    # The SDK client posts an already-serialized string as JSON (double-encoded).
                    try:
                        json.loads(decoded)
                        return decoded
                    except (ValueError, RecursionError):
                        return json.dumps(decoded)
                return None if decoded is None else json.dumps(decoded)
            except (ValueError, RecursionError):  # RecursionError: nested deeper than the stack
                return False

        def _start(self, segments: list[str], body: bytes) -> None:
            if not segments:
                self._send(400, {"Message": "orchestrator function name missing",
                                 "ExceptionMessage": "orchestrator function name missing"})
                return
            name = segments[0]
            iid = segments[1] if len(segments) > 1 else None
            input_json = self._event_payload(body)
            if input_json is False:
                message = "The request body must be JSON."
                self._send(400, {"Message": message, "ExceptionMessage": message})
                return
            try:
                iid = host.engine.start_new(name, iid, input_json=input_json)  # type: ignore[arg-type]
            except (InstanceExistsError, OrchestratorNotFoundError, ValueError) as exc:
                self._send(400, {"Message": str(exc), "ExceptionMessage": str(exc),
                                 "ExceptionType": type(exc).__name__})
                return
            payload = json.loads(host.client_binding(self._origin()))["managementUrls"]
            payload = {k: v.replace("INSTANCEID", iid) for k, v in payload.items()}
            self._send(202, payload, {"Location": payload["statusQueryGetUri"]})

        def _origin(self) -> str:
            if rpc:  # the management URLs of an SDK start_new point at the public listener
                return host.base_url
            return f"http://{self.headers.get('Host') or f'127.0.0.1:{host.port}'}"

        def _restart(self, iid: str, query: dict[str, list[str]]) -> None:
            status = host.engine.get_status(iid, show_input=True)
            if status is None:
                self._send(404, {"Message": f"No instance with ID '{iid}' found."})
                return
            new_id = None if _flag(query, "restartWithNewInstanceId") or (
                "restartWithNewInstanceId" not in query) else iid
            try:
                started = host.engine.start_new(status["name"], new_id, status["input"])
            except InstanceExistsError as exc:
                self._send(400, {"Message": str(exc)})
                return
            self._send(202, started)

        def _list_or_purge(self, query: dict[str, list[str]]) -> None:
            def time_arg(name: str) -> datetime | None:
                text = (query.get(name) or [""])[0]
                return parse_time(text) if text else None

            try:
                created_from = time_arg("createdTimeFrom")
                created_to = time_arg("createdTimeTo")
                top_text = (query.get("top") or [""])[0]
                top = int(top_text) if top_text else None
            except ValueError as exc:
                self._send(400, {"Message": f"bad query parameter: {exc}"})
                return
            statuses = (query.get("runtimeStatus") or [""])[0] or None
            if self.command == "DELETE":
                count = host.engine.purge_by(created_from, created_to, statuses)
                self._send(200 if count else 404, {"instancesDeleted": count})
                return
            if self.command != "GET":
                self._send(405, {"Message": "Method not allowed"})
                return
            result = host.engine.list_instances(
                statuses, created_from, created_to, top,
                instance_id_prefix=(query.get("instanceIdPrefix") or [""])[0] or None,
                show_input=_flag(query, "showInput"),
            )
            self._send(200, result)

    return Handler


def run_forever(host: Host, ready: Callable[[], None] | None = None) -> None:
    """Start ``host`` and block until SIGINT/SIGTERM."""
    import signal

    stop = threading.Event()

    def handle(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    host.start()
    if ready is not None:
        ready()
    stop.wait()
    host.stop()
