"""The run's ending steps, as generators ``batch_endpoint_run`` delegates to (``yield from``).

- :func:`copy_after_success`: after a Completed job, copy the predictions file to
  ``copy_output_to`` (activity ``copy_run_output``) and add ``copied_to`` to the output. A copy
  that fails (after the activity's retries) fails the run with a message naming the job, the
  destination and the reason: the caller asked for the hand-off, so a run that silently skipped
  it would look like success to the next pipeline step.
- :func:`announce_ending`: wraps the whole run; on every ending (output or exception) it starts
  the notification once (activity ``start_run_notification``). A failure to start it is logged
  and never changes the run's outcome; delivery happens in its own orchestration. Before it,
  every ending puts the same summary on ``NOTIFY_QUEUE`` when set (``orchestrators.notify_queue``).
"""

import logging

import azure.durable_functions as df

from activities.handoff import COPY_ACTIVITY, START_NOTIFY_ACTIVITY
from batch_runs.handoff import CopyResult
from batch_runs.notify import build_summary, notify_url_of, run_trigger
from batch_runs.state import Phase, RunFailed, RunState, custom_status, run_failed
from orchestrators.notify_queue import enqueue_summary

logger = logging.getLogger(__name__)

COPY_RETRY = df.RetryOptions(first_retry_interval_in_milliseconds=15_000, max_number_of_attempts=3)
NOTIFY_START_RETRY = df.RetryOptions(
    first_retry_interval_in_milliseconds=5_000, max_number_of_attempts=3
)


def copy_after_success(context: df.DurableOrchestrationContext, state: RunState, output: dict):
    """``output`` plus ``copied_to`` once the copy succeeded (no-op without ``copy_output_to``)."""
    target = state.request.copy_output_to
    if not target:
        return output
    payload = {"output_uri": output.get("output_uri"), "copy_output_to": target}
    try:
        result = CopyResult.from_dict(
            (yield context.call_activity_with_retry(COPY_ACTIVITY, COPY_RETRY, payload))
        )
    except Exception as exc:  # retries spent on transient failures
        result = CopyResult(ok=False, error=(str(exc).splitlines() or ["copy failed"])[0][:400])
    if not result.ok:
        context.set_custom_status(custom_status(state, Phase.FAILED))
        studio = f" Studio: {state.job.studio_url}" if state.job.studio_url else ""
        raise run_failed(
            "copy_failed",
            state,
            message=(
                f"Batch job {state.job.name} completed, but copying its output "
                f"{output.get('output_uri')} to copy_output_to {target} failed: {result.error}."
                f"{studio}"
            ),
        )
    _log(context, "copied the output of job %s to %s", state.job.name, target)
    return {**output, "copied_to": result.copied_to or target}


def announce_ending(context: df.DurableOrchestrationContext, run):
    """Run the ``run`` generator to its end, then start the notification (if any) once."""
    try:
        output = yield from run
    except Exception as exc:
        reason = exc.message if isinstance(exc, RunFailed) else str(exc)
        yield from _start_notification(context, reason=reason or type(exc).__name__)
        raise
    if output is not None:  # None: continue_as_new, the run goes on
        yield from _start_notification(context, output=output)
    return output


def _start_notification(
    context: df.DurableOrchestrationContext,
    *,
    output: dict | None = None,
    reason: str | None = None,
):
    raw = context.get_input()
    url = notify_url_of(raw)
    try:
        summary = build_summary(
            run_id=context.instance_id,
            trigger=run_trigger(raw),
            finished=context.current_utc_datetime,
            output=output,
            status=context.custom_status,
            reason=reason,
        )
    except Exception as exc:  # never changes how the run ends
        _log(context, "could not build the ending summary: %s", str(exc).splitlines()[:1])
        return
    yield from enqueue_summary(context, summary)  # NOTIFY_QUEUE (orchestrators/notify_queue.py)
    if url is None:
        return
    payload = {"run_id": context.instance_id, "notify_url": url, "summary": summary}
    try:
        yield context.call_activity_with_retry(START_NOTIFY_ACTIVITY, NOTIFY_START_RETRY, payload)
    except Exception as exc:  # never changes how the run ends
        _log(context, "could not start the notification: %s", str(exc).splitlines()[:1])


def _log(context: df.DurableOrchestrationContext, message: str, *args) -> None:
    if not context.is_replaying:
        logger.info("run %s: %s", context.instance_id, message % args if args else message)
