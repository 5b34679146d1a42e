"""Non-determinism detection: the replayed actions must match the ones already scheduled.

DTFx keeps the actions an orchestrator produces during a replay in ``orchestratorActionsMap``
(by sequence id) and, for each ``TaskScheduled``, ``TimerCreated`` and
``SubOrchestrationInstanceCreated`` event of the history, looks the action up: a missing action,
an action of another type, or (activities and sub-orchestrations) another name, case-insensitive,
throws ``NonDeterministicOrchestrationException`` ("Non-Deterministic workflow detected: ..."),
and ``TaskOrchestrationExecutor`` fails the instance with that message (Azure/durabletask
``src/DurableTask.Core/TaskOrchestrationContext.cs`` lines 277-375 and
``TaskOrchestrationExecutor.cs`` lines 180-183, tag durabletask.core-v2.17.1).

devhost allocates sequence ids per flattened action (``episode`` module), so it records a
signature per action and compares the SDK's cumulative action list with it position by position.
External-event waits carry no sequence id and are not checked, as in DTFx.
"""

from collections.abc import Sequence
from typing import Any

from devhost.history import (
    A_CALL_ACTIVITY,
    A_CALL_ACTIVITY_RETRY,
    A_CALL_SUB,
    A_CALL_SUB_RETRY,
    A_CREATE_TIMER,
)

__all__ = ["PREFIX", "mismatch", "signature"]

PREFIX = "Non-Deterministic workflow detected: "

_KINDS = {
    A_CALL_ACTIVITY: "activity",
    A_CALL_ACTIVITY_RETRY: "activity",
    A_CALL_SUB: "suborch",
    A_CALL_SUB_RETRY: "suborch",
    A_CREATE_TIMER: "timer",
}

# DTFx's .NET type names for the messages.
_DOTNET = {
    "activity": "ScheduleTaskOrchestratorAction",
    "suborch": "CreateSubOrchestrationAction",
    "timer": "CreateTimerOrchestratorAction",
}

_TAIL = (
    "Was a change made to the orchestrator code after this instance had already started running?"
)


def signature(action: dict[str, Any]) -> list[str] | None:
    """``[kind, name]`` of an action that takes a sequence id, else None."""
    kind = _KINDS.get(action.get("actionType", -1))
    if kind is None:
        return None
    return [kind, "" if kind == "timer" else str(action.get("functionName") or "")]


def mismatch(recorded: Sequence[list[str] | None], actions: Sequence[dict[str, Any]]) -> str | None:
    """The failure message when the replay differs from the recorded actions, else None.

    Args:
        recorded: the signature of each flattened action scheduled so far (None: no id).
        actions: the SDK's flattened action list of this replay.
    """
    for index, expected in enumerate(recorded):
        if expected is None:
            continue
        current = signature(actions[index]) if index < len(actions) else None
        message = _compare(expected, current)
        if message is not None:
            return PREFIX + message
    return None


def _compare(expected: list[str], current: list[str] | None) -> str | None:
    kind, name = expected
    what = {"activity": "an activity task", "suborch": "a sub-orchestration", "timer": "a timer"}
    if current is None:
        return (
            f"A previous execution of this orchestration scheduled {what[kind]} named '{name}', "
            f"but the current replay execution hasn't (yet?) scheduled this task. {_TAIL}"
        )
    if current[0] != kind:
        return (
            f"A previous execution of this orchestration scheduled {what[kind]} named '{name}', "
            f"but the current orchestration replay instead produced a {_DOTNET[current[0]]} "
            f"action with this sequence number. {_TAIL}"
        )
    if current[1].casefold() != name.casefold():
        return (
            f"A previous execution of this orchestration scheduled {what[kind]} named '{name}', "
            f"but the current orchestration replay instead scheduled {what[kind]} named "
            f"'{current[1]}' with this sequence number.  {_TAIL}"
        )
    return None
