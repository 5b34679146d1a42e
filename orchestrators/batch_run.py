"""The run orchestrator ``batch_endpoint_run``: invoke, then wait on durable timers and poll.

Monitor pattern (the ADF template's "Run Batch-Endpoint" + "Wait for job" loop):

1. ``invoke_batch_endpoint`` validates the parameters and submits the job (idempotent job name);
2. loop: wait on a durable timer (no compute held) *or* a ``cancel`` event; poll
   ``get_batch_job``; stop when the job is Completed, Failed or Canceled;
3. Completed → output dict; Failed / Canceled / deadline → the orchestration fails with a
   message naming the job, its status and its Studio link. On the deadline the job is
   cancelled first, so nothing keeps running (and billing) unobserved.

Deterministic: only ``context`` time, input and tasks; every decision is a pure function in
``batch_runs.state``; the activity inputs and outcomes are the typed values of
``batch_runs.contracts``. ``continue_as_new`` every ``POLLS_PER_EXECUTION`` polls bounds
the history of jobs that run for days.

Input: the run parameters (ADF names), e.g. from a parent orchestrator's
``call_sub_orchestrator("batch_endpoint_run", {...})``; or, after ``continue_as_new``,
``{"resume": <RunState dict>}``.
"""

import logging

import azure.durable_functions as df

from activities.estimates import ESTIMATE_ACTIVITY
from activities.jobs import CANCEL_ACTIVITY, GET_ACTIVITY, INVOKE_ACTIVITY
from batch_endpoint import JobStatus
from batch_runs.contracts import (
    ActivityFailure,
    InvokeInput,
    JobRef,
    read_cancel_outcome,
    read_read_outcome,
    read_submit_outcome,
)
from batch_runs.estimates import EstimateInput, read_estimate_outcome
from batch_runs.state import (
    CANCEL_EVENT,
    MAX_CONSECUTIVE_POLL_FAILURES,
    Phase,
    RunState,
    cancel_overdue,
    cancel_refused_message,
    completed_output,
    custom_status,
    ends_execution,
    is_done,
    must_cancel_for_deadline,
    next_check,
    run_failed,
    watchdog_fired,
)
from batch_runs.tags import DEFAULT_TRIGGER
from batch_runs.telemetry import log_run, run_fields
from orchestrators.admission import Admission, acquire_slot, release_slot
from orchestrators.handoff import announce_ending, copy_after_success

logger = logging.getLogger(__name__)

bp = df.Blueprint()

ORCHESTRATOR_NAME = "batch_endpoint_run"

#: Activity retries (fixed interval: 1.x has no backoff). Worst case per call: the client's
#: 3 HTTP attempts (with Retry-After honoured) x 4 activity attempts, 15 s apart.
ACTIVITY_RETRY = df.RetryOptions(
    first_retry_interval_in_milliseconds=15_000, max_number_of_attempts=4
)


@bp.orchestration_trigger(context_name="context")
def batch_endpoint_run(context: df.DurableOrchestrationContext):
    # Every ending (output or failure) starts the run's notification, if it asked for one.
    return (yield from announce_ending(context, _run(context)))


def _run(context: df.DurableOrchestrationContext):
    raw = context.get_input()
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise run_failed(
            "invalid_input", message="The run input must be a JSON object of run parameters."
        )

    # Admission control (orchestrators/admission.py): hold an endpoint slot for the whole run.
    admission = yield from acquire_slot(context, raw)
    if not admission.proceed:
        return None
    try:
        result = yield from _monitor(context, raw, admission)
    except Exception:
        release_slot(context, admission)
        raise
    if not context.will_continue_as_new:
        release_slot(context, admission)
    return result


def _monitor(context: df.DurableOrchestrationContext, raw: dict, admission: Admission):
    if "resume" in raw:
        state = RunState.from_dict(raw["resume"])
    else:
        state = yield from _submit(context, raw)
        if state.request.poll_policy == "predictive":
            state = yield from _plan_polls(context, state)

    # One cancel waiter per execution, reused by every wait: the SDK hands an event to the
    # newest waiter, so a fresh waiter per loop would let a cancel raised while a status check
    # runs land on the previous (abandoned) waiter and be lost.
    cancel = (
        None
        if state.cancel_requested
        else admission.cancel or context.wait_for_external_event(CANCEL_EVENT)
    )
    polls_here = 0
    while not ends_execution(
        polls_here,
        replaying=context.is_replaying,
        cancel_raised=cancel is not None and cancel.is_completed,
    ):
        if is_done(state):
            return (yield from copy_after_success(context, state, _finish(context, state)))
        now = context.current_utc_datetime
        state = yield from _enforce_limits(context, state, now)

        wake_at = next_check(state, now)
        context.set_custom_status(custom_status(state, Phase.WAITING, next_check_at=wake_at))
        timer = context.create_timer(wake_at)
        if cancel is None:
            yield timer
        else:
            winner = yield context.task_any([timer, cancel])
            if winner == cancel:
                timer.cancel()
                cancel = None
                _log(context, state, "cancel requested for job %s", state.job.name)
                state = yield from _cancel_job(context, state, "requested")

        state = yield from _poll(context, state)
        polls_here += 1

    # A cancel raised during the last poll kept the loop going (``ends_execution``), so none is
    # pending here: the next execution's fresh event list loses nothing.
    context.continue_as_new(admission.carry({"resume": state.to_dict()}))
    return None


def _enforce_limits(context: df.DurableOrchestrationContext, state: RunState, now):
    """The run's limits, in order: the deadline and the watchdogs send a (verified) cancel; a
    cancel that was not confirmed in time, or status checks that keep failing, end the run."""
    fired = watchdog_fired(state, now)
    if must_cancel_for_deadline(state, now):
        _log(context, state, "deadline reached for job %s", state.job.name)
        state = yield from _cancel_job(context, state, "deadline")
    elif fired is not None:
        _log(context, state, "watchdog %s for job %s", fired.watchdog_note, state.job.name)
        state = yield from _cancel_job(context, fired, "watchdog")
    elif cancel_overdue(state, now):
        raise run_failed("cancel_unconfirmed", state)
    if state.poll_failures > MAX_CONSECUTIVE_POLL_FAILURES:
        raise run_failed("poll_failures", state)
    return state


def _submit(context: df.DurableOrchestrationContext, params: dict):
    started = context.current_utc_datetime
    context.set_custom_status(custom_status(None, Phase.SUBMITTING))
    invoke = InvokeInput(
        run_parameters=params, run_id=context.instance_id, started=started.isoformat()
    )
    outcome = read_submit_outcome(
        (yield context.call_activity_with_retry(INVOKE_ACTIVITY, ACTIVITY_RETRY, invoke.to_dict()))
    )
    if isinstance(outcome, ActivityFailure):
        context.set_custom_status(custom_status(None, Phase.FAILED))
        raise run_failed("submit_failed", message=outcome.describe("Submitting the batch job"))
    state = RunState.begin(
        request=outcome.request,
        job=outcome.job,
        started=started,
        cancel_grace=outcome.cancel_grace_seconds,
    )
    _log(context, state, "submitted job %s", state.job.name)
    return state


def _plan_polls(context: df.DurableOrchestrationContext, state: RunState):
    """``poll_policy=predictive``: plan the checks from recent runs (an activity, so replays
    read the recorded answer); no plan on any failure, and the run polls as fixed."""
    request = state.request
    estimate = EstimateInput(
        endpoint_uri=request.endpoint_uri,
        deployment_name=request.deployment_name,
        run_id=context.instance_id,
        now=context.current_utc_datetime.isoformat(),
        poll_interval=state.poll_interval,
        poll_max_interval=request.poll_max_interval,
    )
    try:
        outcome = read_estimate_outcome(
            (yield context.call_activity(ESTIMATE_ACTIVITY, estimate.to_dict()))
        )
    except Exception as exc:  # the estimate is optional: never fail a run for it
        _log(context, state, "no poll plan for job %s (%s): polling as fixed", state.job.name, exc)
        return state
    plan = outcome.plan
    _log(
        context,
        state,
        "poll plan for job %s from %d past run(s): %s",
        state.job.name,
        outcome.samples,
        list(plan.checks) if plan else outcome.note,
    )
    return state.with_plan(plan)


def _poll(context: df.DurableOrchestrationContext, state: RunState):
    context.set_custom_status(custom_status(state, Phase.POLLING))
    ref = JobRef(
        endpoint_uri=state.endpoint_uri, job_name=state.job.name, run_id=context.instance_id
    ).to_dict()
    try:
        raw = yield context.call_activity_with_retry(GET_ACTIVITY, ACTIVITY_RETRY, ref)
    except Exception as exc:  # 1.x raises a plain Exception once the retries are spent
        _log(context, state, "status check of job %s failed: %s", state.job.name, exc)
        return state.with_poll_failure(str(exc).splitlines()[0] if str(exc) else "error")
    outcome = read_read_outcome(raw)
    if isinstance(outcome, ActivityFailure):
        raise run_failed(
            "check_failed", state, message=outcome.describe(f"Checking batch job {state.job.name}")
        )
    job = outcome.job
    if job.status != state.job.status:
        _log(context, state, "job %s is now %s", job.name, job.status.value)
    return state.with_job(job, context.current_utc_datetime)


def _cancel_job(context: df.DurableOrchestrationContext, state: RunState, reason: str):
    """Send the cancel, then let the loop poll until the job ends (within the grace period).

    A refusal (403, 400 for a job that is still running) fails the run at once, naming it; a
    transient failure after the activity's retries is logged and the loop keeps polling.
    """
    state = state.cancelling(context.current_utc_datetime, reason)
    context.set_custom_status(custom_status(state, Phase.CANCELLING))
    ref = JobRef(
        endpoint_uri=state.endpoint_uri,
        job_name=state.job.name,
        run_id=context.instance_id,
        job_id=state.job.id or None,
    ).to_dict()
    try:
        raw = yield context.call_activity_with_retry(CANCEL_ACTIVITY, ACTIVITY_RETRY, ref)
    except Exception as exc:
        _log(context, state, "cancelling job %s failed: %s", state.job.name, exc)
        return state
    outcome = read_cancel_outcome(raw)
    if isinstance(outcome, ActivityFailure):
        context.set_custom_status(custom_status(state, Phase.FAILED))
        message = cancel_refused_message(state, outcome.describe("ARM cancel"))
        raise run_failed("cancel_refused", state, message=message)
    return state


def _finish(context: df.DurableOrchestrationContext, state: RunState):
    """End with what the job really did (a job may complete while its cancel is on the way)."""
    if state.job.status is JobStatus.COMPLETED:
        context.set_custom_status(custom_status(state, Phase.COMPLETED))
        _log(context, state, "job %s completed after %d polls", state.job.name, state.polls)
        return completed_output(state, context.current_utc_datetime)
    context.set_custom_status(custom_status(state, Phase.FAILED))
    _log(context, state, "job %s ended %s", state.job.name, state.job.status.value)
    if state.cancel_reason == "deadline":
        raise run_failed("deadline", state)
    if state.cancel_reason == "watchdog":
        raise run_failed("watchdog", state)
    raise run_failed("job_ended", state)


def _log(context: df.DurableOrchestrationContext, state: RunState, message: str, *args) -> None:
    """Log once (not on replay), with the run's structured fields (``batch_runs.telemetry``)."""
    if not context.is_replaying:
        fields = run_fields(
            run_id=context.instance_id,
            job_name=state.job.name,
            endpoint=state.endpoint_uri,
            trigger=state.request.trigger or DEFAULT_TRIGGER,
        )
        text = message % args if args else message
        log_run(logger, logging.INFO, "run %s: %s", context.instance_id, text, fields=fields)
