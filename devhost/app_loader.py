"""Load a v2-model Functions app (``function_app.py``) and index its functions as the host does."""

import importlib
import inspect
import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func

from devhost.errors import AppLoadError, SettingsError
from devhost.queue_output import OutValue, QueueOutput, flush_outputs, queue_outputs

__all__ = [
    "AppIndex",
    "BlobTriggerSpec",
    "HttpRoute",
    "TimerTriggerSpec",
    "load_app",
    "load_host_json",
    "load_settings_file",
    "resolve_setting_refs",
]

logger = logging.getLogger(__name__)

_SETTING_REF = re.compile(r"%([^%]+)%")


def resolve_setting_refs(value: str, environ: Mapping[str, str], *, what: str) -> str:
    """Replace ``%NAME%`` references with app settings, as the host does for binding values.

    Raises:
        SettingsError: a referenced setting is not defined (names it and ``what`` uses it).
    """

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise SettingsError(f"{what}: app setting '{name}' (referenced as %{name}%) is not set")
        return environ[name]

    return _SETTING_REF.sub(sub, value)


def load_settings_file(path: Path) -> dict[str, str]:
    """Read ``Values`` from a local.settings.json file (missing file → empty).

    Raises:
        SettingsError: the file is not valid JSON or ``Values`` is not an object of scalars.
    """
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: must contain a JSON object")
    values = data.get("Values", {})
    if not isinstance(values, dict):
        raise SettingsError(f"{path}: 'Values' must be an object")
    result: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, (dict, list)):
            raise SettingsError(f"{path}: Values.{key} must be a string, number or boolean")
        result[str(key)] = (
            "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
        )
    return result


def load_host_json(app_dir: Path) -> dict[str, Any]:
    """Read ``host.json`` (missing → ``{}``).

    Raises:
        SettingsError: invalid JSON.
    """
    path = app_dir / "host.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as exc:
        raise SettingsError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: must contain a JSON object")
    return data


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRoute:
    """An HTTP-triggered function."""

    function_name: str
    route: str
    methods: tuple[str, ...]  # empty = any method
    auth_level: str  # "anonymous" | "function" | "admin"
    function: Any = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobTriggerSpec:
    """A blob-triggered function (``path`` still holds any %SETTING% reference)."""

    function_name: str
    path: str
    connection: str
    arg_name: str
    function: Any = field(repr=False)
    #: ``LogsAndContainerScan`` (polled) or ``EventGrid`` (delivered to the blobs webhook).
    source: str = "LogsAndContainerScan"

    @property
    def event_grid(self) -> bool:
        """Whether Event Grid delivers this trigger's blobs (devhost does not poll it)."""
        return self.source.lower() == "eventgrid"


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerTriggerSpec:
    """A timer-triggered function (``schedule`` still holds any %SETTING% reference)."""

    function_name: str
    schedule: str
    run_on_startup: bool
    arg_name: str
    function: Any = field(repr=False)
    #: ``useMonitor`` (default true): the schedule monitor keeps the status and ``past_due``.
    use_monitor: bool = True


@dataclass(slots=True, kw_only=True)
class AppIndex:
    """The indexed functions of an app.

    Attributes:
        orchestrators: name → SDK handle (context JSON str → result JSON str).
        activities: name → callable taking the decoded input.
        entities: entity name (lower case) → SDK handle (context JSON str → result JSON str).
        http_routes / blob_triggers / timer_triggers: trigger specs.
        functions: every function name → its trigger type (``httpTrigger`` ...).
        parameters: every function name → its bound parameters.
        app: the ``FunctionApp``/``DFApp`` object.
        client_binding: gives the durable client binding JSON for activities that declare a
            ``durableClient`` input (the host sets it once it knows its address).
    """

    orchestrators: dict[str, Callable[[str], str]] = field(default_factory=dict)
    activities: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    entities: dict[str, Callable[[str], str]] = field(default_factory=dict)
    http_routes: list[HttpRoute] = field(default_factory=list)
    blob_triggers: list[BlobTriggerSpec] = field(default_factory=list)
    timer_triggers: list[TimerTriggerSpec] = field(default_factory=list)
    functions: dict[str, str] = field(default_factory=dict)
    #: every function name → its parameters (each bound by a binding, checked at load).
    parameters: dict[str, tuple[str, ...]] = field(default_factory=dict)
    app: Any = None
    client_binding: Callable[[], str] | None = None


def _value(x: Any) -> Any:
    return getattr(x, "value", x)


def _activity_callable(
    name: str,
    fn: Callable[..., Any],
    input_name: str,
    clients: tuple[str, ...] = (),
    index: "AppIndex | None" = None,
    queues: tuple[QueueOutput, ...] = (),
) -> Callable[[Any], Any]:
    """The activity as ``call(input)``; ``clients`` are its ``durableClient`` input bindings.

    The Functions host binds a ``durableClient`` input on any trigger, activities included
    (Azure/azure-functions-durable-extension ``src/WebJobs.Extensions.DurableTask/
    Bindings/BindingHelper.cs`` ``DurableOrchestrationClientToString``: the same JSON as for an
    HTTP starter); the Python SDK's ``durable_client_input`` wrapper turns it into a client.
    """
    params = inspect.signature(fn).parameters
    if input_name not in params:
        raise AppLoadError(
            f"function '{name}': activity parameter '{input_name}' (input_name) is not an "
            "argument of the function"
        )

    def call(value: Any) -> Any:
        kwargs: dict[str, Any] = {input_name: value}
        if clients:
            if index is None or index.client_binding is None:
                raise RuntimeError(f"activity '{name}': no durable client binding available")
            kwargs.update({client: index.client_binding() for client in clients})
        if not queues:
            return fn(**kwargs)
        outs = {q.name: OutValue() for q in queues}
        result = fn(**kwargs, **outs)
        if inspect.isawaitable(result):
            return _flush_after(result, queues, outs)
        flush_outputs(queues, outs)
        return result

    call.__name__ = name
    return call


async def _flush_after(
    awaitable: Any, queues: tuple[QueueOutput, ...], outs: dict[str, OutValue]
) -> Any:
    result = await awaitable
    flush_outputs(queues, outs)
    return result


def load_app(app_dir: Path, *, module_name: str = "function_app", isolate: bool = True) -> AppIndex:
    """Import ``<app_dir>/function_app.py`` and index its functions.

    Args:
        app_dir: the app's root folder.
        module_name: the composition module (``function_app``).
        isolate: leave ``sys.path`` and ``sys.modules[module_name]`` as they were, so loading a
            test app in-process does not shadow another ``function_app`` (the host process
            passes False and keeps the app importable).

    Raises:
        AppLoadError: the file is missing, fails to import, defines no app, or a function's
            bindings are invalid (the message names the function).
    """
    app_dir = Path(app_dir).resolve()
    path = app_dir / f"{module_name}.py"
    if not path.exists():
        raise AppLoadError(f"{path} not found (is --app-dir the app's root folder?)")
    module = _import_app_module(app_dir, module_name, path, isolate=isolate)
    app = _the_app(module, path)
    try:
        functions = app.get_functions()
    except Exception as exc:
        raise AppLoadError(f"{path}: indexing failed: {exc}") from exc
    index = AppIndex(app=app)
    default_auth = str(_value(getattr(app, "auth_level", "function")) or "function").lower()
    for fn in functions:
        _index_function(index, fn, default_auth)
    return index


def _the_app(module: ModuleType, path: Path) -> Any:
    """The module's one app object, found as the Python worker finds it.

    Reproduces ``index_function_app`` (azure-functions-runtime 1.3.0
    ``azure_functions_runtime/loader.py`` lines 164-187; the same in azure-functions-python-worker
    ``azure_functions_worker/loader.py``): every top-level name bound to a ``FunctionRegister``
    counts, the same object under two names too, and more than one fails indexing.

    Raises:
        AppLoadError: no app object, or more than one name bound to one.
    """
    names = [n for n, v in vars(module).items() if isinstance(v, func.FunctionRegister)]
    if not names:
        raise AppLoadError(f"{path}: defines no FunctionApp/DFApp object")
    if len(names) > 1:
        kind = type(getattr(module, names[0])).__name__
        raise AppLoadError(
            f"{path}: More than one {kind} or other top level function app instances are "
            f"defined ({', '.join(names)}); the Python worker refuses to index the app"
        )
    return getattr(module, names[0])


def _bound_parameters(name: str, fn: Any) -> tuple[str, ...]:
    """The function's parameters, each bound by a binding, checked as the worker's ``Registry``.

    Reproduces ``Registry.add_indexed_function`` / ``is_context_required`` /
    ``validate_function_params`` (azure-functions-runtime 1.3.0
    ``azure_functions_runtime/functions.py`` lines 120-163 and 391-430): ``$return`` binds no
    parameter, an unbound ``context`` gets the invocation context, and any other parameter
    without a binding, or a binding without a parameter, fails indexing. (The worker's one
    exception, a single unbound parameter typed as a Service Bus settlement client, is not
    emulated: devhost serves no Service Bus trigger.)

    Raises:
        AppLoadError: a parameter without a binding or a binding without a parameter.
    """
    params = set(inspect.signature(fn.get_user_function()).parameters)
    bound = {str(b.name) for b in fn.get_bindings() if b.name != "$return"}
    if "context" in params and "context" not in bound:
        params.discard("context")
    if params - bound:
        raise AppLoadError(
            f"function '{name}': the following parameters are declared in Python but not in "
            f"the function definition (function.json or function decorators): "
            f"{sorted(params - bound)}"
        )
    if bound - params:
        raise AppLoadError(
            f"function '{name}': the following parameters are declared as bindings but are "
            f"not present in Python: {sorted(bound - params)}"
        )
    return tuple(sorted(params))


def _import_app_module(app_dir: Path, module_name: str, path: Path, *, isolate: bool) -> Any:
    added = str(app_dir) not in sys.path
    if added:
        sys.path.insert(0, str(app_dir))
    saved = sys.modules.pop(module_name, None)
    try:
        return importlib.import_module(module_name)
    except Exception as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        raise AppLoadError(f"{path}: import failed{where}: {type(exc).__name__}: {exc}") from exc
    finally:
        if isolate:
            _restore_import_state(app_dir, module_name, added=added, saved=saved)


def _restore_import_state(
    app_dir: Path, module_name: str, *, added: bool, saved: ModuleType | None
) -> None:
    if added and str(app_dir) in sys.path:
        sys.path.remove(str(app_dir))
    if saved is not None:
        sys.modules[module_name] = saved
    else:
        sys.modules.pop(module_name, None)


def _index_function(index: AppIndex, fn: Any, default_auth: str) -> None:
    name = str(fn.get_function_name())
    trigger = fn.get_trigger()
    if trigger is None:
        raise AppLoadError(f"function '{name}': has no trigger")
    ttype = str(trigger.type)
    index.functions[name] = ttype
    index.parameters[name] = _bound_parameters(name, fn)
    trig = trigger.get_dict_repr()
    add = _INDEXERS.get(ttype)
    if add is None:
        logger.warning("function '%s': trigger type %s is not served by devhost", name, ttype)
        return
    try:
        add(index, name, fn, trig, default_auth)
    except KeyError as exc:
        raise AppLoadError(f"function '{name}': binding is missing {exc}") from exc


def _add_orchestrator(
    index: AppIndex, name: str, fn: Any, trig: dict[str, Any], default_auth: str
) -> None:
    index.orchestrators[name] = fn.get_user_function()


def _add_activity(
    index: AppIndex, name: str, fn: Any, trig: dict[str, Any], default_auth: str
) -> None:
    clients = tuple(
        str(b.get_dict_repr().get("name"))
        for b in fn.get_bindings()
        if b.get_dict_repr().get("type") == "durableClient"
    )
    index.activities[name] = _activity_callable(
        name, fn.get_user_function(), trig["name"], clients, index, queue_outputs(fn)
    )


def _add_entity(
    index: AppIndex, name: str, fn: Any, trig: dict[str, Any], default_auth: str
) -> None:
    # The extension registers an entity under its name, compared case-insensitively (entity ids
    # are ``@<lower-case name>@key``: the SDK's ``EntityId.get_scheduler_id``).
    index.entities[str(trig.get("entityName") or name).lower()] = fn.get_user_function()


def _add_http(index: AppIndex, name: str, fn: Any, trig: dict[str, Any], default_auth: str) -> None:
    methods = tuple(str(_value(m)).upper() for m in (trig.get("methods") or []))
    auth = str(_value(trig.get("authLevel") or default_auth)).lower()
    route = trig.get("route") or name
    index.http_routes.append(
        HttpRoute(
            function_name=name,
            route=route.strip("/"),
            methods=methods,
            auth_level=auth,
            function=fn,
        )
    )


def _add_blob(index: AppIndex, name: str, fn: Any, trig: dict[str, Any], default_auth: str) -> None:
    if not trig.get("path"):
        raise AppLoadError(f"function '{name}': blob trigger needs a path")
    index.blob_triggers.append(
        BlobTriggerSpec(
            function_name=name,
            path=trig["path"],
            connection=trig.get("connection") or "AzureWebJobsStorage",
            arg_name=trig["name"],
            function=fn,
            source=str(_value(trig.get("source")) or "LogsAndContainerScan"),
        )
    )


def _add_timer(
    index: AppIndex, name: str, fn: Any, trig: dict[str, Any], default_auth: str
) -> None:
    if not trig.get("schedule"):
        raise AppLoadError(f"function '{name}': timer trigger needs a schedule")
    index.timer_triggers.append(
        TimerTriggerSpec(
            function_name=name,
            schedule=trig["schedule"],
            run_on_startup=bool(trig.get("runOnStartup")),
            arg_name=trig["name"],
            function=fn,
            use_monitor=trig.get("useMonitor") is not False,
        )
    )


_INDEXERS: dict[str, Callable[[AppIndex, str, Any, dict[str, Any], str], None]] = {
    "orchestrationTrigger": _add_orchestrator,
    "activityTrigger": _add_activity,
    "entityTrigger": _add_entity,
    "httpTrigger": _add_http,
    "blobTrigger": _add_blob,
    "timerTrigger": _add_timer,
}


def app_env_defaults() -> dict[str, str]:
    """Settings Core Tools provides even when local.settings.json does not."""
    return {"FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsScriptRoot": os.getcwd()}
