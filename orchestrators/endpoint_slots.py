"""Durable entity ``endpoint_slots``: one semaphore per batch endpoint (admission control).

Entity id ``@endpoint_slots@<slot_key(endpoint)>``; its state is ``batch_runs.admission.Slots``
as JSON. The runtime runs an entity's operations one at a time (one batch after another), so
the read-modify-write below needs no lock. Operations:

- ``acquire`` ``{"run_id", "limit"}`` → ``{"granted", "position", "holders"}`` (idempotent);
- ``release`` ``{"run_id"}`` (idempotent; sent as a signal by the ending run);
- ``release_ended`` ``{"run_ids": [...]}`` (the leak reconciliation);
- ``get`` → the state.

An unknown operation fails that operation only (the caller sees the error).
"""

import azure.durable_functions as df

from batch_runs import admission

bp = df.Blueprint()

ENTITY_NAME = "endpoint_slots"


def _run_id(value: object) -> str:
    run_id = value.get("run_id") if isinstance(value, dict) else None
    if not isinstance(run_id, str) or not run_id:
        raise ValueError("run_id: must be a non-empty string")
    return run_id


@bp.entity_trigger(context_name="context", entity_name=ENTITY_NAME)
def endpoint_slots(context: df.DurableEntityContext) -> None:
    slots = admission.Slots.from_dict(context.get_state(dict))
    operation = context.operation_name
    value = context.get_input()
    if operation == "acquire":
        limit = value.get("limit") if isinstance(value, dict) else None
        slots, grant = admission.acquire(
            slots, _run_id(value), limit if isinstance(limit, int) and limit > 0 else None
        )
        context.set_result(grant.to_dict())
    elif operation == "release":
        slots = admission.release(slots, _run_id(value))
    elif operation == "release_ended":
        ids = value.get("run_ids") if isinstance(value, dict) else None
        slots = admission.release_ended(slots, ids if isinstance(ids, list) else [])
    elif operation == "get":
        context.set_result(slots.to_dict())
    else:
        raise ValueError(f"unknown operation {operation!r}")
    context.set_state(slots.to_dict())
