"""The run-ending queue message (``NOTIFY_QUEUE``, ``batch_runs.notify_queue``).

- ``plan_run_summary_queue``: whether the feature is on (``NOTIFY_QUEUE`` set). The orchestrator
  reads no settings; it asks this activity once per ending and calls the next only when on.
- ``enqueue_run_summary``: puts the summary on the queue through the Functions queue output
  binding (``queue_output`` on an activity trigger: azure-functions-python-library
  ``azure/functions/decorators/function_app.py`` ``BindingApi.queue_output``; the worker passes a
  ``func.Out`` and the host writes what was set after the function returns).

Why a separate on/off activity: ``queueName="%NOTIFY_QUEUE%"`` must resolve when the host indexes
the function. With the setting unset, the host reports "The 'enqueue_run_summary' function is in
error: '%NOTIFY_QUEUE%' does not resolve to a value." (the WebJobs SDK's
``NameResolverExtensions.ResolveWholeString``) and does not load that one function; the others
run. Calling it would then fail (and how the Durable extension fails a call to a missing
function is not something the run should depend on), so nothing calls it while the setting is
unset. Assumption (from that message, not a source line): only this function is affected.
"""

import logging

import azure.durable_functions as df
import azure.functions as func

from batch_runs.notify_queue import queue_message
from batch_runs.settings import get_settings

logger = logging.getLogger(__name__)

bp = df.Blueprint()

PLAN_QUEUE_ACTIVITY = "plan_run_summary_queue"
ENQUEUE_ACTIVITY = "enqueue_run_summary"


@bp.activity_trigger(input_name="payload")
def plan_run_summary_queue(payload: dict) -> dict:
    """``{"enqueue": true, "queue": name}`` when ``NOTIFY_QUEUE`` is set, else
    ``{"enqueue": false}``."""
    queue = get_settings().notify_queue
    return {"enqueue": True, "queue": queue} if queue else {"enqueue": False}


@bp.activity_trigger(input_name="payload")
@bp.queue_output(arg_name="msg", queue_name="%NOTIFY_QUEUE%", connection="AzureWebJobsStorage")
def enqueue_run_summary(payload: dict, msg: func.Out[str]) -> dict:
    """Put ``payload["summary"]`` (its JSON text) on ``NOTIFY_QUEUE``."""
    msg.set(queue_message(payload["summary"]))
    logger.info("run %s: ending summary queued", payload["summary"].get("run_id"))
    return {"queued": True}
