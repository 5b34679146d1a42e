"""The Durable Task history: event and action types, time formats, the management API's view.

Events are the dicts the out-of-process protocol exchanges (DTFx ``HistoryEvent`` JSON:
``EventType``, ``EventId``, ``IsPlayed``, ``Timestamp`` and per-type fields); actions are what the
SDK's orchestrator handle returns (``azure.durable_functions.models.actions``). Nothing here
touches SQLite, threads or the SDK.
"""

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "ACTIVE_STATUSES",
    "EVENT_NAMES",
    "TERMINAL_STATUSES",
    "Event",
    "decode",
    "flatten_actions",
    "format_status_time",
    "format_time",
    "history_view",
    "input_token",
    "new_event",
    "parse_time",
]

#: One history event (DTFx ``HistoryEvent`` JSON).
Event = dict[str, Any]

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
ACTIVE_STATUSES = frozenset({"Pending", "Running", "Suspended", "ContinuedAsNew"})

# History event types (DTFx ``EventType``).
EXECUTION_STARTED = 0
EXECUTION_COMPLETED = 1
EXECUTION_FAILED = 2
EXECUTION_TERMINATED = 3
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
SUB_ORCH_CREATED = 7
SUB_ORCH_COMPLETED = 8
SUB_ORCH_FAILED = 9
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_STARTED = 12
ORCHESTRATOR_COMPLETED = 13
EVENT_RAISED = 15
CONTINUE_AS_NEW = 16
EXECUTION_SUSPENDED = 19
EXECUTION_RESUMED = 20

EVENT_NAMES = {
    0: "ExecutionStarted",
    1: "ExecutionCompleted",
    2: "ExecutionFailed",
    3: "ExecutionTerminated",
    4: "TaskScheduled",
    5: "TaskCompleted",
    6: "TaskFailed",
    7: "SubOrchestrationInstanceCreated",
    8: "SubOrchestrationInstanceCompleted",
    9: "SubOrchestrationInstanceFailed",
    10: "TimerCreated",
    11: "TimerFired",
    12: "OrchestratorStarted",
    13: "OrchestratorCompleted",
    14: "EventSent",
    15: "EventRaised",
    16: "ContinueAsNew",
    17: "GenericEvent",
    18: "HistoryState",
    19: "ExecutionSuspended",
    20: "ExecutionResumed",
}

# Action types (``azure.durable_functions.models.actions.ActionType``).
A_CALL_ACTIVITY = 0
A_CALL_ACTIVITY_RETRY = 1
A_CALL_SUB = 2
A_CALL_SUB_RETRY = 3
A_CONTINUE_AS_NEW = 4
A_CREATE_TIMER = 5
A_WAIT_EVENT = 6
A_CALL_ENTITY = 7
A_CALL_HTTP = 8
A_SIGNAL_ENTITY = 9
A_WHEN_ANY = 11
A_WHEN_ALL = 12


def format_time(value: datetime) -> str:
    """ISO-8601 UTC with microseconds and ``Z``, the form the SDK and extension exchange."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_status_time(value: str) -> str:
    """The management API's time format (``2026-01-01T00:00:00Z``)."""
    return parse_time(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    """Parse an ISO-8601 time (``Z`` or offset; naive = UTC) to an aware UTC datetime.

    Raises:
        ValueError: not an ISO-8601 time.
    """
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.11 fromisoformat accepts up to 6 fractional digits; .NET sends 7.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tz}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def new_event(event_type: int, timestamp: str, event_id: int = -1, **fields: Any) -> Event:
    """A history event of ``event_type`` (not yet played)."""
    return {
        "EventType": event_type,
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": timestamp,
        **fields,
    }


def flatten_actions(actions: Iterable[Any]) -> list[dict[str, Any]]:
    """Depth-first flattening of the SDK's action list through WhenAny/WhenAll."""
    flat: list[dict[str, Any]] = []
    for action in actions:
        if isinstance(action, list):
            flat.extend(flatten_actions(action))
        elif isinstance(action, dict):
            if action.get("actionType") in (A_WHEN_ANY, A_WHEN_ALL):
                flat.extend(flatten_actions(action.get("compoundActions") or []))
            else:
                flat.append(action)
    return flat


def input_token(action_input: str | None) -> str | None:
    """The stored input of an instance an SDK action starts (``continue_as_new``, a
    sub-orchestration): the action's ``input`` is the SDK's serialized text, which the extension
    deserializes to a JSON string token (``OutOfProcOrchestrationShim.cs`` line 314,
    ``object Input``) and stores serialized, so the status shows the text as a string."""
    return None if action_input is None else json.dumps(action_input)


def decode(value: str | None) -> Any:
    """JSON-decode a stored value; text that is not JSON is returned as it is."""
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


# --------------------------------------------------------------------- management API view

_ViewFields = Callable[[Event, dict[str, Any], dict[int, str], bool], None]


def _scheduled(event: Event, item: dict[str, Any], names: dict[int, str], _: bool) -> None:
    names[event["EventId"]] = event.get("Name", "")
    item["EventId"] = event["EventId"]
    item["Name"] = event.get("Name")


def _task_result(event: Event, item: dict[str, Any], names: dict[int, str], output: bool) -> None:
    item["TaskScheduledId"] = event["TaskScheduledId"]
    item["FunctionName"] = names.get(event["TaskScheduledId"])
    if event["EventType"] in (TASK_FAILED, SUB_ORCH_FAILED):
        item["Reason"] = event.get("Reason")
    elif output:
        item["Result"] = decode(event.get("Result"))


def _started(event: Event, item: dict[str, Any], _: dict[int, str], output: bool) -> None:
    item["FunctionName"] = event.get("Name")
    if output:
        item["Input"] = decode(event.get("Input"))


def _timer(event: Event, item: dict[str, Any], _: dict[int, str], __: bool) -> None:
    item["FireAt"] = event.get("FireAt")
    item["TimerId"] = event.get("TimerId", event.get("EventId"))


def _raised(event: Event, item: dict[str, Any], _: dict[int, str], output: bool) -> None:
    item["Name"] = event.get("Name")
    if output:
        item["Input"] = decode(event.get("Input"))


def _ended(event: Event, item: dict[str, Any], _: dict[int, str], output: bool) -> None:
    item["OrchestrationStatus"] = event.get("OrchestrationStatus")
    if output:
        item["Result"] = decode(event.get("Result"))


_VIEW_FIELDS: dict[int, _ViewFields] = {
    TASK_SCHEDULED: _scheduled,
    SUB_ORCH_CREATED: _scheduled,
    TASK_COMPLETED: _task_result,
    TASK_FAILED: _task_result,
    SUB_ORCH_COMPLETED: _task_result,
    SUB_ORCH_FAILED: _task_result,
    EXECUTION_STARTED: _started,
    TIMER_CREATED: _timer,
    TIMER_FIRED: _timer,
    EVENT_RAISED: _raised,
    EXECUTION_COMPLETED: _ended,
    EXECUTION_FAILED: _ended,
    EXECUTION_TERMINATED: _ended,
}


def history_view(events: Iterable[Event], with_output: bool) -> list[dict[str, Any]]:
    """History in the management API's shape (``EventType`` names, scheduled names).

    Args:
        events: the played events of one execution, in order.
        with_output: include inputs and results (``showHistoryOutput``).
    """
    names: dict[int, str] = {}
    view: list[dict[str, Any]] = []
    for event in events:
        etype = event["EventType"]
        if etype in (ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED):
            continue
        item: dict[str, Any] = {
            "EventType": EVENT_NAMES.get(etype, str(etype)),
            "Timestamp": format_status_time(event["Timestamp"]),
        }
        fields = _VIEW_FIELDS.get(etype)
        if fields is not None:
            fields(event, item, names, with_output)
        view.append(item)
    return view
