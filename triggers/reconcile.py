"""Timer trigger ``reconcile_jobs``: no orphaned jobs.

On ``RECONCILE_SCHEDULE`` (NCRONTAB, six fields; default every 15 minutes) every ended run
(Terminated, Failed; all pages of the Durable management API) whose job was last seen active is
looked at: its job is read from its allowlisted endpoint and cancelled when it still runs
(``batch_runs.reconcile``). Each action is logged and recorded, so ``GET /api/runs/{id}`` shows
``reconciliation: {job_name, action, job_status, at, by}``. A run with a record is not looked
at again. ``POST /api/runs/{id}/cancel`` on a Terminated or Failed run does the same for one
run (``triggers/http_runs.py``).

The record is the input of a completed instance of the no-op orchestrator
``batch_run_reconciliation`` (id ``reconciled-<hash of the run id>``): an ended instance's
custom status cannot be set, and this keeps the record in the run's own task hub (any Durable
backend, no second storage connection or role) where the retention purge removes it too.
Disable the timer with ``AzureWebJobs.reconcile_jobs.Disabled=true``.
"""

import asyncio
import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from batch_runs import get_settings
from batch_runs.clients import get_client, get_jobs_client, get_session
from batch_runs.fields import decoded_input
from batch_runs.reconcile import (
    RECORD_ORCHESTRATOR,
    OrphanCandidate,
    ReconcileFailed,
    Reconciliation,
    ended_candidates,
    reconcile_job,
    record_instance_id,
)
from batch_runs.run_control import HttpInstancesApi, ManagementApiError, ManagementEndpoint
from batch_runs.settings import reconcile_schedule_binding
from batch_runs.telemetry import log_run, run_fields
from orchestrators.batch_run import ORCHESTRATOR_NAME

logger = logging.getLogger(__name__)

bp = df.Blueprint()


@bp.orchestration_trigger(context_name="context")
def batch_run_reconciliation(context: df.DurableOrchestrationContext):
    """A reconciliation record: completes at once with its input (no activity, no timer)."""
    return context.get_input()


async def read_reconciliation(
    client: df.DurableOrchestrationClient, run_id: str
) -> Reconciliation | None:
    """The recorded reconciliation of ``run_id``, if any."""
    status = await client.get_status(record_instance_id(run_id), show_input=True)
    if not status or status.name != RECORD_ORCHESTRATOR:
        return None
    return Reconciliation.from_record(decoded_input(status.input_), run_id)


async def record_reconciliation(
    client: df.DurableOrchestrationClient, reconciliation: Reconciliation
) -> None:
    """Record what was done (a cancel replaces an earlier record; anything else does not)."""
    if reconciliation.action != "cancelled" and await read_reconciliation(
        client, reconciliation.run_id
    ):
        return
    # Assumption: starting an id whose instance has completed replaces it (the extension's
    # default ``overridableExistingInstanceStates`` is ``NonRunningStates``). Were it refused,
    # the earlier record stays; the job's cancel has been sent either way, so it is logged only.
    try:
        await client.start_new(
            RECORD_ORCHESTRATOR,
            record_instance_id(reconciliation.run_id),
            reconciliation.to_dict(),
        )
    except Exception as exc:  # the SDK raises a bare Exception
        logger.warning(
            "reconcile: run %s: recording the reconciliation failed: %s",
            reconciliation.run_id,
            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
        )


async def reconcile_one(
    client: df.DurableOrchestrationClient, candidate: OrphanCandidate, *, by: str
) -> Reconciliation:
    """Read the candidate's job, cancel it if it still runs, record and log what was done.

    Raises:
        ReconcileFailed: The job could not be read or cancelled.
    """
    settings = get_settings()
    fields = run_fields(
        run_id=candidate.run_id, job_name=candidate.job_name, endpoint=candidate.endpoint_uri
    )
    try:
        result = await asyncio.to_thread(
            reconcile_job,
            candidate,
            client_factory=get_client,
            jobs_client=get_jobs_client,
            workspace_id=settings.workspace_id,
            now=datetime.now(UTC),
            by=by,
        )
    except ReconcileFailed as exc:
        log_run(
            logger, logging.WARNING, "reconcile: run %s: %s", candidate.run_id, exc, fields=fields
        )
        raise
    await record_reconciliation(client, result)
    log_run(
        logger,
        logging.INFO,
        "reconcile: run %s (ended) job %s was %s: %s",
        candidate.run_id,
        result.job_name,
        result.job_status,
        result.action,
        fields=fields,
    )
    return result


async def reconcile_ended_runs(binding: str) -> list[Reconciliation]:
    """Reconcile every ended run whose job was last seen active and has no record yet."""
    settings = get_settings()
    client = df.DurableOrchestrationClient(binding)
    api = HttpInstancesApi(ManagementEndpoint.from_binding(binding), session=get_session())
    candidates = await asyncio.to_thread(
        lambda: list(
            ended_candidates(
                api, orchestrator=ORCHESTRATOR_NAME, default_endpoint=settings.batch_endpoint_uri
            )
        )
    )
    done: list[Reconciliation] = []
    for candidate in candidates:
        if await read_reconciliation(client, candidate.run_id) is not None:
            continue
        try:
            done.append(await reconcile_one(client, candidate, by="reconcile_jobs"))
        except ReconcileFailed:
            continue  # logged; the next fire tries again
    cancelled = sum(1 for r in done if r.action == "cancelled")
    logger.info(
        "reconcile: %d ended run(s) with a job last seen active; %d job(s) cancelled",
        len(candidates),
        cancelled,
    )
    return done


# The schedule is indexed from the environment (never raises), as the retention timer's.
@bp.timer_trigger(arg_name="timer", schedule=reconcile_schedule_binding(), run_on_startup=False)
@bp.generic_input_binding(arg_name="client", type="durableClient")
async def reconcile_jobs(timer: func.TimerRequest, client: str) -> None:
    # The raw binding: its management URLs are needed to page (the SDK reads one page only).
    try:
        await reconcile_ended_runs(client)
    except ManagementApiError as exc:
        logger.warning("reconcile: listing ended runs failed: %s", exc)
        raise
