"""Emulator configuration: a JSON file, validated into frozen dataclasses.

Every problem is reported as a :class:`ConfigError` whose message names the offending key
(for example ``endpoints.heart-classifier.default_deployment``), so the CLI can print one
clear line and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_PORT = 5100
DEFAULT_HOST = "127.0.0.1"
DEFAULT_STATE_PATH = ".emulator/state.sqlite"
DEFAULT_STORAGE_CONNECTION_STRING = "UseDevelopmentStorage=true"
DEFAULT_PHASE_SECONDS = 2.0
DEFAULT_ENDPOINT = "heart-classifier"
DEFAULT_DEPLOYMENT = "default"
DEFAULT_DATASTORES: Mapping[str, str] = {"workspaceblobstore": "azureml-blobstore"}

SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "local-rg"
WORKSPACE = "local-ws"

# The status values of the service (batch-endpoint-rest.md section 4.3).
JOB_STATUSES: tuple[str, ...] = (
    "NotStarted",
    "Queued",
    "Preparing",
    "Provisioning",
    "Starting",
    "Running",
    "CancelRequested",
    "Finalizing",
    "Completed",
    "Failed",
    "Canceled",
    "NotResponding",
    "Paused",
    "Unknown",
)
TERMINAL_STATUSES: frozenset[str] = frozenset({"Completed", "Failed", "Canceled"})
OUTCOMES: tuple[str, ...] = ("Completed", "Failed", "Canceled")
FAULT_ROUTES: tuple[str, ...] = ("invoke", "get", "list", "cancel", "any")
FAULT_KINDS: tuple[str, ...] = ("http_error", "slow", "job", "drop")
# 400/403/404/409 let a test refuse an ARM cancel ("AuthorizationFailed", "UserError") the way
# ARM can; the others are the transient answers a client must retry.
FAULT_STATUSES: tuple[int, ...] = (400, 403, 404, 408, 409, 429, 500, 502, 503, 504)

#: The two service contracts the emulator can follow (``--contract``); see README, "Profiles".
CONTRACT_DOCUMENTED = "documented"
CONTRACT_LENIENT = "lenient"
CONTRACTS: tuple[str, ...] = (CONTRACT_DOCUMENTED, CONTRACT_LENIENT)
DEFAULT_CONTRACT = CONTRACT_DOCUMENTED
# Small, so that every client listing jobs through ARM really follows nextLink.
DEFAULT_ARM_PAGE_SIZE = 3

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")


class ConfigError(ValueError):
    """The config (file, flags or an admin fault object) is invalid; the message names the key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultSpec:
    """One injected fault.

    ``http_error`` and ``slow`` faults act on the next ``count`` matching requests; ``job`` faults
    replace the phase script of the next ``count`` jobs created on the endpoint. ``drop`` faults
    let the next ``count`` matching requests take effect (an invoke creates its job), then close
    the connection without an answer, after holding it ``seconds`` (default 0). ``job`` limits
    ``http_error``/``slow``/``drop`` faults to requests about that job name; ``code`` and
    ``message`` replace the error body of an ``http_error``.
    """

    kind: str
    count: int = 1
    route: str = "any"
    endpoint: str | None = None
    status: int | None = None
    retry_after: float | None = None
    seconds: float | None = None
    script: tuple[tuple[str, float], ...] | None = None
    outcome: str = "Completed"
    message: str | None = None
    code: str | None = None
    job: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"kind: must be one of {', '.join(FAULT_KINDS)}, got {self.kind!r}")
        if self.count < 1:
            raise ConfigError(f"count: must be an integer >= 1, got {self.count!r}")
        if self.route not in FAULT_ROUTES:
            raise ConfigError(
                f"route: must be one of {', '.join(FAULT_ROUTES)}, got {self.route!r}"
            )
        if self.kind == "http_error" and self.status not in FAULT_STATUSES:
            raise ConfigError(
                f"status: must be one of {', '.join(map(str, FAULT_STATUSES))}, got {self.status!r}"
            )
        if self.kind == "slow" and (self.seconds is None or self.seconds < 0):
            raise ConfigError("seconds: a 'slow' fault needs seconds >= 0")
        if self.kind == "drop" and self.seconds is not None and self.seconds < 0:
            raise ConfigError("seconds: a 'drop' fault holds the connection seconds >= 0")
        if self.outcome not in OUTCOMES:
            raise ConfigError(
                f"outcome: must be one of {', '.join(OUTCOMES)}, got {self.outcome!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (the same shape the admin route and the config file accept)."""
        out: dict[str, Any] = {"kind": self.kind, "count": self.count, "endpoint": self.endpoint}
        if self.kind == "job":
            out["script"] = None if self.script is None else [list(p) for p in self.script]
            out["outcome"] = self.outcome
            out["message"] = self.message
        else:
            out["route"] = self.route
            out["job"] = self.job
            if self.kind == "http_error":
                out["status"] = self.status
                out["retry_after"] = self.retry_after
                out["code"] = self.code
                out["message"] = self.message
            else:
                out["seconds"] = self.seconds
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointConfig:
    """One batch endpoint: its deployments, the default one, audience check and standing faults."""

    name: str
    deployments: tuple[str, ...] = (DEFAULT_DEPLOYMENT,)
    default_deployment: str | None = DEFAULT_DEPLOYMENT
    reject_audience: bool = False
    faults: tuple[FaultSpec, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ConfigError(f"endpoints: invalid endpoint name {self.name!r}")
        if self.default_deployment is not None and self.default_deployment not in self.deployments:
            raise ConfigError(
                f"endpoints.{self.name}.default_deployment: {self.default_deployment!r} "
                "is not one of its deployments"
            )


def _default_endpoints() -> dict[str, EndpointConfig]:
    return {DEFAULT_ENDPOINT: EndpointConfig(name=DEFAULT_ENDPOINT)}


@dataclass(frozen=True, slots=True, kw_only=True)
class EmulatorConfig:
    """Everything the emulator server needs. The defaults are the offline stack's defaults."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    state_path: str = DEFAULT_STATE_PATH
    storage_connection_string: str = DEFAULT_STORAGE_CONNECTION_STRING
    phase_seconds: float = DEFAULT_PHASE_SECONDS
    datastores: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DATASTORES))
    endpoints: Mapping[str, EndpointConfig] = field(default_factory=_default_endpoints)
    subscription_id: str = SUBSCRIPTION_ID
    resource_group: str = RESOURCE_GROUP
    workspace: str = WORKSPACE
    contract: str = DEFAULT_CONTRACT
    arm_page_size: int = DEFAULT_ARM_PAGE_SIZE

    def __post_init__(self) -> None:
        if self.contract not in CONTRACTS:
            raise ConfigError(
                f"contract: must be one of {', '.join(CONTRACTS)}, got {self.contract!r}"
            )
        if isinstance(self.arm_page_size, bool) or not 1 <= self.arm_page_size <= 1000:
            raise ConfigError(f"arm_page_size: must be 1..1000, got {self.arm_page_size!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port: must be 0..65535, got {self.port!r}")
        if not (math.isfinite(self.phase_seconds) and self.phase_seconds >= 0):
            raise ConfigError(f"phase_seconds: must be a number >= 0, got {self.phase_seconds!r}")
        if not self.storage_connection_string.strip():
            raise ConfigError("storage_connection_string: must not be empty")
        if not self.state_path:
            raise ConfigError("state: must not be empty")

    @property
    def documented(self) -> bool:
        """True under the ``documented`` contract (the least helpful plausible service)."""
        return self.contract == CONTRACT_DOCUMENTED

    def with_overrides(self, **changes: Any) -> EmulatorConfig:
        """Return a copy with the given fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _expect(value: object, kind: type | tuple[type, ...], key: str, what: str) -> Any:
    # bool is an int subclass; a JSON true where a number is expected is a mistake.
    if isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{key}: must be {what}, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{key}: must be {what}, got {value!r}")
    return value


def _check_keys(obj: Mapping[str, Any], allowed: set[str], prefix: str) -> None:
    for key in obj:
        if key not in allowed:
            where = f"{prefix}.{key}" if prefix else key
            raise ConfigError(f"{where}: unknown key (allowed: {', '.join(sorted(allowed))})")


def parse_script(value: object, key: str = "script") -> tuple[tuple[str, float], ...]:
    """Parse a phase script ``[["Queued", 30.0], ...]``.

    Raises:
        ConfigError: naming ``key`` when a step is not a known status with seconds >= 0.
    """
    steps = _expect(value, list, key, "a list of [status, seconds] pairs")
    if not steps:
        raise ConfigError(f"{key}: must contain at least one [status, seconds] pair")
    out: list[tuple[str, float]] = []
    for i, step in enumerate(steps):
        where = f"{key}[{i}]"
        if not isinstance(step, list | tuple) or len(step) != 2:
            raise ConfigError(f"{where}: must be a [status, seconds] pair, got {step!r}")
        status, seconds = step
        if status not in JOB_STATUSES or status in TERMINAL_STATUSES:
            raise ConfigError(
                f"{where}: status must be a non-terminal job status "
                f"({', '.join(s for s in JOB_STATUSES if s not in TERMINAL_STATUSES)}), "
                f"got {status!r}"
            )
        secs = _expect(seconds, (int, float), where, "[status, seconds] with numeric seconds")
        if not (math.isfinite(secs) and secs >= 0):
            raise ConfigError(f"{where}: seconds must be >= 0, got {seconds!r}")
        out.append((str(status), float(secs)))
    return tuple(out)


_FAULT_KEYS = {
    "kind",
    "count",
    "route",
    "endpoint",
    "status",
    "retry_after",
    "seconds",
    "script",
    "outcome",
    "message",
    "code",
    "job",
}


def parse_fault(obj: object, *, key: str = "fault", endpoint: str | None = None) -> FaultSpec:
    """Parse one fault object (admin route body or config ``faults`` entry).

    Args:
        obj: The decoded JSON object.
        key: Prefix used in error messages.
        endpoint: Endpoint to bind the fault to when the object does not name one.

    Raises:
        ConfigError: naming the bad key.
    """
    data = _expect(obj, dict, key, "an object")
    _check_keys(data, _FAULT_KEYS, key)
    if "kind" not in data:
        raise ConfigError(f"{key}.kind: is required ({', '.join(FAULT_KINDS)})")
    kind = _expect(data["kind"], str, f"{key}.kind", "a string")
    count = _expect(data.get("count", 1), int, f"{key}.count", "an integer >= 1")
    route = _expect(data.get("route", "any"), str, f"{key}.route", "a string")
    ep = data.get("endpoint", endpoint)
    if ep is not None:
        ep = _expect(ep, str, f"{key}.endpoint", "an endpoint name")
    status = data.get("status")
    if status is not None:
        status = _expect(status, int, f"{key}.status", "an HTTP status code")
    retry_after = data.get("retry_after")
    if retry_after is not None:
        retry_after = float(_expect(retry_after, (int, float), f"{key}.retry_after", "seconds"))
        if retry_after < 0:
            raise ConfigError(f"{key}.retry_after: must be >= 0")
    seconds = data.get("seconds")
    if seconds is not None:
        seconds = float(_expect(seconds, (int, float), f"{key}.seconds", "a number of seconds"))
    script = None if data.get("script") is None else parse_script(data["script"], f"{key}.script")
    outcome = _expect(data.get("outcome", "Completed"), str, f"{key}.outcome", "a string")
    message = data.get("message")
    if message is not None:
        message = _expect(message, str, f"{key}.message", "a string")
    code = data.get("code")
    if code is not None:
        code = _expect(code, str, f"{key}.code", "an error code string")
    job = data.get("job")
    if job is not None:
        job = _expect(job, str, f"{key}.job", "a job name")
    try:
        return FaultSpec(
            kind=kind,
            count=count,
            route=route,
            endpoint=ep,
            status=status,
            retry_after=retry_after,
            seconds=seconds,
            script=script,
            outcome=outcome,
            message=message,
            code=code,
            job=job,
        )
    except ConfigError as exc:
        raise ConfigError(f"{key}.{exc}") from None


_ENDPOINT_KEYS = {"deployments", "default_deployment", "reject_audience", "faults"}
_TOP_KEYS = {
    "host",
    "port",
    "state",
    "storage_connection_string",
    "phase_seconds",
    "datastores",
    "endpoints",
    "contract",
    "arm_page_size",
}


def _parse_endpoint(name: str, obj: object) -> EndpointConfig:
    key = f"endpoints.{name}"
    data = _expect(obj, dict, key, "an object")
    _check_keys(data, _ENDPOINT_KEYS, key)
    deps = _expect(
        data.get("deployments", [DEFAULT_DEPLOYMENT]),
        list,
        f"{key}.deployments",
        "a list of deployment names",
    )
    for i, dep in enumerate(deps):
        if not isinstance(dep, str) or not _NAME_RE.match(dep):
            raise ConfigError(f"{key}.deployments[{i}]: invalid deployment name {dep!r}")
    if "default_deployment" in data:
        default = data["default_deployment"]
        if default is not None:
            default = _expect(
                default, str, f"{key}.default_deployment", "a deployment name or null"
            )
    else:
        default = deps[0] if deps else None
    reject = _expect(
        data.get("reject_audience", False), bool, f"{key}.reject_audience", "true or false"
    )
    faults_raw = _expect(data.get("faults", []), list, f"{key}.faults", "a list of fault objects")
    faults = tuple(
        parse_fault(f, key=f"{key}.faults[{i}]", endpoint=name) for i, f in enumerate(faults_raw)
    )
    return EndpointConfig(
        name=name,
        deployments=tuple(deps),
        default_deployment=default,
        reject_audience=reject,
        faults=faults,
    )


def _parse_datastores(value: object) -> dict[str, str]:
    stores = _expect(value, dict, "datastores", "an object {datastore: container}")
    for ds, container in stores.items():
        if not isinstance(container, str) or not re.match(
            r"^[a-z0-9](-?[a-z0-9]){2,62}$", container
        ):
            raise ConfigError(f"datastores.{ds}: invalid container name {container!r}")
    return {str(k).lower(): v for k, v in stores.items()}


def config_from_dict(data: object) -> EmulatorConfig:
    """Validate a decoded config document.

    Raises:
        ConfigError: naming the first bad key.
    """
    doc = _expect(data, dict, "config", "a JSON object")
    _check_keys(doc, _TOP_KEYS, "")
    kwargs: dict[str, Any] = {}
    if "host" in doc:
        kwargs["host"] = _expect(doc["host"], str, "host", "a host name or address")
    if "port" in doc:
        kwargs["port"] = _expect(doc["port"], int, "port", "an integer 0..65535")
    if "state" in doc:
        kwargs["state_path"] = _expect(doc["state"], str, "state", "a file path")
    if "storage_connection_string" in doc:
        kwargs["storage_connection_string"] = _expect(
            doc["storage_connection_string"], str, "storage_connection_string", "a string"
        )
    if "phase_seconds" in doc:
        kwargs["phase_seconds"] = float(
            _expect(doc["phase_seconds"], (int, float), "phase_seconds", "a number >= 0")
        )
    if "datastores" in doc:
        kwargs["datastores"] = _parse_datastores(doc["datastores"])
    if "contract" in doc:
        kwargs["contract"] = _expect(doc["contract"], str, "contract", "documented or lenient")
    if "arm_page_size" in doc:
        kwargs["arm_page_size"] = _expect(
            doc["arm_page_size"], int, "arm_page_size", "an integer 1..1000"
        )
    if "endpoints" in doc:
        eps = _expect(doc["endpoints"], dict, "endpoints", "an object {name: endpoint}")
        if not eps:
            raise ConfigError("endpoints: must define at least one endpoint")
        kwargs["endpoints"] = {name: _parse_endpoint(name, ep) for name, ep in eps.items()}
    return EmulatorConfig(**kwargs)


def load_config(path: str | Path) -> EmulatorConfig:
    """Read and validate a JSON config file.

    Raises:
        ConfigError: the file is missing, not JSON, or has a bad key (named in the message).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config: {path} is not valid JSON: {exc}") from None
    return config_from_dict(data)
