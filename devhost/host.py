"""The local Functions host: settings, app, engine, HTTP listeners, triggers.

Two ``ThreadingHTTPServer`` listeners:

- the public one (``--host``/``--port``) serves the app's HTTP routes (``/api/...``), the
  Durable management API (``/runtime/webhooks/durabletask/...``, key required from every
  caller), the blob extension's Event Grid webhook (``/runtime/webhooks/blobs``, key required;
  ``devhost.eventgrid``, ``devhost.blob_events``) and the admin API (``/admin/host/status``,
  ``/admin/devhost/clock/advance``);
- the RPC one serves only the SDK client's keyless RPC API (``/durabletask/...``, the binding's
  ``rpcBaseUrl``) on ``127.0.0.1`` and an ephemeral port. The Durable extension does the same:
  its ``LocalHttpListener`` is a separate Kestrel host on ``http://127.0.0.1:{port}/durabletask/``,
  port 17071 unless taken, and that URI is the binding's ``rpcBaseUrl``
  (Azure/azure-functions-durable-extension at a7c6d6944041b48267ed8409bb8ec8144ab9bab9:
  ``src/WebJobs.Extensions.DurableTask/LocalHttpListener.cs`` lines 23 and 73-91,
  ``src/WebJobs.Extensions.DurableTask/HttpApiHandler.cs`` lines 1249-1255,
  ``src/WebJobs.Extensions.DurableTask/Bindings/BindingHelper.cs`` lines 59-63). devhost always
  takes a free port, so that several hosts can run side by side.

The request handler is ``devhost.listener``; the management API is ``devhost.management``.
Before any body is read, a request passes ``devhost.wire``: request-target, framing, key (for
routes that need one), then the body cap. See README "As a network listener".
"""

import functools
import inspect
import json
import logging
import os
import secrets
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func

from devhost.aio import LoopThread
from devhost.app_loader import (
    AppIndex,
    BlobTriggerSpec,
    HttpRoute,
    load_app,
    load_host_json,
    load_settings_file,
    resolve_setting_refs,
)
from devhost.blob_events import BlobEventQueue
from devhost.clock import Clock, RealClock, VirtualClock
from devhost.engine import Engine
from devhost.errors import AppLoadError, SettingsError
from devhost.eventgrid import BLOBS_EXTENSION, HOST_FUNCTIONS_PREFIX, WEBHOOKS_PREFIX
from devhost.function_settings import function_disabled, function_timeout, timer_time_zone
from devhost.listener import RPC_HOST, RPC_PREFIX, Server, handler_class
from devhost.logs import function_invocation
from devhost.management import ManagementApi, client_binding
from devhost.ncrontab import Schedule, ZonedSchedule, parse_schedule
from devhost.routing import RouteTemplate, compile_route
from devhost.triggers import BlobPoller, TimerScheduler
from devhost.validation import task_hub_error
from devhost.wire import body_limit

__all__ = ["Host", "HostConfig"]

logger = logging.getLogger(__name__)


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
        hub_error = task_hub_error(self.task_hub)
        if hub_error is not None:
            raise AppLoadError(hub_error)
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
            activities=self._activities(),
            clock=self.clock,
            max_concurrent_activities=_int_setting(durable, "maxConcurrentActivityFunctions"),
            max_concurrent_orchestrations=_int_setting(
                durable, "maxConcurrentOrchestratorFunctions"
            ),
            task_hub=self.task_hub,
            loop=self.loop,
            function_timeout=function_timeout(self.host_json.get("functionTimeout")),
            replace_running=str(durable.get("overridableExistingInstanceStates", "")).lower()
            == "anystate",
        )
        self.function_key = self._function_key()
        self.blob_triggers = self._resolve_blob_triggers() if config.triggers else []
        self.timer_triggers = self._resolve_timer_triggers() if config.triggers else []
        # Event Grid delivers the blobs of "source": "EventGrid" triggers; the poller the rest.
        self.blob_events = BlobEventQueue(
            [t for t in self.blob_triggers if t[0].event_grid], self.invoke_trigger
        )
        self.body_limit = body_limit(os.environ)
        self.management = ManagementApi(
            self.engine, lambda base_url: self._binding(base_url)["managementUrls"]
        )
        self.server = Server((config.host, config.port), handler_class(self, rpc=False))
        try:
            self.rpc_server = Server((RPC_HOST, 0), handler_class(self, rpc=True))
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

    def _resolve_blob_triggers(self) -> list[tuple[BlobTriggerSpec, str, str]]:
        result = []
        for spec in self.index.blob_triggers:
            if function_disabled(spec.function_name, os.environ):
                logger.info("function %s is disabled (app setting)", spec.function_name)
                continue
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
        result: list[tuple[Any, Schedule]] = []
        zone = timer_time_zone(os.environ)
        for spec in self.index.timer_triggers:
            if function_disabled(spec.function_name, os.environ):
                logger.info("function %s is disabled (app setting)", spec.function_name)
                continue
            what = f"function '{spec.function_name}' timer schedule"
            text = resolve_setting_refs(spec.schedule, os.environ, what=what)
            try:
                schedule = parse_schedule(text)
            except ValueError as exc:
                raise SettingsError(f"{what}: {exc}") from exc
            result.append((spec, schedule if zone is None else ZonedSchedule(schedule, zone)))
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
        self.blob_events.start()
        polled = [t for t in self.blob_triggers if not t[0].event_grid]
        if polled:
            interval = float(os.environ.get("DEVHOST_BLOB_POLL_SECONDS", "2"))
            self._blob_poller = BlobPoller(self.engine, polled, self.invoke_trigger, interval)
            self._blob_poller.start()
        if self.timer_triggers:
            self._timers = TimerScheduler(
                self.engine, self.timer_triggers, self.invoke_trigger, self.clock
            )
            self._timers.start()

    def stop(self) -> None:
        """Stop everything (idempotent enough for signal handlers)."""
        if self._timers is not None:
            self._timers.stop()
        if self._blob_poller is not None:
            self._blob_poller.stop()
        self.blob_events.stop()
        for server in (self.server, self.rpc_server):
            server.shutdown()
            server.server_close()
        self.engine.stop()
        self.loop.close()

    def webhook_url(self, function_name: str) -> str:
        """Where Event Grid delivers the blobs of an EventGrid-source trigger (without the key,
        which goes in ``code``, as the ``blobs_extension`` system key does in Azure)."""
        return (
            f"{self.base_url}{WEBHOOKS_PREFIX}{BLOBS_EXTENSION}"
            f"?functionName={HOST_FUNCTIONS_PREFIX}{function_name}"
        )

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
            elif name in self.blob_events.function_names:
                lines.append(f"\t{name}: {kind} (EventGrid) POST {self.webhook_url(name)}")
            else:
                lines.append(f"\t{name}: {kind}")
            lines.append("")
        lines.append(f"Function key (x-functions-key or ?code=): {self.function_key}")
        lines.append(f"Durable SDK RPC (loopback only, no key): {self.rpc_base_url}")
        lines.append(f"Task hub: {self.task_hub}; state: {self.state_path}")
        if isinstance(self.clock, VirtualClock):
            lines.append("Virtual clock: on (POST /admin/devhost/clock/advance?seconds=N)")
        return "\n".join(lines)

    def _activities(self) -> dict[str, Callable[[Any], Any]]:
        """The app's activities; one with a durable client binding gets the binding JSON (an
        activity may hold one like any function: Learn, "Bindings for Durable Functions")."""
        activities = dict(self.index.activities)
        for name, params in self.index.activity_clients.items():
            call = activities[name]
            activities[name] = functools.partial(_with_clients, call, params, self.client_binding)
        return activities

    # ------------------------------------------------------------------ binding JSON

    def client_binding(self, origin: str | None = None) -> str:
        """The durable client binding JSON (what the extension passes to a starter)."""
        return json.dumps(self._binding(origin or self.base_url))

    def _binding(self, base_url: str) -> dict[str, Any]:
        return client_binding(
            base_url,
            task_hub=self.task_hub,
            function_key=self.function_key,
            rpc_base_url=self.rpc_base_url,
        )

    def find_route(self, path: str, method: str) -> tuple[HttpRoute, dict[str, str]] | None:
        """The HTTP-triggered function serving ``method`` on ``path`` (decoded), with its
        route parameters; None when the path is outside the route prefix or nothing matches."""
        path = path.strip("/")
        prefix = self.route_prefix
        if prefix:
            if not (path == prefix or path.startswith(prefix + "/")):
                return None
            path = path[len(prefix) :].strip("/")
        for template, route in self.routes:
            params = template.match(path)
            if params is not None and (not route.methods or method in route.methods):
                return route, params
        return None

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
            with function_invocation(
                route.function_name, "This function was programmatically called via the host APIs."
            ):
                kwargs = self._binding_kwargs(function, {trigger_name: request})
                result = self._call_function(function, kwargs)
        except Exception:
            logger.error("Function '%s' failed:\n%s", route.function_name, traceback.format_exc())
            # An empty 500, as the host's ExceptionMiddleware (Azure/azure-functions-host
            # src/WebJobs.Script.WebHost/Middleware/ExceptionMiddleware.cs lines 29-50) sets
            # only the status code.
            return 500, {}, b""
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


def _with_clients(
    call: Callable[..., Any], params: tuple[str, ...], binding: Callable[[], str], value: Any
) -> Any:
    return call(value, **{name: binding() for name in params})
