"""The run orchestrator's side of admission control (``MAX_ACTIVE_JOBS_PER_ENDPOINT``).

Before a run submits its job it takes a slot of its endpoint's ``endpoint_slots`` entity
(``acquire_slot``); it gives the slot back when it ends, whatever the ending (``release_slot``,
a fire-and-forget signal; a slot is carried over ``continue_as_new``). A run over the limit
waits in the entity's FIFO queue: it shows "waiting for capacity (position N)" and asks again on
a durable timer (the Python entity API cannot push events to an orchestration), sooner when it is
near the head. The head of the queue also reconciles: every few checks it asks
``find_ended_runs`` which holders have ended without releasing (terminated through the
management API) and releases them (``release_ended``), so a leaked slot is reclaimed.

A cancel raised while the run waits ends it at once (no job was submitted); the waiter is handed
on to the poll loop, so a cancel raised later is not lost either.

Deterministic: the limit and the entity key come from the ``plan_admission`` activity's answer.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import azure.durable_functions as df

from activities.admission import FIND_ENDED_ACTIVITY, PLAN_ACTIVITY
from activities.jobs import INVOKE_ACTIVITY
from batch_runs.admission import (
    RECHECKS_PER_EXECUTION,
    Grant,
    SlotPlan,
    recheck_delay,
    waiting_status,
)
from batch_runs.contracts import InvokeInput
from batch_runs.state import CANCEL_EVENT, Phase, custom_status, run_failed
from orchestrators.endpoint_slots import ENTITY_NAME

#: The input field that carries a held slot's key over ``continue_as_new``.
SLOT_FIELD = "admission_slot"
#: ``HistoryEventType.TASK_SCHEDULED`` (azure-functions-durable ``models/history``).
TASK_SCHEDULED = 4
#: The head of the queue looks for leaked slots every this many checks.
RECONCILE_EVERY = 5


@dataclass(slots=True)
class Admission:
    """A run's admission: the slot it holds (None: no cap), whether to go on, the cancel waiter
    created while waiting (to be reused by the poll loop)."""

    key: str | None
    proceed: bool = True
    cancel: Any = None

    def carry(self, execution_input: dict[str, Any]) -> dict[str, Any]:
        """``execution_input`` plus the held slot, for ``continue_as_new``."""
        return {**execution_input, SLOT_FIELD: self.key} if self.key else execution_input


def acquire_slot(context: df.DurableOrchestrationContext, raw: dict[str, Any]):
    """Wait until the run holds a slot of its endpoint (generator; returns an ``Admission``)."""
    if "resume" in raw:
        key = raw.get(SLOT_FIELD)
        return Admission(key=key if isinstance(key, str) and key else None)
    if _started_before_admission(context):
        return Admission(key=None)
    invoke = InvokeInput(
        run_parameters=raw,
        run_id=context.instance_id,
        started=context.current_utc_datetime.isoformat(),
    )
    plan = SlotPlan.from_dict((yield context.call_activity(PLAN_ACTIVITY, invoke.to_dict())))
    if plan.key is None:
        return Admission(key=None)
    entity = df.EntityId(ENTITY_NAME, plan.key)
    admission = Admission(key=plan.key)
    asking = {"run_id": context.instance_id, "limit": plan.limit}
    for check in range(RECHECKS_PER_EXECUTION):
        grant = Grant.from_dict((yield context.call_entity(entity, "acquire", asking)))
        if grant.granted:
            return admission
        if grant.position == 1 and check % RECONCILE_EVERY == RECONCILE_EVERY - 1:
            ended = yield from _find_ended(context, grant)
            if ended:
                context.signal_entity(entity, "release_ended", {"run_ids": ended})
                continue
        yield from _wait(context, admission, grant.position)
    # A long wait: start a fresh history; the run keeps its place (acquire is idempotent).
    context.continue_as_new(raw)
    admission.proceed = False
    return admission


def _find_ended(context: df.DurableOrchestrationContext, grant: Grant):
    """The holders that have ended (best effort: a failed look-up is tried again later)."""
    try:
        ended = yield context.call_activity(FIND_ENDED_ACTIVITY, list(grant.holders))
    except Exception:  # 1.x raises a plain Exception for a failed activity
        return []
    return [r for r in ended if isinstance(r, str)] if isinstance(ended, list) else []


def _started_before_admission(context: df.DurableOrchestrationContext) -> bool:
    """Whether this execution began under the code before admission control (its first
    scheduled activity is the submit): such a run in flight across the deploy replays as it
    was recorded (tests/orchestration/test_replay_v1.py) and runs without a slot."""
    for event in context.histories:
        if int(event.event_type) == TASK_SCHEDULED:
            return bool(event.Name == INVOKE_ACTIVITY)
    return False


def _wait(context: df.DurableOrchestrationContext, admission: Admission, position: int):
    wake = context.current_utc_datetime + timedelta(seconds=recheck_delay(position))
    context.set_custom_status(waiting_status(position, wake.isoformat()))
    timer = context.create_timer(wake)
    if admission.cancel is None:
        admission.cancel = context.wait_for_external_event(CANCEL_EVENT)
    winner = yield context.task_any([timer, admission.cancel])
    if winner == admission.cancel:
        timer.cancel()
        release_slot(context, admission)
        context.set_custom_status({**custom_status(None, Phase.FAILED), "cancel_requested": True})
        raise run_failed(
            "cancelled_waiting",
            message=(
                "The run was cancelled while it waited for capacity on its endpoint; "
                "no batch job was submitted."
            ),
        )


def release_slot(context: df.DurableOrchestrationContext, admission: Admission) -> None:
    """Give the slot (or the place in the queue) back: a signal, so every ending can send it."""
    if admission.key:
        entity = df.EntityId(ENTITY_NAME, admission.key)
        context.signal_entity(entity, "release", {"run_id": context.instance_id})
