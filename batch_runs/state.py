"""The run orchestrator's state and the pure decisions it makes.

The orchestrator (``orchestrators/batch_run.py``) is a thin, deterministic generator: every
decision it takes (is the job final, when is the next check, has the deadline passed, what does
the custom status / output / failure message say) is a pure function here, unit-tested without
the Durable SDK. ``RunState`` is carried across ``continue_as_new`` as a plain dict.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from batch_endpoint import BatchJob, JobStatus, is_final
from batch_runs.contracts import DEFAULT_CANCEL_GRACE_SECONDS
from batch_runs.policy import deadline_from, next_check_time, poll_delay
from batch_runs.predictive import PollPlan
from batch_runs.request import RunRequest

#: Polls per orchestration execution before ``continue_as_new`` truncates the history.
#: The SDK replays the whole execution on every episode, so a poll's CPU grows with the polls
#: already in the execution; a poll (a timer and an activity over two episodes, 8 events) is
#: the minimum unit. Measured at 1,000 polls (``python -m bench.bench_replay``, see
#: docs/performance.md): 1 and 2 polls per execution are the cheapest per poll, 20 costs about
#: 2x as much and 40 about 4x. 2 halves the ``continue_as_new`` episodes of 1 at the same cost.
POLLS_PER_EXECUTION = 2

#: Consecutive polls that may fail transiently (after the activity's own retries) before the
#: run gives up. A short outage must not fail a job that runs for hours.
MAX_CONSECUTIVE_POLL_FAILURES = 5

#: Name of the external event that asks a run to cancel its job.
CANCEL_EVENT = "cancel"


def ends_execution(polls_in_execution: int, *, replaying: bool, cancel_raised: bool) -> bool:
    """Whether the monitor loop ends this execution (then ``continue_as_new``).

    After ``POLLS_PER_EXECUTION`` polls, but not while replaying a history in which the code
    that wrote it kept polling in this execution (an instance in flight across a deploy that
    lowered the constant, e.g. from 20): ending there would emit ``continue_as_new`` where the
    history holds the next timer, which DTFx rejects as non-deterministic (Azure/durabletask
    ``src/DurableTask.Core/TaskOrchestrationContext.cs``: ``HandleTimerCreatedEvent`` throws
    ``NonDeterministicOrchestrationException`` for a timer no action created). At the live edge
    the SDK reports ``is_replaying`` False (azure-functions-durable
    ``models/TaskOrchestrationExecutor.py``: the last ``OrchestratorStarted`` starts the new
    events), so new executions end after exactly ``POLLS_PER_EXECUTION`` polls.

    A ``cancel`` raised during the last poll keeps the execution going for one more turn of
    the loop, where the waiter wins at once and the job is cancelled, exactly as the code with
    20 polls per execution decided it; the cancel is never left behind at ``continue_as_new``.
    """
    return polls_in_execution >= POLLS_PER_EXECUTION and not replaying and not cancel_raised


class Phase(str, Enum):
    """What the run is doing, as shown in the custom status."""

    SUBMITTING = "submitting"
    WAITING = "waiting"
    POLLING = "polling"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"


class RunFailed(Exception):
    """The run ends as a failed orchestration.

    ``str()`` of it is what the SDK reports as the orchestration's failure: a JSON document
    (:func:`failure_details`) when ``details`` are given, so a sub-orchestration parent can read
    the job, its status, the reason and the Studio link; else the plain message.

    Attributes:
        message: The human message (the run view's ``error``).
        details: The structured failure, or None.
    """

    def __init__(self, message: str, details: Mapping[str, Any] | None = None) -> None:
        self.message = message
        self.details = dict(details) if details is not None else None
        super().__init__(json.dumps(self.details) if self.details is not None else message)


def _optional_time(data: Mapping[str, Any], field: str) -> datetime | None:
    value = data.get(field)
    return _parse_time(value, field) if value else None


def _parse_time(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"RunState.{field} must be an ISO-8601 string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"RunState.{field} must carry a time zone")
    return parsed


@dataclass(frozen=True, slots=True, kw_only=True)
class RunState:
    """Everything the monitor loop needs, carried across ``continue_as_new``."""

    request: RunRequest
    job: BatchJob
    started: datetime
    deadline: datetime
    poll_interval: int
    polls: int = 0
    poll_failures: int = 0
    cancel_requested: bool = False
    last_poll_error: str | None = None
    cancel_grace: int = DEFAULT_CANCEL_GRACE_SECONDS
    cancel_reason: str | None = None  # "requested" or "deadline" once a cancel was sent
    cancel_until: datetime | None = None  # the job must end by then, or the run gives up
    status_since: datetime | None = None  # when the job was first seen in its current status
    watchdog_note: str | None = None  # "Queued for 612 s", when a watchdog fired
    plan: PollPlan | None = None  # poll_policy predictive: the planned checks (None: as fixed)
    pending_at: datetime | None = None  # the last check that saw the job not final

    @property
    def endpoint_uri(self) -> str:
        return self.request.endpoint_uri

    def with_job(self, job: BatchJob, now: datetime | None = None) -> "RunState":
        """A successful poll: new job state, one more poll, failure streak reset."""
        since = self.status_since
        if now is not None and (job.status != self.job.status or since is None):
            since = now
        pending = now if now is not None and not job.is_final else self.pending_at
        return replace(
            self,
            job=job,
            polls=self.polls + 1,
            poll_failures=0,
            last_poll_error=None,
            status_since=since,
            pending_at=pending,
        )

    def with_plan(self, plan: PollPlan | None) -> "RunState":
        return replace(self, plan=plan)

    def with_cancel_requested(self) -> "RunState":
        return replace(self, cancel_requested=True)

    def cancelling(self, now: datetime, reason: str) -> "RunState":
        """A cancel was sent for ``reason``: the job must reach a final status within the grace."""
        return replace(
            self,
            cancel_requested=self.cancel_requested or reason == "requested",
            cancel_reason=reason,
            cancel_until=now + timedelta(seconds=self.cancel_grace),
        )

    def with_poll_failure(self, message: str) -> "RunState":
        return replace(
            self,
            polls=self.polls + 1,
            poll_failures=self.poll_failures + 1,
            last_poll_error=message[:300],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_parameters": self.request.to_dict(),
            "job": self.job.to_dict(),
            "started": self.started.isoformat(),
            "deadline": self.deadline.isoformat(),
            "poll_interval": self.poll_interval,
            "polls": self.polls,
            "poll_failures": self.poll_failures,
            "cancel_requested": self.cancel_requested,
            "last_poll_error": self.last_poll_error,
            "cancel_grace": self.cancel_grace,
            "cancel_reason": self.cancel_reason,
            "cancel_until": self.cancel_until.isoformat() if self.cancel_until else None,
            "status_since": self.status_since.isoformat() if self.status_since else None,
            "watchdog_note": self.watchdog_note,
            "plan": self.plan.to_dict() if self.plan else None,
            "pending_at": self.pending_at.isoformat() if self.pending_at else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunState":
        """Read a state written by :meth:`to_dict` (this release's or the first's shape).

        Raises:
            ValueError: A field is missing or invalid (``InvalidRunRequest`` for parameters).
        """
        return cls(
            request=RunRequest.from_resolved(data.get("run_parameters")),
            job=BatchJob.from_dict(data["job"]),
            started=_parse_time(data.get("started"), "started"),
            deadline=_parse_time(data.get("deadline"), "deadline"),
            poll_interval=int(data["poll_interval"]),
            polls=int(data.get("polls", 0)),
            poll_failures=int(data.get("poll_failures", 0)),
            cancel_requested=bool(data.get("cancel_requested", False)),
            last_poll_error=data.get("last_poll_error"),
            cancel_grace=int(data.get("cancel_grace") or DEFAULT_CANCEL_GRACE_SECONDS),
            cancel_reason=data.get("cancel_reason"),
            cancel_until=_optional_time(data, "cancel_until"),
            status_since=_optional_time(data, "status_since"),
            watchdog_note=data.get("watchdog_note"),
            plan=PollPlan.from_dict(data.get("plan")),
            pending_at=_optional_time(data, "pending_at"),
        )

    @classmethod
    def begin(
        cls,
        *,
        request: RunRequest,
        job: BatchJob,
        started: datetime,
        cancel_grace: int = DEFAULT_CANCEL_GRACE_SECONDS,
    ) -> "RunState":
        """State right after the job was submitted."""
        return cls(
            request=request,
            job=job,
            started=started,
            cancel_grace=cancel_grace,
            status_since=started,
            pending_at=started,
            deadline=deadline_from(started, request.timeout),
            poll_interval=request.poll_interval,
        )


def is_done(state: RunState) -> bool:
    return is_final(state.job.status)


def next_check(state: RunState, now: datetime) -> datetime:
    """When to poll next: one interval from now, but never after the deadline (or, while a
    cancel waits to be confirmed, after the end of its grace period), nor after a watchdog
    would fire."""
    limit = state.cancel_until or state.deadline
    due = watchdog_due(state)
    if due is not None and state.cancel_until is None:
        limit = min(limit, max(due[1], now))
    if state.plan is not None and state.cancel_until is None:
        delay = state.plan.delay(
            elapsed=(now - state.started).total_seconds(),
            poll_interval=state.poll_interval,
            max_interval=state.request.poll_max_interval,
        )
    else:
        delay = poll_delay(
            state.poll_interval,
            polls=state.polls,
            backoff=state.request.poll_backoff,
            max_interval=state.request.poll_max_interval,
            seed=state.job.name,
        )
    return next_check_time(now, delay, limit)


#: Job statuses a watchdog watches, and the run parameter (setting) that bounds each.
WATCHED_STATUSES = {
    JobStatus.QUEUED: "max_queued_seconds",
    JobStatus.NOT_RESPONDING: "max_not_responding_seconds",
}


def watchdog_due(state: RunState) -> tuple[str, datetime] | None:
    """``(watchdog, when it fires)`` for the job's current status, or None."""
    field = WATCHED_STATUSES.get(state.job.status)
    limit = getattr(state.request, field) if field else None
    if field is None or not limit or state.status_since is None:
        return None
    return field, state.status_since + timedelta(seconds=limit)


def watchdog_fired(state: RunState, now: datetime) -> RunState | None:
    """The state with the watchdog noted, when one fires now (and no cancel is under way)."""
    due = watchdog_due(state)
    if due is None or now < due[1] or state.cancel_until is not None:
        return None
    assert state.status_since is not None
    stuck = int((now - state.status_since).total_seconds())
    return replace(state, watchdog_note=f"{due[0]}: {state.job.status.value} for {stuck}s")


def must_cancel_for_deadline(state: RunState, now: datetime) -> bool:
    """The deadline passed and no cancel was sent yet."""
    return state.cancel_until is None and deadline_passed(state, now)


def cancel_overdue(state: RunState, now: datetime) -> bool:
    """A cancel was sent and the job has not ended within the grace period."""
    return state.cancel_until is not None and now >= state.cancel_until


def deadline_passed(state: RunState, now: datetime) -> bool:
    return now >= state.deadline


def custom_status(
    state: RunState | None, phase: Phase, *, next_check_at: datetime | None = None
) -> dict[str, Any]:
    """The small custom status shown by the status routes (well under the 16 KB limit)."""
    status: dict[str, Any] = {"phase": phase.value}
    if state is not None:
        status.update(
            {
                "job_name": state.job.name,
                "job_status": state.job.status.value,
                "polls": state.polls,
                "studio_url": state.job.studio_url,
                "deadline": state.deadline.isoformat(),
                # The run's own start: Durable's createdTime resets on every continue_as_new.
                "started": state.started.isoformat(),
            }
        )
        if state.cancel_requested:
            status["cancel_requested"] = True
        if state.last_poll_error:
            status["last_poll_error"] = state.last_poll_error
    if next_check_at is not None:
        status["next_check"] = next_check_at.isoformat()
    return status


def completed_output(state: RunState, finished: datetime) -> dict[str, Any]:
    """The orchestration output of a job that ended ``Completed``."""
    return {
        "job_name": state.job.name,
        "status": state.job.status.value,
        "output_uri": state.job.output_uri or state.request.output_uri,
        "studio_url": state.job.studio_url,
        "polls": state.polls,
        "started": state.started.isoformat(),
        "finished": finished.isoformat(),
        # The job ended after this check (which saw it running) and by "finished": what the
        # predictive policy's estimate reads of past runs.
        "job_ended_after": (state.pending_at or state.started).isoformat(),
    }


def _studio(job: BatchJob) -> str:
    return f" Studio: {job.studio_url}" if job.studio_url else ""


#: Where Studio shows a failed batch job's reason when the service sent none.
NO_DETAIL_HINT = (
    "the service reported no error detail; the reason is in the job's logs in Studio "
    "(Outputs + logs, user_logs/std_log.txt)"
)


def failure_message(state: RunState, *, reason: str | None = None) -> str:
    """The message of a failed run: names the job, its status and its Studio link."""
    job = state.job
    if reason is None:
        if job.status is JobStatus.CANCELED and state.cancel_requested:
            reason = "it was canceled on request"
        elif job.status is JobStatus.CANCELED:
            reason = "it was canceled"
        else:
            reason = job.error_message or NO_DETAIL_HINT
    return f"Batch job {job.name} ended {job.status.value}: {reason}.{_studio(job)}"


def deadline_message(state: RunState) -> str:
    """The run's deadline passed: the job was cancelled and ended as it reports."""
    ending = (
        f"it was cancelled and ended {state.job.status.value}"
        if state.job.is_final
        else f"cancellation was requested; last status {state.job.status.value}"
    )
    return (
        f"Batch job {state.job.name} did not finish before the run's deadline "
        f"({state.deadline.isoformat()}, timeout {state.request.timeout}s); "
        f"{ending} after {state.polls} polls.{_studio(state.job)}"
    )


def _why(state: RunState) -> str:
    if state.cancel_reason == "deadline":
        return "the run's deadline passed"
    if state.watchdog_note:
        return f"watchdog {state.watchdog_note}"
    return "on request"


def watchdog_message(state: RunState) -> str:
    """A watchdog fired: name it, the status and how long the job was in it, and the ending."""
    field, _, stuck = (state.watchdog_note or "watchdog: ?").partition(": ")
    limit = getattr(state.request, field, None)
    return (
        f"Batch job {state.job.name} stayed {stuck} (longer than {field}={limit}); it was "
        f"cancelled and ended {state.job.status.value}.{_studio(state.job)}"
    )


def cancel_refused_message(state: RunState, refusal: str) -> str:
    """ARM refused the cancel: say so at once; the job may still be running (and billing)."""
    why = _why(state)
    return (
        f"Cancelling batch job {state.job.name} ({why}) was refused: {refusal}; the job may "
        f"still be running (last status {state.job.status.value}).{_studio(state.job)}"
    )


def cancel_unconfirmed_message(state: RunState) -> str:
    """The job did not reach a final status within the cancel grace period."""
    why = _why(state)
    return (
        f"Batch job {state.job.name} was asked to cancel ({why}) but did not reach a final "
        f"status within {state.cancel_grace}s; last status {state.job.status.value}; it may "
        f"still be running.{_studio(state.job)}"
    )


def poll_failures_message(state: RunState) -> str:
    return (
        f"Gave up on batch job {state.job.name} after {state.poll_failures} consecutive failed "
        f"status checks (last error: {state.last_poll_error}); the job may still be running "
        f"(last status {state.job.status.value}).{_studio(state.job)}"
    )


#: Why a run failed (``reason`` of the structured failure) -> the message of that failure.
_FAILURE_MESSAGES: dict[str, Callable[[RunState], str]] = {
    "job_ended": failure_message,
    "deadline": deadline_message,
    "watchdog": watchdog_message,
    "cancel_unconfirmed": cancel_unconfirmed_message,
    "poll_failures": poll_failures_message,
}
#: Reasons whose message comes from the caller (an activity's refusal).
FAILURE_REASONS: tuple[str, ...] = (
    *_FAILURE_MESSAGES,
    "cancel_refused",
    "submit_failed",
    "check_failed",
    "invalid_input",
    "copy_failed",
    "cancelled_waiting",
)


def failure_details(reason: str, message: str, state: RunState | None) -> dict[str, Any]:
    """The structured failure: ``{"error", "reason", "job_name", "job_status", "studio_url"}``
    (the job fields are null before a job exists), plus ``job_error`` when the service sent
    one."""
    job = state.job if state is not None else None
    details: dict[str, Any] = {
        "error": message,
        "reason": reason,
        "job_name": job.name if job else None,
        "job_status": job.status.value if job else None,
        "studio_url": job.studio_url if job else None,
    }
    if job is not None and job.error_message:
        details["job_error"] = job.error_message
    return details


def run_failed(reason: str, state: RunState | None = None, *, message: str = "") -> RunFailed:
    """The one place a run's failure is built: its message (from ``reason`` and ``state``,
    or ``message`` for the reasons an activity explains) and its structured details.

    Raises:
        ValueError: ``reason`` is not one of :data:`FAILURE_REASONS`.
    """
    if reason not in FAILURE_REASONS:
        raise ValueError(f"unknown failure reason {reason!r}")
    if not message:
        if state is None or reason not in _FAILURE_MESSAGES:
            raise ValueError(f"failure {reason!r} needs a state or a message")
        message = _FAILURE_MESSAGES[reason](state)
    return RunFailed(message, failure_details(reason, message, state))
