"""Pure run policy: poll timing, deadlines, job and output naming.

They take the clock and randomness as arguments so that orchestrators (which must be
deterministic) and tests can use them freely.
"""

import hashlib
import re
from datetime import UTC, datetime, timedelta
from string import Formatter

#: Placeholders ``OUTPUT_URI_TEMPLATE`` may use.
OUTPUT_TEMPLATE_FIELDS: frozenset[str] = frozenset({"run_id", "source_name", "date", "timestamp"})

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_MAX_NAME_PART = 128


def next_check_time(now: datetime, poll_interval: int, deadline: datetime) -> datetime:
    """When to look at the job next: one interval from now, but never after the deadline.

    Args:
        now: The current (orchestration) time.
        poll_interval: Seconds between polls.
        deadline: The run's overall deadline.

    Returns:
        ``min(now + poll_interval, deadline)``.
    """
    return min(now + timedelta(seconds=poll_interval), deadline)


#: Poll policies (run parameter ``poll_policy``, setting ``POLL_POLICY``): ``fixed`` waits
#: ``poll_interval`` every time (ADF), ``backoff`` grows the wait by ``poll_backoff`` per poll,
#: ``predictive`` plans the checks from recent run durations (``batch_runs.predictive``).
POLL_POLICIES: tuple[str, ...] = ("fixed", "backoff", "predictive")
#: The backoff factor of ``poll_policy=backoff`` when no ``poll_backoff`` is given.
DEFAULT_POLL_BACKOFF = 2.0


def poll_policy_problem(value: str) -> str | None:
    """Why ``value`` is not a poll policy (names the choices), or None."""
    if value.lower() in POLL_POLICIES:
        return None
    return f"must be one of {', '.join(POLL_POLICIES)}, got {value[:40]!r}"


#: The longest single durable timer the app asks for. The Durable extension on Azure Storage
#: splits timers longer than 6 days (``maximumShortTimerDuration``); staying below keeps one
#: timer per wait on every backend.
MAX_TIMER_SECONDS = 6 * 86400


def poll_delay(
    poll_interval: int,
    *,
    polls: int,
    backoff: float = 1.0,
    max_interval: int | None = None,
    seed: str = "",
) -> int:
    """Seconds until the next status check, with optional exponential backoff.

    With ``backoff`` 1 (the default, as in ADF) every wait is ``poll_interval``. Above 1 the
    wait grows by that factor per poll, capped at ``max_interval``, with up to 10 % jitter
    derived from ``seed`` (the instance id) and the poll number, so replays compute the same
    value. Never more than :data:`MAX_TIMER_SECONDS`, never less than ``poll_interval``.

    Args:
        poll_interval: The first (and, without backoff, every) wait.
        polls: Status checks made so far.
        backoff: Growth factor per poll (>= 1).
        max_interval: Cap of the wait (default: no cap below the timer limit).
        seed: Deterministic jitter source.
    """
    cap = min(max_interval or MAX_TIMER_SECONDS, MAX_TIMER_SECONDS)
    if backoff <= 1.0:
        return min(poll_interval, MAX_TIMER_SECONDS)
    grown = poll_interval * backoff ** min(polls, 64)
    digest = hashlib.sha256(f"{seed}|{polls}".encode()).digest()
    jitter = 1.0 - 0.1 * (digest[0] / 255.0)  # 0.9 .. 1.0: never beyond the cap
    return max(poll_interval, min(int(min(grown, cap) * jitter), cap))


def deadline_from(started: datetime, timeout_seconds: int) -> datetime:
    """The overall deadline of a run.

    Args:
        started: When the run started.
        timeout_seconds: The run's timeout.

    Returns:
        ``started + timeout_seconds``.
    """
    return started + timedelta(seconds=timeout_seconds)


def job_name_for(instance_id: str, started_iso: str) -> str:
    """A deterministic, Azure-valid job name for one run.

    The same orchestration instance and start time always give the same name, so a retried
    invoke can find the job it may already have created.

    Args:
        instance_id: The orchestration instance id.
        started_iso: The run's start time (ISO-8601 string from the orchestration).

    Returns:
        ``"bs-"`` + the first 32 hex digits of ``sha256(f"{instance_id}|{started_iso}")``.
    """
    digest = hashlib.sha256(f"{instance_id}|{started_iso}".encode()).hexdigest()
    return f"bs-{digest[:32]}"


def sanitize_name_part(value: str, *, default: str = "run") -> str:
    """Make ``value`` safe as one path segment: ``[A-Za-z0-9._-]`` only, other characters ``-``.

    Args:
        value: Any string.
        default: Used when nothing usable remains (empty, ``.`` or ``..``).

    Returns:
        The sanitised segment, at most 128 characters.
    """
    cleaned = _UNSAFE.sub("-", value)[:_MAX_NAME_PART]
    if cleaned.strip(".") == "":
        return default
    return cleaned


def template_fields(template: str) -> list[str]:
    """The placeholder names used by a ``str.format`` template.

    Raises:
        ValueError: The template is malformed (e.g. an unbalanced brace).
    """
    names: list[str] = []
    for _, field, _, _ in Formatter().parse(template):
        if field is not None:
            names.append(field)
    return names


def default_output_uri(
    template: str, *, run_id: str, source_name: str | None, now: datetime
) -> str:
    """Fill ``OUTPUT_URI_TEMPLATE`` to get a unique output file for a run.

    Args:
        template: The template, with ``{run_id}``, ``{source_name}``, ``{date}`` (``YYYY/MM/DD``)
            and ``{timestamp}`` (``YYYYMMDDTHHMMSSZ``) placeholders.
        run_id: The run (orchestration instance) id; sanitised.
        source_name: E.g. the uploaded blob's name; sanitised; None gives ``"run"``.
        now: The run's start time (naive values are taken as UTC).

    Returns:
        The output URI.

    Raises:
        ValueError: The template uses an unknown placeholder or is malformed.
    """
    unknown = sorted(set(template_fields(template)) - OUTPUT_TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
            f"allowed: {', '.join('{' + f + '}' for f in sorted(OUTPUT_TEMPLATE_FIELDS))}"
        )
    moment = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    return template.format(
        run_id=sanitize_name_part(run_id),
        source_name=sanitize_name_part(source_name) if source_name is not None else "run",
        date=moment.strftime("%Y/%m/%d"),
        timestamp=moment.strftime("%Y%m%dT%H%M%SZ"),
    )
