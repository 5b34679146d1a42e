"""The run-ending queue message, as a generator ``orchestrators.handoff`` delegates to.

Once per ending: ask ``plan_run_summary_queue`` whether ``NOTIFY_QUEUE`` is set, then (if so)
``enqueue_run_summary``. Any failure is logged and never changes how the run ends. Delivery is
at least once: an activity that succeeded but whose completion was lost runs again, so a
consumer dedupes on ``run_id`` + ``finished_at``.
"""

import logging

import azure.durable_functions as df

from activities.notify_queue import ENQUEUE_ACTIVITY, PLAN_QUEUE_ACTIVITY

logger = logging.getLogger(__name__)

ENQUEUE_RETRY = df.RetryOptions(
    first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3
)


def enqueue_summary(context: df.DurableOrchestrationContext, summary: dict):
    """Put ``summary`` on the run-ending queue when the feature is on."""
    try:
        plan = yield context.call_activity(PLAN_QUEUE_ACTIVITY, None)
        if not (isinstance(plan, dict) and plan.get("enqueue")):
            return
        yield context.call_activity_with_retry(
            ENQUEUE_ACTIVITY, ENQUEUE_RETRY, {"summary": summary}
        )
    except Exception as exc:  # never changes how the run ends
        if not context.is_replaying:
            logger.warning(
                "run %s: could not queue the ending summary: %s",
                context.instance_id,
                (str(exc).splitlines() or [type(exc).__name__])[0][:300],
            )
