"""One orchestration episode, pure: history in, decision out.

An episode is what the Durable extension's ``OutOfProcOrchestrationShim`` does for one batch of
new events: build the context JSON (played history, ``OrchestratorStarted``, the new events),
hand it to the SDK's orchestrator handle, and diff the SDK's cumulative action list against the
actions already scheduled, to learn what is new (activities, timers, sub-orchestrations,
with-retry attempts) and how the execution ends.

``begin`` builds the context, ``decide`` turns the SDK's answer into a ``Decision``, and
``run_episode`` does both around a call of the handle. Nothing here reads a clock, a database or
a thread: the engine passes ``now`` and the stored bookkeeping in, and commits the decision.

Sequence ids: the SDK numbers tasks itself while replaying. The episode allocates the same ids:
one per new action (activity, timer, sub-orchestration, continue-as-new) in action-list order,
and for ``*_with_retry`` one per retry timer (when the SDK processes the attempt's failure) and
one per re-attempt (when the SDK processes that timer). Bookkeeping events of retries are placed
first among an episode's new events, so the ids the SDK hands out while processing them come
before any id the resumed generator hands out, whatever the mix of concurrent tasks.

Bookkeeping (``meta``, persisted as JSON with the instance): ``tasks`` maps a task id to its
kind (and retry group), ``groups`` maps a with-retry call's first task id to the call and its
attempt count, ``action_ids`` is the task id of each action of the flattened action list so far
and ``signatures`` its kind and name, which each replay must reproduce (``determinism``).
"""

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Required, TypedDict, cast

from devhost import determinism, entities, limits
from devhost.history import (
    A_CALL_ACTIVITY,
    A_CALL_ACTIVITY_RETRY,
    A_CALL_ENTITY,
    A_CALL_SUB,
    A_CALL_SUB_RETRY,
    A_CONTINUE_AS_NEW,
    A_CREATE_TIMER,
    A_SIGNAL_ENTITY,
    A_WAIT_EVENT,
    ORCHESTRATOR_COMPLETED,
    ORCHESTRATOR_STARTED,
    SUB_ORCH_CREATED,
    SUB_ORCH_FAILED,
    TASK_FAILED,
    TASK_SCHEDULED,
    TIMER_CREATED,
    TIMER_FIRED,
    Event,
    decode,
    flatten_actions,
    format_time,
    input_token,
    new_event,
    parse_time,
)
from devhost.logs import function_invocation
from devhost.open_tasks import open_task_ids
from devhost.worker_io import orchestration_context, orchestration_output, sdk_warnings

__all__ = [
    "ChildStart",
    "Completed",
    "ContinuedAsNew",
    "Decision",
    "EpisodeInput",
    "Failed",
    "Outcome",
    "Replay",
    "WorkItem",
    "begin",
    "decide",
    "invoke_orchestrator",
    "run_episode",
]

logger = logging.getLogger(__name__)

OUT_OF_PROC_MARKER = "$OutOfProcData$:"

#: The SDK's answer for one episode (``OrchestratorState`` JSON: isDone, actions, output, ...).
OrchestratorState = dict[str, Any]
#: An orchestrator handle: the worker's ``OrchestrationContext`` (its ``body`` is the context
#: JSON) in, state JSON out (``DFApp`` orchestration triggers; ``devhost.worker_io``).
OrchestratorHandle = Callable[[Any], str]

#: What the extension adds to every context (Azure/azure-functions-durable-extension
#: ``src/WebJobs.Extensions.DurableTask/Bindings/OrchestrationTriggerAttributeBindingProvider.cs``
#: lines 227-241, v2.13.7): schema V2/V3, the Azure Storage provider's timer limits as .NET
#: TimeSpans (``AzureStorageDurabilityProvider.cs`` lines 68-70: 6 and 3 days) and
#: ``HttpOptions.DefaultAsyncRequestSleepTimeMilliseconds`` (``Options/HttpOptions.cs`` line 19).
#: With them the SDK splits timers longer than 6 days into 3-day steps and compares
#: ``fire_at`` with the (aware) current time, so a naive ``fire_at`` raises, as in Azure.
CONTEXT_FIELDS = {
    "upperSchemaVersion": 1,
    "upperSchemaVersionNew": 2,
    "longRunningTimerIntervalDuration": "3.00:00:00",
    "maximumShortTimerDuration": "6.00:00:00",
    "defaultHttpAsyncRequestSleepTimeMillseconds": 30000,
}

_CALLS = (A_CALL_ACTIVITY, A_CALL_ACTIVITY_RETRY, A_CALL_SUB, A_CALL_SUB_RETRY)


class TaskEntry(TypedDict, total=False):
    """``meta["tasks"][task id]``: what a task id was allocated for."""

    kind: Required[str]  # "activity" | "suborch" | "timer" | "retry_timer"
    group: str | None  # the with-retry group (its first task id), None for a plain call


class CallGroup(TypedDict):
    """A call to schedule; for ``*_with_retry`` also ``meta["groups"][first task id]``."""

    kind: str  # "activity" | "suborch"
    name: str
    input: str | None
    instance_id: str | None  # sub-orchestrations: the id the orchestrator chose
    attempts: int
    max: int
    first_ms: int  # firstRetryIntervalInMilliseconds


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeInput:
    """What an episode starts from (one instance, as stored)."""

    instance_id: str
    name: str
    input_json: str | None
    parent_instance_id: str | None
    past: Sequence[Event]  # played events of the current execution
    new: Sequence[Event]  # events no episode has played yet, in arrival order
    meta: Mapping[str, Any]  # bookkeeping (module docstring)
    next_id: int  # the next task id to allocate
    now: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkItem:
    """Work to schedule: an activity to run or a timer to fire."""

    kind: str  # "activity" | "timer"
    task_id: int
    due: str  # format_time
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildStart:
    """A sub-orchestration to create."""

    name: str
    instance_id: str
    input_json: str | None
    task_id: int


@dataclass(frozen=True, slots=True)
class Completed:
    """The orchestrator returned."""

    output_json: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The orchestrator raised (or used something devhost does not emulate)."""

    message: str


@dataclass(frozen=True, slots=True)
class ContinuedAsNew:
    """The orchestrator called ``continue_as_new``."""

    input_json: str | None


Outcome = Completed | Failed | ContinuedAsNew


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """What to commit after an episode.

    Attributes:
        played: events to append to the played history (``OrchestratorStarted``, the new events
            in the order the SDK saw them, the scheduling events, ``OrchestratorCompleted``).
        work: activities and timers to schedule (only when ``outcome`` is None).
        children: sub-orchestrations to create (only when ``outcome`` is None).
        canceled_timers: task ids of timers the SDK reports canceled (they still fire).
        at: the episode's time (``format_time``).
        meta / next_id: the bookkeeping to store.
        custom_status: the SDK's custom status (None: cleared to null).
        outcome: how the execution ends, or None while it goes on.
    """

    at: str  # the episode's time (format_time)
    played: list[Event]
    work: list[WorkItem] = field(default_factory=list)
    children: list[ChildStart] = field(default_factory=list)
    canceled_timers: list[int] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    next_id: int = 0
    custom_status: Any = None
    outcome: Outcome | None = None


class _Plan:
    """The bookkeeping of one episode while it is worked out (private, mutable)."""

    def __init__(self, episode: EpisodeInput) -> None:
        self.episode = episode
        self.now_s = format_time(episode.now)
        # A private copy (the meta is JSON: a JSON round trip is ~4x cheaper than deepcopy).
        self.meta: dict[str, Any] = json.loads(json.dumps(dict(episode.meta)))
        self.tasks: dict[str, TaskEntry] = self.meta.setdefault("tasks", {})
        self.groups: dict[str, CallGroup] = self.meta.setdefault("groups", {})
        self.action_ids: list[int | None] = self.meta.setdefault("action_ids", [])
        # State files written before signatures were recorded: nothing to compare with.
        self.signatures: list[list[str] | None] = self.meta.setdefault(
            "signatures", [None] * len(self.action_ids)
        )
        self.nondeterminism: str | None = None
        self.next_id = episode.next_id
        self.work: list[WorkItem] = []
        self.children: list[ChildStart] = []
        self.scheduled: list[Event] = []
        self.canceled_timers: list[int] = []
        self.continue_as_new: ContinuedAsNew | None = None
        self.unsupported: str | None = None

    def take_id(self) -> int:
        task_id = self.next_id
        self.next_id += 1
        return task_id

    def schedule_call(self, call: CallGroup, task_id: int) -> None:
        if call["kind"] == "activity":
            self.work.append(
                WorkItem(
                    kind="activity",
                    task_id=task_id,
                    due=self.now_s,
                    payload={"name": call["name"], "input": call["input"]},
                )
            )
            self.scheduled.append(
                new_event(
                    TASK_SCHEDULED, self.now_s, task_id, Name=call["name"], Input=call["input"]
                )
            )
            return
        # Without an explicit id the extension picks one; a deterministic "<parent>:<task id>"
        # keeps children easy to find (list_instances(instance_id_prefix=parent + ":")).
        child_iid = call.get("instance_id") or f"{self.episode.instance_id}:{task_id:04d}"
        self.children.append(
            ChildStart(
                name=call["name"],
                instance_id=child_iid,
                input_json=input_token(call["input"]),
                task_id=task_id,
            )
        )
        self.scheduled.append(
            new_event(
                SUB_ORCH_CREATED,
                self.now_s,
                task_id,
                Name=call["name"],
                InstanceId=child_iid,
                Input=call["input"],
            )
        )

    def schedule_timer(self, task_id: int, fire_at: str) -> None:
        # Armed even when already canceled: the extension creates it, then cancels it, and the
        # timer message still fires (``open_tasks`` module).
        due = format_time(parse_time(fire_at))
        self.work.append(
            WorkItem(kind="timer", task_id=task_id, due=due, payload={"fire_at": fire_at})
        )
        self.scheduled.append(new_event(TIMER_CREATED, self.now_s, task_id, FireAt=fire_at))


@dataclass(frozen=True, slots=True, kw_only=True)
class Replay:
    """An episode between ``begin`` and ``decide``."""

    plan: _Plan
    context_json: str  # what the orchestrator handle gets
    ordered_new: list[Event]


# --------------------------------------------------------------------- begin: the context


def begin(episode: EpisodeInput) -> Replay:
    """Order the new events, schedule retry bookkeeping and build the context JSON."""
    plan = _Plan(episode)
    ordered_new = _order_new(plan, episode.new)
    history = [
        *({**e, "IsPlayed": True} for e in episode.past),
        new_event(ORCHESTRATOR_STARTED, plan.now_s),
        *ordered_new,
    ]
    context = {
        "history": history,
        "instanceId": episode.instance_id,
        "isReplaying": False,
        "parentInstanceId": episode.parent_instance_id,
        # The extension sends the stored input as its JSON token (``GetInputAsJson``,
        # OrchestrationTriggerAttributeBindingProvider.cs lines 219-229, v2.13.7).
        "input": decode(episode.input_json),
        **CONTEXT_FIELDS,
    }
    return Replay(plan=plan, context_json=json.dumps(context), ordered_new=ordered_new)


def _order_new(plan: _Plan, new: Sequence[Event]) -> list[Event]:
    # Retry bookkeeping events that make the SDK allocate ids without resuming the generator
    # come first (module docstring); the rest keep their arrival order.
    bookkeeping: list[Event] = []
    others: list[Event] = []
    for event in new:
        if _retry_after_failure(plan, event) or _retry_attempt(plan, event):
            bookkeeping.append(event)
        else:
            others.append(event)
    return bookkeeping + others


def _retry_after_failure(plan: _Plan, event: Event) -> bool:
    """A failed with-retry attempt: arm the retry timer the SDK is about to number."""
    if event["EventType"] not in (TASK_FAILED, SUB_ORCH_FAILED):
        return False
    task = plan.tasks.get(str(event["TaskScheduledId"]))
    group_key = task.get("group") if task else None
    if group_key is None:
        return False
    group = plan.groups[group_key]
    timer_id = plan.take_id()
    # After the last attempt DTFx still creates the timer (for replay compatibility) but at
    # CurrentUtcDateTime, so it fires at once (RetryInterceptor.cs lines 73-82, core v2.17.1).
    last = group["attempts"] >= group["max"]
    delay = timedelta(0) if last else timedelta(milliseconds=group["first_ms"])
    fire_at = format_time(plan.episode.now + delay)
    plan.tasks[str(timer_id)] = {"kind": "retry_timer", "group": group_key}
    plan.schedule_timer(timer_id, fire_at)
    return True


def _retry_attempt(plan: _Plan, event: Event) -> bool:
    """A retry timer fired with attempts left: schedule the next attempt."""
    if event["EventType"] != TIMER_FIRED:
        return False
    task = plan.tasks.get(str(event["TimerId"]))
    group_key = task.get("group") if task and task.get("kind") == "retry_timer" else None
    if group_key is None:
        return False
    group = plan.groups[group_key]
    if group["attempts"] >= group["max"]:
        return False
    attempt_id = plan.take_id()
    group["attempts"] += 1
    plan.tasks[str(attempt_id)] = {"kind": group["kind"], "group": group_key}
    plan.schedule_call(group, attempt_id)
    return True


# --------------------------------------------------------------------- decide: the diff


def decide(replay: Replay, state: OrchestratorState) -> Decision:
    """Diff the SDK's cumulative action list and say how the execution goes on.

    Args:
        replay: from ``begin``.
        state: the SDK's answer (``invoke_orchestrator``).
    """
    plan = replay.plan
    actions = flatten_actions(state.get("actions") or [])
    if not state.get("error"):
        plan.nondeterminism = determinism.mismatch(plan.signatures, actions)
    for index, action in enumerate([] if plan.nondeterminism else actions):
        if index < len(plan.action_ids):
            _seen_action(plan, action, plan.action_ids[index])
        else:
            plan.action_ids.append(_new_action(plan, action))
            plan.signatures.append(determinism.signature(action))
    now_s = plan.now_s
    played = [
        new_event(ORCHESTRATOR_STARTED, now_s),
        *replay.ordered_new,
        *plan.scheduled,
        new_event(ORCHESTRATOR_COMPLETED, now_s),
    ]
    outcome = _outcome(plan, state)
    if outcome is not None and plan.nondeterminism is None and not plan.unsupported:
        canceled = plan.meta.setdefault("canceled", [])
        canceled.extend(t for t in plan.canceled_timers if t not in canceled)
        if open_task_ids([*plan.episode.past, *played], canceled):
            outcome = None  # DTFx waits for open tasks (``open_tasks`` module)
    return Decision(
        at=now_s,
        played=played,
        work=plan.work,
        children=plan.children,
        canceled_timers=plan.canceled_timers,
        meta=plan.meta,
        next_id=plan.next_id,
        custom_status=_custom_status(state),
        outcome=outcome,
    )


def _seen_action(plan: _Plan, action: dict[str, Any], task_id: int | None) -> None:
    """An action scheduled by an earlier episode: only a timer cancellation is news."""
    if (
        action.get("actionType") == A_CREATE_TIMER
        and action.get("isCanceled")
        and (task_id is not None)
    ):
        plan.canceled_timers.append(task_id)


def _new_action(plan: _Plan, action: dict[str, Any]) -> int | None:
    """Schedule a new action; return its task id (None for actions without one)."""
    atype = action.get("actionType")
    if atype in _CALLS:
        return _new_call(plan, action)
    if atype == A_CREATE_TIMER:
        task_id = plan.take_id()
        plan.tasks[str(task_id)] = {"kind": "timer"}
        plan.schedule_timer(task_id, action["fireAt"])
        if action.get("isCanceled"):
            plan.canceled_timers.append(task_id)
        return task_id
    if atype == A_CONTINUE_AS_NEW:
        plan.take_id()
        plan.continue_as_new = ContinuedAsNew(input_token(action.get("input")))
    elif atype in (A_CALL_ENTITY, A_SIGNAL_ENTITY):
        return _new_entity_message(plan, action, signal=atype == A_SIGNAL_ENTITY)
    elif atype != A_WAIT_EVENT:
        plan.unsupported = (
            f"devhost does not support action type {atype} "
            "(scheduled entity signals and call_http are not emulated)"
        )
    return None


def _new_entity_message(plan: _Plan, action: dict[str, Any], *, signal: bool) -> int:
    """An entity call or signal: ``EventSent`` now, the message queued on commit (``entities``)."""
    task_id = plan.take_id()
    event, payload = entities.schedule(
        plan.episode.instance_id, plan.now_s, task_id, action, signal=signal
    )
    plan.scheduled.append(event)
    plan.work.append(
        WorkItem(kind=entities.ENTITY_WORK, task_id=task_id, due=plan.now_s, payload=payload)
    )
    return task_id


def _new_call(plan: _Plan, action: dict[str, Any]) -> int:
    atype = action.get("actionType")
    task_id = plan.take_id()
    is_sub = atype in (A_CALL_SUB, A_CALL_SUB_RETRY)
    with_retry = atype in (A_CALL_ACTIVITY_RETRY, A_CALL_SUB_RETRY)
    retry = action.get("retryOptions") if with_retry else None
    call: CallGroup = {
        "kind": "suborch" if is_sub else "activity",
        "name": cast(str, action.get("functionName")),  # the SDK always sends it
        "input": action.get("input"),
        "instance_id": action.get("instanceId") if is_sub else None,
        "attempts": 1,
        "max": int(retry["maxNumberOfAttempts"]) if retry else 1,
        "first_ms": int(retry["firstRetryIntervalInMilliseconds"]) if retry else 0,
    }
    group_key = None
    if retry:
        group_key = str(task_id)
        plan.groups[group_key] = call
    plan.tasks[str(task_id)] = {"kind": call["kind"], "group": group_key}
    plan.schedule_call(call, task_id)
    return task_id


def _custom_status(state: OrchestratorState) -> Any:
    """The custom status to store: None (null) when unset or refused, as in Azure.

    Each episode gets a fresh extension context whose custom status is null until the SDK's
    answer sets one, and the tracking store writes ``status ?? "null"`` (DurableTask.AzureStorage
    ``AzureTableTrackingStore.cs`` line 1002, v1.17.5); a too-large one is refused (``limits``).
    """
    value = state.get("customStatus")
    return None if limits.custom_status_error(value) else value


def _outcome(plan: _Plan, state: OrchestratorState) -> Outcome | None:
    if plan.nondeterminism is not None:
        return Failed(plan.nondeterminism)
    error = limits.custom_status_error(state.get("customStatus"))
    if error is None:
        error = state.get("error")
    if plan.unsupported and not error:
        error = plan.unsupported
    if error is not None:
        return Failed(f"Orchestrator function '{plan.episode.name}' failed: {error}")
    if plan.continue_as_new is not None:
        return plan.continue_as_new
    if state.get("isDone"):
        return Completed(json.dumps(state.get("output")))
    return None


# --------------------------------------------------------------------- the SDK call


def invoke_orchestrator(
    name: str, handler: OrchestratorHandle | None, context_json: str
) -> OrchestratorState:
    """Call the SDK's orchestrator handle; every failure becomes a state with ``error``.

    The SDK's warnings are recorded and logged at debug level (``worker_io.sdk_warnings``).
    """
    if handler is None:
        return {"isDone": False, "actions": [], "error": f"orchestrator '{name}' not found"}
    with sdk_warnings() as caught:
        try:
            with function_invocation(name, "(null)"):
                result = orchestration_output(handler(orchestration_context(context_json)))
        except Exception as exc:
            return _state_of_exception(name, exc)
    for warning in caught:
        logger.debug("SDK warning in %s: %s", name, warning.message)
    try:
        state = json.loads(result)
    except (TypeError, ValueError):
        return {"isDone": False, "actions": [], "error": "orchestrator returned non-JSON"}
    if not isinstance(state, dict):
        return {"isDone": False, "actions": [], "error": "orchestrator returned non-object"}
    return state


def _state_of_exception(name: str, exc: Exception) -> OrchestratorState:
    # The SDK reports an orchestrator's exception as "<message>$OutOfProcData$:<state JSON>".
    text = str(exc)
    if OUT_OF_PROC_MARKER not in text:
        logger.warning("orchestrator %s raised outside the SDK: %s", name, exc)
        return {"isDone": False, "actions": [], "error": f"{type(exc).__name__}: {exc}"}
    message, _, data = text.partition(OUT_OF_PROC_MARKER)
    try:
        parsed: OrchestratorState = json.loads(data)
    except ValueError:
        parsed = {"isDone": False, "actions": [], "error": text}
    if not parsed.get("error"):
        parsed["error"] = message.strip()
    return parsed


def run_episode(episode: EpisodeInput, handler: OrchestratorHandle | None) -> Decision:
    """``begin``, call the handle, ``decide`` (deterministic for a deterministic handle)."""
    replay = begin(episode)
    return decide(replay, invoke_orchestrator(episode.name, handler, replay.context_json))
