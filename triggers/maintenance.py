"""Timer trigger ``purge_old_runs``: retention of run history.

On ``RETENTION_SCHEDULE`` (NCRONTAB, six fields; default daily at 03:30 UTC) the history of
every finished orchestration (Completed, Failed, Terminated, Canceled) of the task hub created
more than ``RUN_RETENTION_DAYS`` days ago (default 30) is purged through the Durable purge API.
Active runs are never purged. A purged run is gone from ``GET /api/runs`` and its id is free
again: a repeated ``Idempotency-Key`` then starts a new run.
Disable it with the app setting ``AzureWebJobs.purge_old_runs.Disabled=true``.
"""

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from batch_runs import get_settings
from batch_runs.run_control import retention_cutoff
from batch_runs.settings import retention_schedule_binding
from batch_runs.starts import ENDED_STATUSES

logger = logging.getLogger(__name__)

bp = df.Blueprint()

#: The purge API needs a lower bound: the epoch is older than any run.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def purge_finished_runs(client, *, retention_days: int, now: datetime) -> int:
    """Purge finished runs created before ``now - retention_days``; return how many.

    Args:
        client: The Durable client (``purge_instance_history_by``).
        retention_days: ``RUN_RETENTION_DAYS``.
        now: The current time.
    """
    cutoff = retention_cutoff(now, retention_days)
    result = await client.purge_instance_history_by(
        created_time_from=_EPOCH,
        created_time_to=cutoff,
        runtime_status=[df.OrchestrationRuntimeStatus(s) for s in sorted(ENDED_STATUSES)],
    )
    deleted = int(getattr(result, "instances_deleted", 0) or 0)
    logger.info("retention: purged %d finished run(s) created before %s", deleted, cutoff)
    return deleted


# The schedule is indexed from the environment (never raises): %RETENTION_SCHEDULE% when set,
# else the default, because the host refuses a %SETTING% that does not resolve.
@bp.timer_trigger(arg_name="timer", schedule=retention_schedule_binding(), run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def purge_old_runs(timer: func.TimerRequest, client) -> None:
    settings = get_settings()
    await purge_finished_runs(
        client, retention_days=settings.run_retention_days, now=datetime.now(UTC)
    )
