"""The batch orchestrator ``batch_endpoint_batch``: one ``batch_endpoint_run`` child per input.

Fan-out/fan-in with a sliding window: at most ``max_parallel_jobs`` children are active; when
one ends (``task_any``) the next input starts. Each child is a sub-orchestration with the
deterministic id ``<batch id>:<index>`` and ``"trigger": "batch"`` in its run parameters. A
child's failure is caught and recorded as that input's outcome, so one failure never hides
the others; the batch output lists every input's outcome in input order.

A ``cancel`` event stops new children from starting; the HTTP cancel route raises ``cancel``
on every active child too (an orchestrator cannot raise events in the Python SDK 1.x), and each
child's verified cancel stops its job. Inputs never started end ``cancelled``.

History stays bounded: after :data:`CHILDREN_PER_EXECUTION` children ended in one execution,
the parent stops starting, drains its window and continues as new with its progress. The
window must be empty first: a child's completion message names the parent execution that
started it, and Azure/durabletask (commit 5217032) batches messages by execution id
(``src/DurableTask.AzureStorage/OrchestrationSessionManager.cs`` lines 424-475) and defers, then
deletes, those for an execution that is no longer running
(``src/DurableTask.AzureStorage/AzureStorageOrchestrationService.cs`` lines 812-861), so a child
still running across ``continue_as_new`` would never be heard of.

An ``input_folder`` batch first lists the folder (activity ``list_batch_folder``).
"""

import logging
from dataclasses import replace

import azure.durable_functions as df

from activities.batch_folders import LIST_FOLDER_ACTIVITY
from batch_runs.batches import (
    BatchProgress,
    BatchRequest,
    batch_output,
    batch_status,
    child_instance_id,
    child_parameters,
    not_started_outcomes,
    outcome_of_failure,
    should_continue_as_new,
    to_start,
)
from batch_runs.batches import Outcome as ChildOutcome
from batch_runs.folder_listing import FolderListing
from batch_runs.state import CANCEL_EVENT, RunFailed
from orchestrators.batch_run import ACTIVITY_RETRY, ORCHESTRATOR_NAME

logger = logging.getLogger(__name__)

bp = df.Blueprint()

BATCH_ORCHESTRATOR_NAME = "batch_endpoint_batch"


@bp.orchestration_trigger(context_name="context")
def batch_endpoint_batch(context: df.DurableOrchestrationContext):
    raw = context.get_input()
    if not isinstance(raw, dict) or not isinstance(raw.get("batch"), dict):
        raise RunFailed("The batch input must be a JSON object with a 'batch' object.")
    request = BatchRequest.from_dict(raw["batch"])
    progress = BatchProgress.from_dict(raw.get("progress") or {})
    if progress.started is None:
        progress = replace(progress, started=context.current_utc_datetime.isoformat())
    if not request.inputs:
        request = yield from _list_folder(context, request, progress)

    progress = yield from _run_window(context, request, progress)
    total = len(request.inputs)
    if progress.next_index < total and not progress.cancel_requested:
        context.continue_as_new(
            {"batch": request.to_dict(), "progress": progress.to_dict(context.instance_id)}
        )
        return None
    if progress.cancel_requested and progress.next_index < total:
        progress = replace(
            progress,
            outcomes=progress.outcomes + not_started_outcomes(request.inputs, progress.next_index),
            next_index=total,
        )
    phase = "cancelled" if progress.cancel_requested else "completed"
    context.set_custom_status(
        batch_status(
            phase=phase, total=total, progress=progress, active=0, cap=request.max_parallel_jobs
        )
    )
    _log(context, "batch ended (%s): %d inputs", phase, total)
    return batch_output(context.instance_id, total, progress)


def _list_folder(context, request: BatchRequest, progress: BatchProgress):
    status = batch_status(
        phase="listing", total=0, progress=progress, active=0, cap=request.max_parallel_jobs
    )
    context.set_custom_status(status)
    try:
        raw = yield context.call_activity_with_retry(
            LIST_FOLDER_ACTIVITY, ACTIVITY_RETRY, {"input_folder": request.input_folder}
        )
    except Exception as exc:  # 1.x raises a plain Exception once the retries are spent
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raw = {"error": f"the storage could not be read: {first_line}"}
    listing = FolderListing.from_dict(raw)
    if listing.error:
        context.set_custom_status({**status, "phase": "failed"})
        raise RunFailed(f"Listing the batch's input_folder failed: {listing.error}")
    _log(context, "input folder lists %d files", len(listing.uris))
    return replace(request, inputs=listing.uris)


def _run_window(context, request: BatchRequest, progress: BatchProgress):
    """Start, wait, record; until the window is empty and nothing more may start here."""
    total, cap = len(request.inputs), request.max_parallel_jobs
    cancel = None if progress.cancel_requested else context.wait_for_external_event(CANCEL_EVENT)
    if cancel is not None:
        # A cancel raised before this window opens (while the folder was listed, or between two
        # executions) is seen before any child starts: a buffered event completes its waiter
        # only once the waiter is yielded, so yield it with a timer that is due now.
        due_now = context.create_timer(context.current_utc_datetime)
        yield context.task_any([due_now, cancel])
        if cancel.is_completed:
            due_now.cancel()
            cancel = None
            progress = replace(progress, cancel_requested=True)
            _log(context, "cancel requested before the window opened")
    active: dict[int, df.models.Task.TaskBase] = {}
    ended_here = 0
    while True:
        for index in to_start(
            progress, total=total, active=len(active), cap=cap, ended_here=ended_here
        ):
            active[index] = context.call_sub_orchestrator(
                ORCHESTRATOR_NAME,
                child_parameters(request.parameters, request.inputs[index]),
                child_instance_id(context.instance_id, index),
            )
            progress = replace(progress, next_index=index + 1)
        context.set_custom_status(
            batch_status(
                phase="cancelling" if progress.cancel_requested else "running",
                total=total,
                progress=progress,
                active=len(active),
                cap=cap,
            )
        )
        if not active or should_continue_as_new(
            active=len(active), ended_here=ended_here, next_index=progress.next_index, total=total
        ):
            return progress
        waiting = list(active.values()) + ([cancel] if cancel is not None else [])
        yield context.task_any(waiting)
        if cancel is not None and cancel.is_completed:
            cancel = None
            progress = replace(progress, cancel_requested=True)
            _log(context, "cancel requested; %d children active", len(active))
        ended = {i: t for i, t in active.items() if t.is_completed}
        for index, task in sorted(ended.items()):
            del active[index]
            ended_here += 1
            progress = replace(
                progress, outcomes=(*progress.outcomes, _outcome(request, index, task, progress))
            )


def _outcome(request: BatchRequest, index: int, task, progress: BatchProgress) -> ChildOutcome:
    uri = request.inputs[index]
    if task.state is df.models.Task.TaskState.FAILED:
        return outcome_of_failure(index, uri, task.result, cancelled=progress.cancel_requested)
    return ChildOutcome(index=index, input_uri=uri, state="completed", output=task.result)


def _log(context: df.DurableOrchestrationContext, message: str, *args) -> None:
    if not context.is_replaying:
        logger.info("batch %s: %s", context.instance_id, message % args if args else message)
