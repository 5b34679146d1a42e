"""The delivery orchestration ``notify_delivery`` (instance ``notify:<run id>``).

Started by ``start_run_notification`` when a run ends, so the run itself never waits for the
receiver: the run ends at once, and this small instance POSTs the signed summary, retrying
with durable-timer backoff (no compute held between attempts) on connection errors, 408, 429
and 5xx (``batch_runs.notify.delivery_decision``). Its custom status (every episode sets it, as
an episode that sets none clears it in Azure) and its output are the delivery outcome
``{status, attempts, last_error}`` that ``GET /api/runs/{id}`` shows as ``notification``.

Input: ``{"run_id", "url", "body"}`` (``body`` = the exact text that is signed and sent).
"""

from datetime import timedelta

import azure.durable_functions as df

from activities.handoff import DELIVER_ACTIVITY
from batch_runs.notify import (
    Attempt,
    delivery_decision,
    delivery_status,
    retry_delay,
)

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def notify_delivery(context: df.DurableOrchestrationContext):
    payload = context.get_input()
    attempts = 0
    last_error: str | None = None
    while True:
        context.set_custom_status(delivery_status("pending", attempts, last_error))
        try:
            attempt = Attempt.from_dict((yield context.call_activity(DELIVER_ACTIVITY, payload)))
        except Exception as exc:  # the activity itself failed (e.g. invalid settings)
            attempt = Attempt(None, (str(exc).splitlines() or ["activity failed"])[0][:300])
        attempts += 1
        last_error = attempt.error
        decision = delivery_decision(attempt, attempts)
        if decision != "retry":
            outcome = delivery_status(decision, attempts, last_error)
            context.set_custom_status(outcome)
            return outcome
        context.set_custom_status(delivery_status("pending", attempts, last_error))
        wake = context.current_utc_datetime + timedelta(seconds=retry_delay(attempts))
        yield context.create_timer(wake)
