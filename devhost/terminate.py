"""Terminate as DTFx does it: a message the instance's next episode applies.

``TaskHubClient.TerminateInstanceAsync`` sends an ``ExecutionTerminatedEvent`` to the instance
(Azure/durabletask v2.17.1 ``src/DurableTask.Core/TaskHubClient.cs`` lines 762-771); the next
episode ends the instance with it instead of running the orchestrator
(``TaskOrchestrationExecutor.cs`` lines 213-215, ``TaskOrchestrationContext.cs`` lines 553-556),
so the status stays Running until then and the management API's 202 comes first. devhost runs
no episode for a suspended instance, so one ends at once.
"""

from collections.abc import Sequence

from devhost.history import EXECUTION_TERMINATED, Event, new_event
from devhost.store import InstanceRow, Tx

__all__ = ["apply_terminate_request", "request_terminate"]


def request_terminate(tx: Tx, row: InstanceRow, reason_json: str, now_s: str) -> None:
    """Queue the terminate request (or end a suspended instance now)."""
    if row.status == "Suspended":
        tx.finish(row, "Terminated", reason_json, None, now_s=now_s)
    else:
        ask = new_event(EXECUTION_TERMINATED, now_s, Input=reason_json)
        tx.append_new(row.instance_id, [ask], now_s)


def apply_terminate_request(tx: Tx, iid: str, pending: Sequence[Event], now_s: str) -> bool:
    """End the instance as Terminated if ``pending`` holds a terminate request."""
    asks = [e for e in pending if e.get("EventType") == EXECUTION_TERMINATED]
    row = tx.instance(iid)
    if not asks or row is None or row.status not in ("Pending", "Running"):
        return False
    tx.finish(row, "Terminated", asks[0].get("Input"), None, now_s=now_s)
    return True
