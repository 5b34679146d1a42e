"""Run requests: the validated run parameters, and how they become a job invocation.

Parameter names follow the ADF "Run-BatchEndpoint" template (``endpoint_uri``,
``endpoint_input_uri``, ...). :func:`parse_run_request` checks every rule of design.md's
"Run parameters" table and reports ALL problems at once through :class:`InvalidRunRequest`.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from batch_endpoint import (
    MAX_URL_LENGTH,
    BatchEndpointError,
    JobInvocation,
    character_problem,
    check_host,
)
from batch_runs.fields import (
    coerce_int,
    data_name_problem,
    deployment_problem,
    file_name_problem,
    got,
    input_type_problem,
    run_id_problem,
    to_number,
)
from batch_runs.handoff import copy_url_problem, source_problem
from batch_runs.notify import notify_url_problem
from batch_runs.policy import (
    DEFAULT_POLL_BACKOFF,
    MAX_TIMER_SECONDS,
    POLL_POLICIES,
    default_output_uri,
    poll_policy_problem,
)
from batch_runs.request_errors import FieldError as FieldError
from batch_runs.request_errors import InvalidRunRequest as InvalidRunRequest
from batch_runs.request_errors import echoed_name
from batch_runs.settings import Settings
from batch_runs.tags import DEFAULT_TRIGGER, job_tags, tags_problem, trigger_problem
from batch_runs.uris import (
    INPUT_TYPES,
    endpoint_uri_problem,
    input_uri_problem,
    output_uri_problem,
    parse_endpoint_uri,
)

#: Job overrides are Int32 on the service side.
_INT32_MAX = 2**31 - 1

# job override (wire name = RunRequest field) -> smallest allowed value
_OVERRIDE_INTS: dict[str, int] = {
    "mini_batch_size": 1,
    "instance_count": 1,
    "error_threshold": -1,
    "max_retries": 0,
    "retry_timeout": 1,
}
#: Longest accepted text per field; URIs share MAX_URL_LENGTH, every other field is short.
_MAX_TEXT: dict[str, int] = {
    "endpoint_uri": MAX_URL_LENGTH,
    "endpoint_input_uri": MAX_URL_LENGTH,
    "endpoint_output_uri": MAX_URL_LENGTH,
    "output_file_name": 255,
    "notify_url": MAX_URL_LENGTH,
    "copy_output_to": MAX_URL_LENGTH,
}
_MAX_OTHER_TEXT = 256
#: Tag and property every job carries: the run's deterministic job key (``bs-<hash>``).
RUN_KEY_PROPERTY = "batch_run_key"
_MAX_PARAMETERS = 64
_KNOWN_KEYS: tuple[str, ...] = (
    "endpoint_uri",
    "endpoint_input_uri",
    "endpoint_input_type",
    "endpoint_output_uri",
    "poll_interval",
    "timeout",
    "deployment_name",
    "input_name",
    "output_name",
    *_OVERRIDE_INTS,
    "output_file_name",
    "max_queued_seconds",
    "max_not_responding_seconds",
    "poll_backoff",
    "poll_max_interval",
    "rerun_of",
    "tags",
    "trigger",
    "notify_url",
    "copy_output_to",
    "poll_policy",
)
#: RunRequest fields whose wire (ADF parameter) name differs from the field name.
_WIRE_NAMES = {
    "input_uri": "endpoint_input_uri",
    "input_type": "endpoint_input_type",
    "output_uri": "endpoint_output_uri",
}
#: The largest poll backoff factor.
MAX_POLL_BACKOFF = 10.0
#: Watchdogs (run parameter = setting in upper case): fail a job stuck in one status this long.
WATCHDOGS: tuple[str, ...] = ("max_queued_seconds", "max_not_responding_seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    """A validated request to run one batch endpoint job.

    Build it with :func:`parse_run_request` (which applies settings, defaults and the allowlist).
    ``__post_init__`` re-checks the settings-independent rules so that no invalid instance exists.
    """

    endpoint_uri: str
    input_uri: str
    input_type: str
    output_uri: str
    poll_interval: int
    timeout: int
    deployment_name: str | None = None
    input_name: str = "input_data"
    output_name: str = "score"
    mini_batch_size: int | None = None
    instance_count: int | None = None
    error_threshold: int | None = None
    max_retries: int | None = None
    retry_timeout: int | None = None
    output_file_name: str | None = None
    max_queued_seconds: int | None = None
    max_not_responding_seconds: int | None = None
    poll_backoff: float = 1.0
    poll_max_interval: int | None = None
    rerun_of: str | None = None
    tags: Mapping[str, str] | None = None
    trigger: str | None = None  # internal: set by the starters (batch_runs.tags.TRIGGERS)
    notify_url: str | None = None  # batch_runs.notify
    copy_output_to: str | None = None  # batch_runs.handoff
    poll_policy: str = "fixed"

    def __post_init__(self) -> None:
        problems = [
            *self._text_problems(),
            *self._number_problems(),
            *self._backoff_problems(),
            *self._name_problems(),
        ]
        if problems:
            raise InvalidRunRequest(
                _in_parameter_order([FieldError(f, f"{f} {p}") for f, p in problems if p])
            )

    def _text_problems(self) -> list[tuple[str, str | None]]:
        texts = {
            "endpoint_uri": self.endpoint_uri,
            "endpoint_input_type": self.input_type,
            "endpoint_input_uri": self.input_uri,
            "endpoint_output_uri": self.output_uri,
        }
        wrong = [
            (f, f"must be a string, got {type(t).__name__}")
            for f, t in texts.items()
            if not isinstance(t, str)
        ]
        if wrong:
            return list(wrong)
        checks: list[tuple[str, str | None]] = [
            ("endpoint_uri", endpoint_uri_problem(self.endpoint_uri)),
            ("endpoint_input_type", input_type_problem(self.input_type)),
            ("endpoint_input_uri", input_uri_problem(self.input_uri, self.input_type)),
            ("endpoint_output_uri", output_uri_problem(self.output_uri)),
        ]
        return [(f, p) for f, p in checks if p]

    def _number_problems(self) -> list[tuple[str, str | None]]:
        problems: list[tuple[str, str | None]] = [
            (field, f"must be a positive integer, got {number!r}")
            for field, number in (("poll_interval", self.poll_interval), ("timeout", self.timeout))
            if isinstance(number, bool) or not isinstance(number, int) or number < 1
        ]
        for field, low in {**_OVERRIDE_INTS, **dict.fromkeys(WATCHDOGS, 1)}.items():
            value = getattr(self, field)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not low <= value <= _INT32_MAX
            ):
                problems.append(
                    (field, f"must be an integer between {low} and {_INT32_MAX}, got {got(value)}")
                )
        return problems

    def _backoff_problems(self) -> list[tuple[str, str | None]]:
        problems: list[tuple[str, str | None]] = []
        backoff = self.poll_backoff
        if (
            isinstance(backoff, bool)
            or not isinstance(backoff, (int, float))
            or not (1.0 <= backoff <= MAX_POLL_BACKOFF)
        ):
            problems.append(
                (
                    "poll_backoff",
                    f"must be a number from 1 to {MAX_POLL_BACKOFF:g}, got {backoff!r}",
                )
            )
        cap = self.poll_max_interval
        if cap is not None and (
            isinstance(cap, bool) or not isinstance(cap, int) or cap < self.poll_interval
        ):
            problems.append(
                ("poll_max_interval", f"must be an integer >= poll_interval, got {got(cap)}")
            )
        return [*problems, *self._policy_problems()]

    def _policy_problems(self) -> list[tuple[str, str | None]]:
        policy = self.poll_policy
        if not isinstance(policy, str) or policy not in POLL_POLICIES:
            return [("poll_policy", f"must be one of {', '.join(POLL_POLICIES)}, got {policy!r}")]
        if policy != "backoff" and self.poll_backoff != 1.0:
            return [("poll_backoff", f"applies only to poll_policy backoff, not {policy}")]
        return []

    def _name_problems(self) -> list[tuple[str, str | None]]:
        checks: list[tuple[str, str | None]] = [
            ("input_name", data_name_problem(self.input_name)),
            ("output_name", data_name_problem(self.output_name)),
        ]
        if self.deployment_name is not None:
            checks.append(("deployment_name", deployment_problem(self.deployment_name)))
        if self.output_file_name is not None:
            checks.append(("output_file_name", file_name_problem(self.output_file_name)))
        if self.rerun_of is not None:
            checks.append(("rerun_of", run_id_problem(self.rerun_of)))
        if self.tags is not None:
            checks.append(("tags", tags_problem(self.tags)))
        if self.trigger is not None:
            checks.append(("trigger", trigger_problem(self.trigger)))
        return [(f, p) for f, p in checks if p]

    def to_dict(self) -> dict[str, Any]:
        """The request with ADF/wire parameter names; None values are omitted."""
        data: dict[str, Any] = {
            _WIRE_NAMES.get(f.name, f.name): getattr(self, f.name) for f in fields(self)
        }
        if self.poll_backoff == 1.0:
            data["poll_backoff"] = None  # the ADF fixed interval: not written
        if self.tags is not None:
            data["tags"] = dict(self.tags) or None
        if self.poll_policy == "fixed":
            data["poll_policy"] = None  # as the first release wrote a fixed run
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_resolved(cls, d: object) -> "RunRequest":
        """Rebuild a request from :meth:`to_dict` output (settings already applied).

        Used where a request crosses the Durable boundary: ``__post_init__`` re-checks every
        rule that does not depend on settings, so a damaged history cannot yield a bad request.

        Raises:
            InvalidRunRequest: ``d`` is not an object, or a field breaks a rule.
        """
        if not isinstance(d, Mapping):
            raise InvalidRunRequest(
                [FieldError("run_parameters", "run_parameters must be a JSON object")]
            )

        values: dict[str, Any] = {
            f.name: d.get(_WIRE_NAMES.get(f.name, f.name)) for f in fields(cls)
        }
        values["input_name"] = values["input_name"] or "input_data"
        values["output_name"] = values["output_name"] or "score"
        values["poll_backoff"] = values["poll_backoff"] or 1.0
        values["poll_policy"] = values["poll_policy"] or (
            "backoff" if values["poll_backoff"] != 1.0 else "fixed"
        )
        return cls(**values)

    def to_invocation(self, run_key: str | None = None, run_id: str | None = None) -> JobInvocation:
        """The job submission for the client: inputs, outputs and the overrides in wire form.

        ``output_file_name`` is folded into the output URI (its last segment), as azure-ai-ml
        does, instead of being sent beside a ``UriFile`` output. ``run_key`` (the run's
        deterministic job key) is sent as the tag and property :data:`RUN_KEY_PROPERTY`, so the
        run can find its job through the ARM Jobs list whatever name the service gave it. The
        job's tags also name the run and its trigger, beside the caller's ``tags``
        (``batch_runs.tags``).
        """
        overrides: dict[str, Any] = {}
        if self.mini_batch_size is not None:
            overrides["MiniBatchSize"] = self.mini_batch_size
        if self.instance_count is not None:
            overrides["Compute"] = {"InstanceCount": self.instance_count}
        if self.error_threshold is not None:
            overrides["ErrorThreshold"] = self.error_threshold
        if self.max_retries is not None or self.retry_timeout is not None:
            retry: dict[str, Any] = {}
            if self.max_retries is not None:
                retry["MaxRetries"] = self.max_retries
            if self.retry_timeout is not None:
                retry["Timeout"] = f"PT{self.retry_timeout}S"
            overrides["RetrySettings"] = retry
        output_uri = self.output_uri
        if self.output_file_name is not None:
            output_uri = f"{output_uri.rsplit('/', 1)[0]}/{self.output_file_name}"
        marks = {RUN_KEY_PROPERTY: run_key} if run_key else {}
        return JobInvocation(
            input_name=self.input_name,
            input_type=self.input_type,
            input_uri=self.input_uri,
            output_name=self.output_name,
            output_uri=output_uri,
            deployment_name=self.deployment_name,
            overrides=overrides,
            tags=job_tags(
                run_key=run_key,
                run_id=run_id,
                trigger=self.trigger,
                tags=self.tags,
                run_key_tag=RUN_KEY_PROPERTY,
            ),
            properties=marks,
        )


def parse_run_request(
    body: object,
    settings: Settings,
    *,
    run_id: str,
    now: datetime,
    source_name: str | None = None,
) -> RunRequest:
    """Validate run parameters and fill in defaults from settings.

    Args:
        body: The decoded JSON body (must be an object).
        settings: Defaults, bounds, allowlist and auth mode.
        run_id: The run (orchestration instance) id, used for the default output path.
        now: The run's start time, used for the default output path.
        source_name: E.g. the uploaded blob's name, used for the default output path.

    Returns:
        The validated request.

    Raises:
        InvalidRunRequest: Listing every bad parameter; each message names the field.
    """
    if not isinstance(body, Mapping):
        raise InvalidRunRequest(
            [FieldError("body", f"body must be a JSON object, got {type(body).__name__}")]
        )
    if len(body) > _MAX_PARAMETERS:
        raise InvalidRunRequest(
            [FieldError("body", f"body has {len(body)} parameters; at most {_MAX_PARAMETERS}")]
        )
    return _Parser(body, settings).parse(run_id=run_id, now=now, source_name=source_name)


class _Parser:
    """One pass over a body: every rule, every problem collected, in parameter order."""

    def __init__(self, body: Mapping[Any, Any], settings: Settings) -> None:
        self.body = body
        self.settings = settings
        self.errors: list[FieldError] = []

    def bad(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, f"{field} {message}"))

    def refused(self, field: str) -> bool:
        return any(e.field == field for e in self.errors)

    def screen(self) -> None:
        """Unknown keys; text that is too long or holds control or invisible characters."""
        for key in self.body:
            if key not in _KNOWN_KEYS:
                name = echoed_name(key)
                self.errors.append(
                    FieldError(
                        name, f"{name} is an unknown parameter; known: {', '.join(_KNOWN_KEYS)}"
                    )
                )
        for key in _KNOWN_KEYS:
            value = self.body.get(key)
            if not isinstance(value, str):
                continue
            limit = _MAX_TEXT.get(key, _MAX_OTHER_TEXT)
            problem = (
                f"must be at most {limit} characters, got {len(value)}"
                if len(value) > limit
                else character_problem(value)
            )
            if problem:
                self.bad(key, problem)

    def text(self, field: str) -> str | None:
        """The field's text; None when absent, null or ""; an error if not a clean string."""
        value = self.body.get(field)
        if self.refused(field) or value is None:
            return None  # refused already for its length or characters, or absent
        if not isinstance(value, str):
            self.bad(field, f"must be a string, got {type(value).__name__}")
            return None
        if value != value.strip():
            self.bad(field, "must not have leading or trailing whitespace")
            return None
        return value or None  # ADF passes parameters that were not given as ""

    def checked_text(self, field: str, rule: Callable[[str], str | None]) -> str | None:
        """The field's text when ``rule`` finds no problem with it (else an error)."""
        value = self.text(field)
        problem = rule(value) if value is not None else None
        if problem:
            self.bad(field, problem)
        return value

    def integer(self, field: str, low: int, high: int | None = None) -> int | None:
        value = self.body.get(field)
        if self.refused(field) or value is None or (isinstance(value, str) and not value.strip()):
            return None
        number = coerce_int(value)
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        if number is None or number < low or (high is not None and number > high):
            self.bad(field, f"must be an integer {bounds}, got {got(value)}")
            return None
        return number

    def number(self, field: str, low: float, high: float) -> float | None:
        """A number (or number text, as ADF sends) within ``[low, high]``."""
        value = self.body.get(field)
        if self.refused(field) or value is None or value == "":
            return None
        number = to_number(value)
        if number is None or not low <= number <= high:
            self.bad(field, f"must be a number from {low:g} to {high:g}, got {got(value)}")
            return None
        return number

    def endpoint(self) -> str | None:
        """``endpoint_uri`` (or ``BATCH_ENDPOINT_URI``), canonical, allowlisted."""
        endpoint = self.text("endpoint_uri")
        if endpoint is None and not self.refused("endpoint_uri"):
            endpoint = self.settings.batch_endpoint_uri
            if endpoint is None:
                self.bad("endpoint_uri", "is required (no default: BATCH_ENDPOINT_URI is not set)")
        if endpoint is None:
            return None
        problem, url = parse_endpoint_uri(endpoint)
        if url is None:
            self.bad("endpoint_uri", problem or "")
            return None
        try:
            check_host(url, self.settings.allowed_hosts, self.settings.auth_mode)
        except (ValueError, BatchEndpointError) as exc:
            self.bad("endpoint_uri", f"is refused: {exc}")
        return url.url  # the canonical text, rebuilt from the parsed parts

    def input(self) -> tuple[str, str | None]:
        """``(endpoint_input_type, endpoint_input_uri)``."""
        input_type = self.checked_text("endpoint_input_type", input_type_problem) or "UriFolder"
        rule_type = input_type if input_type in INPUT_TYPES else "UriFolder"
        input_uri = self.checked_text(
            "endpoint_input_uri", lambda uri: input_uri_problem(uri, rule_type)
        )
        if input_uri is None and not self.refused("endpoint_input_uri"):
            self.bad("endpoint_input_uri", f"is required: {_INPUT_HINT}")
        return input_type, input_uri

    def output(self, *, run_id: str, now: datetime, source_name: str | None) -> str | None:
        output_uri = self.checked_text("endpoint_output_uri", output_uri_problem)
        if output_uri is None and not self.refused("endpoint_output_uri"):
            output_uri = default_output_uri(
                self.settings.output_uri_template, run_id=run_id, source_name=source_name, now=now
            )
        return output_uri

    def timing(self) -> tuple[int, int]:
        """``(poll_interval, timeout)`` with the settings' defaults and bounds."""
        s = self.settings
        poll = self.integer("poll_interval", s.poll_interval_min, s.poll_interval_max)
        timeout = self.integer("timeout", 1, s.run_timeout_max_seconds)
        poll_value = poll if poll is not None else s.poll_interval_seconds
        timeout_value = timeout if timeout is not None else s.run_timeout_seconds
        if (
            not self.refused("poll_interval")
            and not self.refused("timeout")
            and (timeout_value < poll_value)
        ):
            self.bad("timeout", f"({timeout_value} s) must be >= poll_interval ({poll_value} s)")
        return poll_value, timeout_value

    def labels(self) -> tuple[dict[str, str] | None, str]:
        """``(tags, trigger)``: the caller's tags (None when absent) and the run's trigger."""
        tags = self.body.get("tags")
        problem = tags_problem(tags) if tags is not None else None
        if problem:
            self.bad("tags", problem)
        trigger = self.body.get("trigger", DEFAULT_TRIGGER)
        if trigger_problem(trigger):
            self.bad("trigger", trigger_problem(trigger) or "")
        valid_tags = dict(tags) if isinstance(tags, Mapping) and not problem and tags else None
        return valid_tags, trigger if isinstance(trigger, str) else DEFAULT_TRIGGER

    def handoff(self, output_uri: str | None) -> tuple[str | None, str | None]:
        """``(notify_url, copy_output_to)``: allowlisted; a copy needs a resolvable output."""
        s = self.settings
        notify = self.checked_text(
            "notify_url",
            lambda u: notify_url_problem(u, s.notify_allowed_hosts, s.notify_signing_secret),
        )
        copy_to = self.checked_text(
            "copy_output_to", lambda u: copy_url_problem(u, s.copy_allowed_hosts)
        )
        if copy_to and output_uri and not self.refused("copy_output_to"):
            problem = source_problem(output_uri, dict(s.output_datastore_urls))
            if problem:
                self.bad("copy_output_to", problem)
        return notify, copy_to

    def policy(self, backoff: float | None) -> tuple[str, float | None]:
        """``(poll_policy, poll_backoff)``: the parameter, else ``backoff`` when a factor above 1
        is given (the parameter that came first), else ``POLL_POLICY``; ``backoff`` without a
        factor grows by :data:`DEFAULT_POLL_BACKOFF`."""
        given = self.checked_text("poll_policy", poll_policy_problem)
        policy = given.lower() if given and not self.refused("poll_policy") else None
        if policy is None:
            explicit = backoff is not None and backoff > 1.0
            policy = "backoff" if explicit else self.settings.poll_policy
        if policy == "backoff" and backoff is None:
            backoff = DEFAULT_POLL_BACKOFF
        elif policy != "backoff" and backoff is not None and backoff > 1.0:
            self.bad("poll_backoff", f"applies only to poll_policy backoff, not {policy}")
        return policy, backoff

    def parse(self, *, run_id: str, now: datetime, source_name: str | None) -> RunRequest:
        self.screen()
        endpoint = self.endpoint()
        input_type, input_uri = self.input()
        output_uri = self.output(run_id=run_id, now=now, source_name=source_name)
        poll_interval, timeout = self.timing()
        deployment = self.checked_text("deployment_name", deployment_problem)
        input_name = self.checked_text("input_name", data_name_problem) or "input_data"
        output_name = self.checked_text("output_name", data_name_problem) or "score"
        overrides = {
            field: self.integer(field, low, _INT32_MAX) for field, low in _OVERRIDE_INTS.items()
        }
        output_file_name = self.checked_text("output_file_name", file_name_problem)
        watchdogs = {
            field: self.integer(field, 1, self.settings.run_timeout_max_seconds)
            or getattr(self.settings, field)
            for field in WATCHDOGS
        }
        backoff = self.number("poll_backoff", 1.0, MAX_POLL_BACKOFF)
        poll_cap = self.integer("poll_max_interval", poll_interval, MAX_TIMER_SECONDS)
        rerun_of = self.checked_text("rerun_of", run_id_problem)
        tags, trigger = self.labels()
        notify_url, copy_output_to = self.handoff(output_uri)
        policy, backoff = self.policy(backoff)
        if self.errors or endpoint is None or input_uri is None or output_uri is None:
            raise InvalidRunRequest(_in_parameter_order(self.errors))
        return RunRequest(
            endpoint_uri=endpoint,
            input_uri=input_uri,
            input_type=input_type,
            output_uri=output_uri,
            poll_interval=poll_interval,
            timeout=timeout,
            deployment_name=deployment,
            input_name=input_name,
            output_name=output_name,
            output_file_name=output_file_name,
            rerun_of=rerun_of,
            tags=tags,
            trigger=trigger,
            notify_url=notify_url,
            copy_output_to=copy_output_to,
            **overrides,
            **watchdogs,
            poll_backoff=backoff if backoff is not None else 1.0,
            poll_max_interval=poll_cap,
            poll_policy=policy,
        )


_INPUT_HINT = "e.g. azureml://datastores/<datastore>/paths/<path>/ or an https:// Blob URL"


def _in_parameter_order(errors: list[FieldError]) -> list[FieldError]:
    order = {name: i for i, name in enumerate(_KNOWN_KEYS)}
    return sorted(errors, key=lambda e: order.get(e.field, -1))
