"""Timer trigger: score ``SCHEDULED_INPUT_URI`` on the ``SCORING_SCHEDULE`` (NCRONTAB, 6 fields).

The instance id comes from the schedule slot (``schedule-20261125T020000Z``): the latest
occurrence of ``SCORING_SCHEDULE`` at or before the fire (``batch_runs.schedule``), so a
duplicate fire of the same slot starts nothing. Runs never overlap: while an earlier scheduled
run is still active, the new slot is skipped with a log line (the next slot tries again).
Disable the schedule with the app setting ``AzureWebJobs.start_run_on_schedule.Disabled=true``.
"""

import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from batch_runs import get_settings
from batch_runs.schedule import schedule_slot
from batch_runs.starts import instance_id_for_schedule, runtime_name
from batch_runs.telemetry import run_fields
from orchestrators.batch_run import ORCHESTRATOR_NAME
from triggers.run_start import starter_request

logger = logging.getLogger(__name__)

bp = df.Blueprint()

SCHEDULE_PREFIX = "schedule-"
_ACTIVE = [
    df.OrchestrationRuntimeStatus.Running,
    df.OrchestrationRuntimeStatus.Pending,
    df.OrchestrationRuntimeStatus.ContinuedAsNew,
    df.OrchestrationRuntimeStatus.Suspended,  # a suspended run still holds its job
]


@bp.timer_trigger(arg_name="timer", schedule="%SCORING_SCHEDULE%", run_on_startup=False)
@bp.durable_client_input(client_name="client")
async def start_run_on_schedule(timer: func.TimerRequest, client) -> None:
    settings = get_settings()
    if not settings.scheduled_input_uri:
        logger.warning("SCHEDULED_INPUT_URI is not set; scheduled run skipped")
        return
    # The occurrence this fire stands for, not the moment it ran: duplicate fires of one slot
    # (a restart, a second host) map to one instance id and start one run.
    slot = schedule_slot(settings.scoring_schedule, datetime.now(UTC), settings.website_time_zone)
    instance_id = instance_id_for_schedule(slot)
    if timer.past_due:
        logger.info("schedule slot %s is past due; running it now", instance_id)

    active = await client.get_status_by(runtime_status=_ACTIVE, instance_id_prefix=SCHEDULE_PREFIX)
    if active:
        logger.warning(
            "previous scheduled run %s is still %s; slot %s skipped (no overlap)",
            active[0].instance_id,
            runtime_name(active[0]),
            instance_id,
        )
        return
    if await client.get_status(instance_id):
        logger.info("schedule slot %s already has a run; skipped", instance_id)
        return
    request = starter_request(
        {
            "endpoint_input_uri": settings.scheduled_input_uri,
            "endpoint_input_type": settings.scheduled_input_type,
            "trigger": "schedule",
        },
        settings,
        run_id=instance_id,
        now=slot,
        source_name="schedule",
        what="the scheduled run",
    )
    await client.start_new(ORCHESTRATOR_NAME, instance_id, request.to_dict())
    fields = run_fields(run_id=instance_id, endpoint=request.endpoint_uri, trigger="schedule")
    logger.info("scheduled run %s started over %s", instance_id, request.input_uri, extra=fields)
