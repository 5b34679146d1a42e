"""Which scheduled tasks are still open: an instance completes only when none is.

DTFx's ``TaskOrchestrationExecutor`` completes (or fails, or continues as new) an orchestration
only once the orchestrator's result is done **and** ``!this.context.HasOpenTasks`` (Azure/
durabletask ``src/DurableTask.Core/TaskOrchestrationExecutor.cs`` lines 150-153, tag
durabletask.core-v2.17.1). Activities, sub-orchestrations and timers are open tasks until
their completion event; a canceled timer leaves ``openTasks`` at once
(``TaskOrchestrationContext.cs`` lines 258-268, ``cancelToken.Register`` → ``TrySetCanceled``
→ ``openTasks.Remove``) but its timer message was already sent, so it still fires later, one
more replay that the SDK ignores. External-event waits are the extension's, not DTFx tasks.
"""

from collections.abc import Iterable

from devhost.history import (
    SUB_ORCH_COMPLETED,
    SUB_ORCH_CREATED,
    SUB_ORCH_FAILED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_SCHEDULED,
    TIMER_CREATED,
    TIMER_FIRED,
    Event,
)

__all__ = ["open_task_ids"]

_OPENS = frozenset({TASK_SCHEDULED, SUB_ORCH_CREATED, TIMER_CREATED})
_CLOSES_BY_SCHEDULED_ID = frozenset(
    {TASK_COMPLETED, TASK_FAILED, SUB_ORCH_COMPLETED, SUB_ORCH_FAILED}
)


def open_task_ids(events: Iterable[Event], canceled_timers: Iterable[int]) -> set[int]:
    """Task ids scheduled in ``events`` with no completion yet, canceled timers excepted."""
    opened: set[int] = set()
    closed: set[int] = set(canceled_timers)
    for event in events:
        etype = event["EventType"]
        if etype in _OPENS:
            opened.add(int(event["EventId"]))
        elif etype in _CLOSES_BY_SCHEDULED_ID:
            closed.add(int(event["TaskScheduledId"]))
        elif etype == TIMER_FIRED:
            closed.add(int(event["TimerId"]))
    return opened - closed
