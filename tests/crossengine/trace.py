"""What one engine did with one scenario, in a form both engines can be compared in.

A :class:`Trace` is built by each engine's runner (``devhost_runner``, ``durabletask_runner``)
from what that engine records: the activities and timers it scheduled, in order, the custom
status it stored after each episode and how the instance ended. Times are virtual seconds since
the run started, so two engines that agree give equal traces.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

#: Step kinds.
ACTIVITY = "activity"
TIMER = "timer"
CONTINUE_AS_NEW = "continue_as_new"


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One thing the engine scheduled.

    Attributes:
        kind: ``activity``, ``timer`` or ``continue_as_new``.
        at: Seconds since the start when the engine recorded it.
        name: The activity's name (``""`` otherwise).
        outcome: An activity's ``completed`` / ``failed`` (``None`` if it never finished).
        fire: A timer's fire time, seconds since the start.
    """

    kind: str
    at: float
    name: str = ""
    outcome: str | None = None
    fire: float | None = None
    #: A timer the orchestrator cancelled in the very episode that created it.
    cancelled_at_creation: bool = False

    def render(self) -> str:
        if self.kind == ACTIVITY:
            return f"@{self.at:g}s activity {self.name} -> {self.outcome}"
        if self.kind == TIMER:
            cancelled = " (cancelled at creation)" if self.cancelled_at_creation else ""
            return f"@{self.at:g}s timer fires at +{self.fire:g}s{cancelled}"
        return f"@{self.at:g}s {self.kind}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How the instance ended: ``Completed`` with its output, or ``Failed`` with its message."""

    status: str
    output: Any = None
    message: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Trace:
    """One engine's record of one run."""

    engine: str
    start: datetime
    steps: tuple[Step, ...]
    #: ``(seconds since start, custom status)`` after each episode, consecutive repeats dropped.
    statuses: tuple[tuple[float, Any], ...]
    outcome: Outcome
    #: The custom status the engine's status API shows once the instance has ended.
    stored_status: Any = None
    #: Names of the allowances applied to this trace (see ``allowances``).
    applied: tuple[str, ...] = field(default=())

    def with_(self, **changes: Any) -> "Trace":
        return replace(self, **changes)

    def seconds(self, when: datetime) -> float:
        return (when - self.start).total_seconds()

    def render_steps(self) -> list[str]:
        return [step.render() for step in self.steps]


#: What the scripted endpoint's ``host:port`` (an ephemeral port, one per run) is replaced with.
ENDPOINT = "scripted-endpoint"


def scrub(value: Any, base_url: str) -> Any:
    """``value`` with this run's endpoint ``host:port`` replaced by :data:`ENDPOINT` (each run
    has its own port, which the client's messages quote; this is the harness, not an engine)."""
    if isinstance(value, str):
        return value.replace(urlsplit(base_url).netloc, ENDPOINT)
    if isinstance(value, dict):
        return {k: scrub(v, base_url) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub(v, base_url) for v in value)
    if isinstance(value, Outcome):
        return Outcome(
            status=value.status,
            output=scrub(value.output, base_url),
            message=scrub(value.message, base_url),
        )
    return value


def dedupe(statuses: list[tuple[float, Any]]) -> tuple[tuple[float, Any], ...]:
    """Drop a status equal to the one before it (engines differ in how many episodes they run:
    an episode that changes nothing is not a step)."""
    kept: list[tuple[float, Any]] = []
    for at, status in statuses:
        if not kept or kept[-1][1] != status:
            kept.append((at, status))
    return tuple(kept)
