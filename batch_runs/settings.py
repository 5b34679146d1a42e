"""App settings: one frozen dataclass, loaded and validated from an environment mapping.

:func:`get_settings` is the only place in the project that reads ``os.environ``. Everything else
receives a :class:`Settings` (or single values from it) as a parameter.
"""

import functools
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from batch_endpoint import (
    BatchEndpointError,
    ServiceUrl,
    check_host,
    parse_host_pattern,
    parse_workspace_id,
)
from batch_runs.folders import (
    BLOB_MODES,
    DEFAULT_BLOB_MODE,
    DEFAULT_MARKER_NAME,
    marker_name_problem,
)
from batch_runs.handoff import parse_datastore_urls
from batch_runs.notify_queue import queue_name
from batch_runs.policy import POLL_POLICIES, default_output_uri
from batch_runs.uris import (
    INPUT_TYPES,
    endpoint_uri_problem,
    input_uri_problem,
    output_uri_problem,
    shown,
)

logger = logging.getLogger(__name__)

AUTH_MODES: tuple[str, ...] = ("azure", "none")
#: Blob trigger sources (``SCORING_BLOB_SOURCE``), spelled as the Functions host expects them.
BLOB_SOURCES: tuple[str, ...] = ("LogsAndContainerScan", "EventGrid")
DEFAULT_BLOB_SOURCE = "LogsAndContainerScan"
DEFAULT_OUTPUT_URI_TEMPLATE = (
    "azureml://datastores/workspaceblobstore/paths/batch-scoring/{date}/{run_id}/predictions.csv"
)
#: Finished runs older than this many days are purged by the ``purge_old_runs`` timer.
DEFAULT_RUN_RETENTION_DAYS = 30
#: When ``purge_old_runs`` runs (NCRONTAB, six fields): daily at 03:30 UTC.
DEFAULT_RETENTION_SCHEDULE = "0 30 3 * * *"
RETENTION_SCHEDULE_SETTING = "RETENTION_SCHEDULE"
#: When ``reconcile_jobs`` looks for jobs of ended runs that still run (every 15 minutes).
DEFAULT_RECONCILE_SCHEDULE = "0 */15 * * * *"
RECONCILE_SCHEDULE_SETTING = "RECONCILE_SCHEDULE"
_NCRONTAB_FIELD = re.compile(r"^[0-9A-Za-z*/,?#LW-]+\Z")
_T = TypeVar("_T")


class SettingsError(ValueError):
    """One or more settings are invalid; the message names every bad setting and why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid settings: " + "; ".join(problems))


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Validated app settings (environment names in the field comments)."""

    batch_endpoint_uri: str | None = None  # BATCH_ENDPOINT_URI
    allowed_hosts: tuple[str, ...] = ("*.inference.ml.azure.com",)  # BATCH_ENDPOINT_ALLOWED_HOSTS
    auth_mode: str = "azure"  # BATCH_ENDPOINT_AUTH
    token_scope: str = "https://ml.azure.com/.default"  # AML_TOKEN_SCOPE
    arm_endpoint: str = "https://management.azure.com"  # AML_ARM_ENDPOINT
    arm_token_scope: str = "https://management.azure.com/.default"  # AML_ARM_TOKEN_SCOPE
    azure_client_id: str | None = None  # AZURE_CLIENT_ID
    poll_interval_seconds: int = 120  # POLL_INTERVAL_SECONDS
    poll_interval_min: int = 10  # POLL_INTERVAL_MIN
    poll_interval_max: int = 3600  # POLL_INTERVAL_MAX
    poll_policy: str = "fixed"  # POLL_POLICY (fixed | backoff | predictive)
    run_timeout_seconds: int = 86400  # RUN_TIMEOUT_SECONDS
    run_timeout_max_seconds: int = 2_592_000  # RUN_TIMEOUT_MAX_SECONDS (30 days)
    output_uri_template: str = DEFAULT_OUTPUT_URI_TEMPLATE  # OUTPUT_URI_TEMPLATE
    scoring_blob_path: str = "scoring-input/{name}"  # SCORING_BLOB_PATH
    scoring_blob_source: str = DEFAULT_BLOB_SOURCE  # SCORING_BLOB_SOURCE
    scoring_schedule: str = "0 0 2 * * *"  # SCORING_SCHEDULE
    scheduled_input_uri: str | None = None  # SCHEDULED_INPUT_URI
    scheduled_input_type: str = "UriFolder"  # SCHEDULED_INPUT_TYPE
    http_timeout_seconds: float = 30.0  # BATCH_ENDPOINT_HTTP_TIMEOUT_SECONDS (read timeout)
    http_max_attempts: int = 3  # BATCH_ENDPOINT_MAX_ATTEMPTS
    http_retry_budget_seconds: float = 60.0  # BATCH_ENDPOINT_RETRY_BUDGET_SECONDS
    workspace_id: str | None = None  # AML_WORKSPACE_ID (the workspace's ARM id)
    cancel_grace_seconds: int = 900  # CANCEL_GRACE_SECONDS
    max_queued_seconds: int | None = None  # MAX_QUEUED_SECONDS (watchdog; unset = off)
    max_not_responding_seconds: int | None = None  # MAX_NOT_RESPONDING_SECONDS (watchdog)
    website_time_zone: str | None = None  # WEBSITE_TIME_ZONE (the zone schedules are read in)
    run_retention_days: int = DEFAULT_RUN_RETENTION_DAYS  # RUN_RETENTION_DAYS
    retention_schedule: str = DEFAULT_RETENTION_SCHEDULE  # RETENTION_SCHEDULE
    reconcile_schedule: str = DEFAULT_RECONCILE_SCHEDULE  # RECONCILE_SCHEDULE
    notify_allowed_hosts: tuple[str, ...] = ()  # NOTIFY_ALLOWED_HOSTS (empty: notify_url off)
    notify_signing_secret: str | None = field(default=None, repr=False)  # NOTIFY_SIGNING_SECRET
    notify_queue: str | None = None  # NOTIFY_QUEUE (unset: no run-ending queue message)
    copy_allowed_hosts: tuple[str, ...] = ()  # COPY_ALLOWED_HOSTS (empty: copy_output_to off)
    output_datastore_urls: tuple[tuple[str, str], ...] = ()  # OUTPUT_DATASTORE_URLS
    storage_connection: str | None = field(default=None, repr=False)  # AzureWebJobsStorage
    scoring_blob_mode: str = DEFAULT_BLOB_MODE  # SCORING_BLOB_MODE (file | folder-marker)
    scoring_marker_name: str = DEFAULT_MARKER_NAME  # SCORING_MARKER_NAME
    max_active_jobs_per_endpoint: int | None = None  # MAX_ACTIVE_JOBS_PER_ENDPOINT (unset = no cap)

    @property
    def http_timeout(self) -> tuple[float, float]:
        """``(connect, read)`` timeout for ``requests``; connect is fixed at 5 s."""
        return (5.0, self.http_timeout_seconds)


class _Reader:
    """Reads one environment mapping, collecting every problem instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None or not value.strip():
            return None  # empty string = unset
        return value.strip()

    def problem(self, name: str, message: str) -> None:
        self.problems.append(f"{name} {message}")

    def parse(self, name: str, default: _T, convert: Callable[[str], _T]) -> _T:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            return convert(raw)
        except ValueError as exc:
            self.problem(name, str(exc))
            return default

    def integer(self, name: str, default: int, *, low: int, high: int | None = None) -> int:
        def convert(raw: str) -> int:
            if not re.fullmatch(r"[+-]?\d{1,15}", raw):  # bounded: int() of huge text raises
                raise ValueError(f"must be an integer, got {shown(raw)}")
            value = int(raw)
            if value < low or (high is not None and value > high):
                bound = f"between {low} and {high}" if high is not None else f">= {low}"
                raise ValueError(f"must be {bound}, got {value}")
            return value

        return self.parse(name, default, convert)

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        def convert(raw: str) -> float:
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"must be a number, got {shown(raw)}") from None
            if not math.isfinite(value) or not low <= value <= high:
                raise ValueError(f"must be a number between {low:g} and {high:g}, got {raw}")
            return value

        return self.parse(name, default, convert)

    def string(self, name: str, default: str) -> str:
        return self.raw(name) or default


def _allowed_hosts(raw: str) -> tuple[str, ...]:
    patterns: list[str] = []
    errors: list[str] = []
    for item in raw.split(","):
        pattern = item.strip().lower()
        if not pattern:
            continue
        try:
            parse_host_pattern(pattern)
        except ValueError as exc:
            errors.append(str(exc))
        else:
            patterns.append(pattern)
    if errors:
        raise ValueError("has invalid pattern(s): " + "; ".join(errors))
    if not patterns:
        raise ValueError("must list at least one host pattern")
    return tuple(patterns)


def _signing_secret(raw: str) -> str:
    # Never echo the value: it is a secret.
    if len(raw) < 16:
        raise ValueError(f"must be at least 16 characters (got {len(raw)})")
    return raw


def _datastore_urls(raw: str) -> tuple[tuple[str, str], ...]:
    return tuple(parse_datastore_urls(raw).items())


def _choice(options: tuple[str, ...], *, lower: bool) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        value = raw.lower() if lower else raw
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}, got {shown(raw)}")
        return value

    return convert


def _scope(raw: str) -> str:
    if any(c.isspace() for c in raw):
        raise ValueError(
            f"must be a single token scope such as https://ml.azure.com/.default, got {shown(raw)}"
        )
    return raw


def _arm_endpoint(raw: str) -> str:
    # The same strict reading as endpoint URIs: the ARM token goes to this host.
    try:
        return ServiceUrl.parse(raw, allow_path=False).url
    except ValueError as exc:
        raise ValueError(
            "must be an https URL with no path, e.g. https://management.azure.com "
            f"(http only for loopback hosts): it {exc}"
        ) from exc


def _output_template(raw: str) -> str:
    sample_now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    try:
        sample = default_output_uri(raw, run_id="run-id", source_name="source.csv", now=sample_now)
    except ValueError as exc:
        raise ValueError(f"is invalid: {exc}") from None
    problem = output_uri_problem(sample)
    if problem:
        raise ValueError(f"does not produce a valid output URI: it {problem}")
    return raw


def _blob_path(raw: str) -> str:
    container, _, path = raw.partition("/")
    if not container or not path or "\\" in raw:
        raise ValueError(
            f"must be '<container>/<path pattern>', e.g. scoring-input/{{name}}, got {shown(raw)}"
        )
    return raw


def _blob_source(raw: str) -> str:
    for source in BLOB_SOURCES:
        if raw.lower() == source.lower():
            return source
    raise ValueError(f"must be one of {', '.join(BLOB_SOURCES)}, got {shown(raw)}")


def _marker_name(raw: str) -> str:
    problem = marker_name_problem(raw)
    if problem:
        raise ValueError(problem)
    return raw


def _schedule(raw: str) -> str:
    fields = raw.split()
    if len(fields) != 6 or not all(_NCRONTAB_FIELD.match(f) for f in fields):
        raise ValueError(
            "must be an NCRONTAB expression with six fields "
            f"(second minute hour day month day-of-week), got {shown(raw)}"
        )
    return raw


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Parse and validate settings from an environment mapping.

    Empty values count as unset. Every problem is collected before raising.

    Args:
        environ: E.g. ``os.environ`` or a dict in tests.

    Returns:
        The validated settings.

    Raises:
        SettingsError: Naming every bad setting (by environment name) and why.
    """
    r = _Reader(environ)
    d = Settings()
    allowed_hosts = r.parse("BATCH_ENDPOINT_ALLOWED_HOSTS", d.allowed_hosts, _allowed_hosts)
    auth_mode = r.parse("BATCH_ENDPOINT_AUTH", d.auth_mode, _choice(AUTH_MODES, lower=True))
    token_scope = r.parse("AML_TOKEN_SCOPE", d.token_scope, _scope)
    arm_endpoint = r.parse("AML_ARM_ENDPOINT", d.arm_endpoint, _arm_endpoint)
    arm_token_scope = r.parse("AML_ARM_TOKEN_SCOPE", d.arm_token_scope, _scope)
    azure_client_id = r.raw("AZURE_CLIENT_ID")

    poll_min = r.integer("POLL_INTERVAL_MIN", d.poll_interval_min, low=1)
    poll_max = r.integer("POLL_INTERVAL_MAX", d.poll_interval_max, low=1)
    if poll_min > poll_max:
        r.problem(
            "POLL_INTERVAL_MIN", f"({poll_min}) must not exceed POLL_INTERVAL_MAX ({poll_max})"
        )
    poll = r.integer("POLL_INTERVAL_SECONDS", d.poll_interval_seconds, low=1)
    if not poll_min <= poll <= poll_max:
        r.problem(
            "POLL_INTERVAL_SECONDS",
            f"({poll}) must be within POLL_INTERVAL_MIN..POLL_INTERVAL_MAX "
            f"({poll_min}..{poll_max})",
        )
    poll_policy = r.parse("POLL_POLICY", d.poll_policy, _choice(POLL_POLICIES, lower=True))
    timeout_max = r.integer("RUN_TIMEOUT_MAX_SECONDS", d.run_timeout_max_seconds, low=1)
    timeout = r.integer("RUN_TIMEOUT_SECONDS", d.run_timeout_seconds, low=1)
    if timeout > timeout_max:
        r.problem(
            "RUN_TIMEOUT_SECONDS",
            f"({timeout}) must not exceed RUN_TIMEOUT_MAX_SECONDS ({timeout_max})",
        )
    if timeout < poll:
        r.problem("RUN_TIMEOUT_SECONDS", f"({timeout}) must be >= POLL_INTERVAL_SECONDS ({poll})")

    template = r.parse("OUTPUT_URI_TEMPLATE", d.output_uri_template, _output_template)
    blob_path = r.parse("SCORING_BLOB_PATH", d.scoring_blob_path, _blob_path)
    blob_source = r.parse("SCORING_BLOB_SOURCE", d.scoring_blob_source, _blob_source)
    schedule = r.parse("SCORING_SCHEDULE", d.scoring_schedule, _schedule)
    input_type = r.parse(
        "SCHEDULED_INPUT_TYPE", d.scheduled_input_type, _choice(INPUT_TYPES, lower=False)
    )
    scheduled_input = r.raw("SCHEDULED_INPUT_URI")
    if scheduled_input is not None:
        problem = input_uri_problem(scheduled_input, input_type)
        if problem:
            r.problem("SCHEDULED_INPUT_URI", problem)

    http_timeout = r.number(
        "BATCH_ENDPOINT_HTTP_TIMEOUT_SECONDS", d.http_timeout_seconds, low=0.1, high=600
    )
    max_attempts = r.integer("BATCH_ENDPOINT_MAX_ATTEMPTS", d.http_max_attempts, low=1, high=10)
    budget = r.number(
        "BATCH_ENDPOINT_RETRY_BUDGET_SECONDS", d.http_retry_budget_seconds, low=0, high=3600
    )

    workspace_id = r.parse("AML_WORKSPACE_ID", "", parse_workspace_id) or None
    cancel_grace = r.integer("CANCEL_GRACE_SECONDS", d.cancel_grace_seconds, low=1, high=86400)
    watchdogs = {
        name: (r.integer(name, 0, low=1, high=timeout_max) if r.raw(name) else None)
        for name in ("MAX_QUEUED_SECONDS", "MAX_NOT_RESPONDING_SECONDS")
    }
    retention_days = r.integer("RUN_RETENTION_DAYS", d.run_retention_days, low=0, high=36500)
    retention_schedule = r.parse(RETENTION_SCHEDULE_SETTING, d.retention_schedule, _schedule)
    reconcile_schedule = r.parse(RECONCILE_SCHEDULE_SETTING, d.reconcile_schedule, _schedule)

    notify_hosts = r.parse("NOTIFY_ALLOWED_HOSTS", d.notify_allowed_hosts, _allowed_hosts)
    notify_secret = r.parse("NOTIFY_SIGNING_SECRET", "", _signing_secret) or None
    notify_queue = r.parse("NOTIFY_QUEUE", "", queue_name) or None
    copy_hosts = r.parse("COPY_ALLOWED_HOSTS", d.copy_allowed_hosts, _allowed_hosts)
    datastore_urls = r.parse("OUTPUT_DATASTORE_URLS", d.output_datastore_urls, _datastore_urls)
    max_active = r.integer("MAX_ACTIVE_JOBS_PER_ENDPOINT", 0, low=1, high=100_000) or None

    blob_mode = r.parse("SCORING_BLOB_MODE", d.scoring_blob_mode, _choice(BLOB_MODES, lower=True))
    marker_name = r.parse("SCORING_MARKER_NAME", d.scoring_marker_name, _marker_name)

    endpoint = r.raw("BATCH_ENDPOINT_URI")
    if endpoint is not None:
        problem = endpoint_uri_problem(endpoint)
        if problem:
            r.problem("BATCH_ENDPOINT_URI", problem)
        else:
            try:
                check_host(endpoint, allowed_hosts, auth_mode)
            except (ValueError, BatchEndpointError) as exc:
                r.problem("BATCH_ENDPOINT_URI", f"is refused: {exc}")

    if r.problems:
        raise SettingsError(r.problems)
    return Settings(
        batch_endpoint_uri=endpoint,
        allowed_hosts=allowed_hosts,
        auth_mode=auth_mode,
        token_scope=token_scope,
        arm_endpoint=arm_endpoint,
        arm_token_scope=arm_token_scope,
        azure_client_id=azure_client_id,
        poll_interval_seconds=poll,
        poll_interval_min=poll_min,
        poll_interval_max=poll_max,
        poll_policy=poll_policy,
        run_timeout_seconds=timeout,
        run_timeout_max_seconds=timeout_max,
        output_uri_template=template,
        scoring_blob_path=blob_path,
        scoring_blob_source=blob_source,
        scoring_schedule=schedule,
        scheduled_input_uri=scheduled_input,
        scheduled_input_type=input_type,
        http_timeout_seconds=http_timeout,
        http_max_attempts=max_attempts,
        http_retry_budget_seconds=budget,
        workspace_id=workspace_id,
        cancel_grace_seconds=cancel_grace,
        max_queued_seconds=watchdogs["MAX_QUEUED_SECONDS"],
        max_not_responding_seconds=watchdogs["MAX_NOT_RESPONDING_SECONDS"],
        run_retention_days=retention_days,
        retention_schedule=retention_schedule,
        reconcile_schedule=reconcile_schedule,
        max_active_jobs_per_endpoint=max_active,
        website_time_zone=r.raw("WEBSITE_TIME_ZONE"),
        notify_allowed_hosts=notify_hosts,
        notify_signing_secret=notify_secret,
        notify_queue=notify_queue,
        copy_allowed_hosts=copy_hosts,
        output_datastore_urls=datastore_urls,
        storage_connection=r.raw("AzureWebJobsStorage"),
        scoring_blob_mode=blob_mode,
        scoring_marker_name=marker_name,
    )


def blob_trigger_source(environ: Mapping[str, str] | None = None) -> str:
    """The blob trigger's ``source`` to index, from ``SCORING_BLOB_SOURCE``; never raises.

    The Functions host does not resolve ``%SETTING%`` in a blob trigger's ``source`` (it converts
    the indexed value straight to its ``BlobTriggerSource`` enum), so the value has to be in the
    function metadata itself: the blob binding calls this once, at import. An import-time error
    would unload every function of the app, so an invalid value indexes the default instead and
    :func:`load_settings` reports it by name on every invocation (HTTP 500, failed triggers).

    Args:
        environ: The environment; ``os.environ`` when omitted.

    Returns:
        ``"LogsAndContainerScan"`` (the default) or ``"EventGrid"``.
    """
    raw = (os.environ if environ is None else environ).get("SCORING_BLOB_SOURCE", "").strip()
    if not raw:
        return DEFAULT_BLOB_SOURCE
    try:
        return _blob_source(raw)
    except ValueError:
        logger.warning(
            "SCORING_BLOB_SOURCE is invalid; the blob trigger is indexed with %s",
            DEFAULT_BLOB_SOURCE,
        )
        return DEFAULT_BLOB_SOURCE


def retention_schedule_binding(environ: Mapping[str, str] | None = None) -> str:
    """The retention timer's ``schedule`` to index; never raises.

    ``%RETENTION_SCHEDULE%`` when that setting is set (the host resolves it), else the default
    :data:`DEFAULT_RETENTION_SCHEDULE`: the host refuses to load a function whose ``%SETTING%``
    does not resolve, and the setting is optional. An invalid value also indexes the default;
    :func:`load_settings` reports it by name when the timer runs. Called once, at import, as
    :func:`blob_trigger_source` is.

    Args:
        environ: The environment; ``os.environ`` when omitted.
    """
    return _timer_binding(RETENTION_SCHEDULE_SETTING, DEFAULT_RETENTION_SCHEDULE, environ)


def reconcile_schedule_binding(environ: Mapping[str, str] | None = None) -> str:
    """The ``reconcile_jobs`` timer's ``schedule`` to index (as :func:`retention_schedule_binding`:
    ``%RECONCILE_SCHEDULE%`` when set and valid, else :data:`DEFAULT_RECONCILE_SCHEDULE`)."""
    return _timer_binding(RECONCILE_SCHEDULE_SETTING, DEFAULT_RECONCILE_SCHEDULE, environ)


def _timer_binding(setting: str, default: str, environ: Mapping[str, str] | None) -> str:
    raw = (os.environ if environ is None else environ).get(setting, "").strip()
    if not raw:
        return default
    try:
        _schedule(raw)
    except ValueError:
        logger.warning("%s is invalid; its timer is indexed with %s", setting, default)
        return default
    return f"%{setting}%"


@functools.cache
def get_settings() -> Settings:
    """The process's settings, loaded once from ``os.environ`` (call lazily, inside bindings).

    Returns:
        The validated settings.

    Raises:
        SettingsError: If the environment holds invalid settings (not cached; fix and retry).
    """
    return load_settings(os.environ)
