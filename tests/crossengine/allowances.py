"""Where devhost and durabletask may legitimately differ, each named, documented and applied
explicitly: the comparison never loosens anything else.

An allowance rewrites one engine's trace into the other's terms, only where its pattern is
found, and records its name in ``Trace.applied``; an allowance whose pattern is absent changes
nothing (so a devhost fix that removes a difference needs no change here to keep passing; delete
the allowance then). Anything an allowance does not rewrite is compared exactly.

- :data:`FAILURE_ENVELOPE`: how a failed orchestration's message is reported;
- :data:`ACTIVITY_FAILURE_TEXT`: the host's wording of a failed activity (the app copies it into
  ``last_poll_error``);
- :data:`NO_TIMER_AFTER_LAST_RETRY`: devhost's extra retry timer after the last attempt, and the
  delay it adds to everything after it;
- :data:`CANCELLED_TIMER_NEVER_SENT`: a timer cancelled in the episode that created it;
- :data:`LONG_TIMER_SPLIT`: durabletask's 3-day timer chunks.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from orchestrators import batch_run
from tests.crossengine.trace import ACTIVITY, TIMER, Outcome, Step, Trace


@dataclass(frozen=True, slots=True, kw_only=True)
class Allowance:
    """A named, documented difference: ``apply`` rewrites a trace of ``engine``."""

    name: str
    engine: str
    why: str
    apply: Callable[[Trace], Trace]

    def __call__(self, trace: Trace) -> Trace:
        if trace.engine != self.engine:
            return trace
        rewritten = self.apply(trace)
        if rewritten == trace:
            return trace
        return rewritten.with_(applied=(*trace.applied, self.name))


# --- text helpers ----------------------------------------------------------------------------


def map_text(value: Any, fn: Callable[[str], str]) -> Any:
    """``fn`` applied to every string inside a JSON-like value."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_text(v, fn) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(map_text(v, fn) for v in value)
    return value


def map_trace_text(trace: Trace, fn: Callable[[str], str]) -> Trace:
    """``fn`` applied to the custom statuses and the outcome (never to step names)."""
    outcome = trace.outcome
    return trace.with_(
        statuses=tuple((at, map_text(status, fn)) for at, status in trace.statuses),
        stored_status=map_text(trace.stored_status, fn),
        outcome=Outcome(
            status=outcome.status,
            output=map_text(outcome.output, fn),
            message=map_text(outcome.message, fn),
        ),
    )


# --- FAILURE_ENVELOPE --------------------------------------------------------------------------

_ENVELOPE = f"Orchestrator function '{batch_run.ORCHESTRATOR_NAME}' failed: "


def _strip_envelope(trace: Trace) -> Trace:
    message = trace.outcome.message
    if trace.outcome.status != "Failed" or not message or not message.startswith(_ENVELOPE):
        return trace
    return trace.with_(outcome=replace(trace.outcome, message=message[len(_ENVELOPE) :]))


FAILURE_ENVELOPE = Allowance(
    name="FAILURE_ENVELOPE",
    engine="devhost",
    why=(
        "The Functions host reports a failed orchestration's output as \"Orchestrator function "
        "'<name>' failed: <message>\" (devhost reproduces it from the SDK's failure state); "
        "durabletask keeps the exception's own message in FailureDetails.message and its type "
        "in error_type. The prefix, exactly, is removed from devhost's message."
    ),
    apply=_strip_envelope,
)


# --- ACTIVITY_FAILURE_TEXT ---------------------------------------------------------------------

#: devhost: devhost/failures.py ``Activity function '<name>' failed:  <Type>: <message>`` (two
#: spaces, as the extension: issue 11 section 6).
_DEVHOST_ACTIVITY_FAILURE = re.compile(r"Activity function '[A-Za-z0-9_]+' failed: +[A-Za-z_]\w*: ")
#: durabletask: worker.py ``f"{ctx.instance_id}: Activity task #{task_id} failed: {message}"``.
_DT_ACTIVITY_FAILURE = re.compile(r"[A-Za-z0-9_:-]+: Activity task #\d+ failed: ")
_NEUTRAL_ACTIVITY_FAILURE = "<activity failed>: "


def _activity_failure_text(pattern: re.Pattern[str]) -> Callable[[Trace], Trace]:
    def apply(trace: Trace) -> Trace:
        return map_trace_text(trace, lambda text: pattern.sub(_NEUTRAL_ACTIVITY_FAILURE, text))

    return apply


_ACTIVITY_FAILURE_WHY = (
    "A failed activity reaches the 1.x orchestrator as Exception(reason), and the reason is the "
    "host's wording: devhost writes \"Activity function '<name>' failed: <Type>: <message>\" "
    "(Azure's form differs again, issue 11 section 6); durabletask writes \"<instance>: Activity "
    'task #<id> failed: <message>" (the task id of the last attempt). The app copies the first '
    "line into last_poll_error. Each engine's wording, and only it, becomes "
    f"{_NEUTRAL_ACTIVITY_FAILURE!r}; the service's message after it is compared exactly."
)
ACTIVITY_FAILURE_TEXT_DEVHOST = Allowance(
    name="ACTIVITY_FAILURE_TEXT",
    engine="devhost",
    why=_ACTIVITY_FAILURE_WHY,
    apply=_activity_failure_text(_DEVHOST_ACTIVITY_FAILURE),
)
ACTIVITY_FAILURE_TEXT_DURABLETASK = Allowance(
    name="ACTIVITY_FAILURE_TEXT",
    engine="durabletask",
    why=_ACTIVITY_FAILURE_WHY,
    apply=_activity_failure_text(_DT_ACTIVITY_FAILURE),
)


# --- NO_TIMER_AFTER_LAST_RETRY -----------------------------------------------------------------

_RETRY_ATTEMPTS = batch_run.ACTIVITY_RETRY.max_number_of_attempts
_RETRY_INTERVAL = batch_run.ACTIVITY_RETRY.first_retry_interval_in_milliseconds / 1000
#: Custom-status / output fields computed from the orchestration's clock (shifted with it).
_CLOCK_FIELDS = ("next_check", "finished")


def _spurious_retry_timers(steps: tuple[Step, ...]) -> list[int]:
    """Indexes of timers that follow the last failed attempt of a with-retry call and fire one
    retry interval later (the retry timer that should not exist)."""
    found: list[int] = []
    streak, after_retry_timer = 0, False
    for i, step in enumerate(steps):
        if step.kind == ACTIVITY and step.outcome == "failed":
            streak = streak + 1 if after_retry_timer else 1
            after_retry_timer = False
        elif step.kind == TIMER and streak >= _RETRY_ATTEMPTS and step.fire == step.at:
            found.append(i)  # after the last attempt: fires at once (DTFx RetryInterceptor)
            streak = 0
        elif (
            step.kind == TIMER
            and streak
            and not after_retry_timer
            and step.fire == step.at + _RETRY_INTERVAL
        ):
            after_retry_timer = True
        else:
            streak, after_retry_timer = 0, False
    return found


def _shift_for(at: float, cuts: list[tuple[float, float]]) -> float:
    """Seconds to take off a time ``at``: one retry interval per removed timer fired by then."""
    return sum(interval for fired, interval in cuts if at >= fired)


def _shift_clock_fields(value: Any, trace: Trace, cuts: list[tuple[float, float]]) -> Any:
    if not isinstance(value, dict):
        return value
    shifted = dict(value)
    for key in _CLOCK_FIELDS:
        text = shifted.get(key)
        if isinstance(text, str) and text != shifted.get("deadline"):
            when = datetime.fromisoformat(text)
            shifted[key] = (
                when - timedelta(seconds=_shift_for(trace.seconds(when), cuts))
            ).isoformat()
    return shifted


def _drop_timer_after_last_retry(trace: Trace) -> Trace:
    spurious = _spurious_retry_timers(trace.steps)
    if not spurious:
        return trace
    cuts = [(trace.steps[i].fire or 0.0, 0.0) for i in spurious]  # fired at once: no shift
    steps = []
    for i, step in enumerate(trace.steps):
        if i in spurious:
            continue
        fire = None if step.fire is None else step.fire - _shift_for(step.fire, cuts)
        steps.append(replace(step, at=step.at - _shift_for(step.at, cuts), fire=fire))
    statuses = tuple(
        (at - _shift_for(at, cuts), _shift_clock_fields(status, trace, cuts))
        for at, status in trace.statuses
    )
    outcome = replace(trace.outcome, output=_shift_clock_fields(trace.outcome.output, trace, cuts))
    return trace.with_(
        steps=tuple(steps),
        statuses=statuses,
        stored_status=_shift_clock_fields(trace.stored_status, trace, cuts),
        outcome=outcome,
    )


NO_TIMER_AFTER_LAST_RETRY = Allowance(
    name="NO_TIMER_AFTER_LAST_RETRY",
    engine="devhost",
    why=(
        "After the last failed attempt of call_activity_with_retry, DTFx (RetryInterceptor.cs "
        "lines 73-82) still creates a back-compat timer that fires at once, and devhost does "
        "the same (issue 11 section 2); durabletask (task.py RetryableTask.compute_next_delay "
        "returns None at max_number_of_attempts) creates none. On devhost's trace that timer "
        f"(the one right after the {_RETRY_ATTEMPTS}th consecutive failed attempt, firing when "
        "it is created) is removed; no time moves, as it took none."
    ),
    apply=_drop_timer_after_last_retry,
)


# --- CANCELLED_TIMER_NEVER_SENT ----------------------------------------------------------------


def _drop_timers_cancelled_at_creation(trace: Trace) -> Trace:
    steps = tuple(s for s in trace.steps if not (s.kind == TIMER and s.cancelled_at_creation))
    return trace.with_(steps=steps) if len(steps) != len(trace.steps) else trace


CANCELLED_TIMER_NEVER_SENT = Allowance(
    name="CANCELLED_TIMER_NEVER_SENT",
    engine="devhost",
    why=(
        "A timer the orchestrator creates and cancels in the same episode (the cancel event had "
        "already arrived when task_any([timer, cancel]) was built): the 1.x SDK still sends its "
        "CreateTimer action (isCanceled: true) and devhost writes TimerCreated for it without "
        "arming it (devhost/episode.py _new_action), as the extension records every CreateTimer "
        "action; durabletask's cancel handler removes the pending createTimer action before the "
        "episode ends (worker.py create_timer_internal, _cancel_timer), so no timer exists. "
        "Such timers (marked from the SDK's own isCanceled flag) are removed from devhost's trace."
    ),
    apply=_drop_timers_cancelled_at_creation,
)


# --- LONG_TIMER_SPLIT --------------------------------------------------------------------------

#: durabletask's default ``maximum_timer_interval`` (worker.py DEFAULT_MAXIMUM_TIMER_INTERVAL).
MAX_TIMER_SECONDS = 3 * 86400.0


def _merge_timer_chunks(trace: Trace) -> Trace:
    steps: list[Step] = []
    chunk: tuple[float, float] | None = None  # (created, fires) of the chain's latest chunk
    for step in trace.steps:
        if step.kind != TIMER or step.fire is None:
            steps.append(step)
            chunk = None
            continue
        if chunk is not None and step.at == chunk[1] and chunk[1] - chunk[0] == MAX_TIMER_SECONDS:
            steps[-1] = replace(steps[-1], fire=step.fire)  # the next chunk of the same timer
        else:
            steps.append(step)
        chunk = (step.at, step.fire)
    return trace.with_(steps=tuple(steps))


LONG_TIMER_SPLIT = Allowance(
    name="LONG_TIMER_SPLIT",
    engine="durabletask",
    why=(
        "durabletask splits a timer longer than maximum_timer_interval (3 days by default, "
        "worker.py DEFAULT_MAXIMUM_TIMER_INTERVAL) into a chain of createTimer actions, each "
        "starting when the previous one fires (task.py TimerTask._get_next_fire_at); devhost "
        "schedules one timer (issue 11 section 3: Azure splits at the extension's "
        "longRunningTimerIntervalDuration). A chain of 3-day chunks on durabletask's trace is "
        "merged into one timer with the final fire time (a chunk is a timer created exactly when "
        "the previous timer, exactly 3 days long, fires)."
    ),
    apply=_merge_timer_chunks,
)


#: Every allowance, in the order they are applied.
ALLOWANCES: tuple[Allowance, ...] = (
    FAILURE_ENVELOPE,
    ACTIVITY_FAILURE_TEXT_DEVHOST,
    ACTIVITY_FAILURE_TEXT_DURABLETASK,
    NO_TIMER_AFTER_LAST_RETRY,
    CANCELLED_TIMER_NEVER_SENT,
    LONG_TIMER_SPLIT,
)


def normalize(trace: Trace) -> Trace:
    """``trace`` with every allowance for its engine applied."""
    for allowance in ALLOWANCES:
        trace = allowance(trace)
    return trace
