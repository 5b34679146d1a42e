"""Activities of admission control: plan a run's slot, find slot holders that have ended.

- ``plan_admission``: the run's endpoint slot key and the current limit
  (``MAX_ACTIVE_JOBS_PER_ENDPOINT``). Settings and defaults are read here, never in the
  orchestrator, so its replay stays deterministic (the answer is in the history).
- ``find_ended_runs``: which of the given run ids are no longer active (terminated through the
  management API, failed, purged): the leak reconciliation asks it before it releases them.
"""

import logging
from datetime import datetime

import azure.durable_functions as df

from batch_runs.admission import plan_slot
from batch_runs.contracts import InvokeInput
from batch_runs.settings import get_settings
from batch_runs.starts import ACTIVE_STATUSES, runtime_name

logger = logging.getLogger(__name__)

bp = df.Blueprint()

PLAN_ACTIVITY = "plan_admission"
FIND_ENDED_ACTIVITY = "find_ended_runs"
#: At most this many ids are checked per call (the holders of one endpoint).
MAX_IDS = 1000


@bp.activity_trigger(input_name="payload")
def plan_admission(payload: dict) -> dict:
    """``{"key", "limit"}`` for the run; see ``batch_runs.admission.plan_slot``."""
    inp = InvokeInput.from_dict(payload)
    return plan_slot(
        inp.run_parameters,
        get_settings(),
        run_id=inp.run_id,
        started=datetime.fromisoformat(inp.started),
    ).to_dict()


@bp.activity_trigger(input_name="run_ids")
@bp.durable_client_input(client_name="client")
async def find_ended_runs(run_ids: list, client) -> list:
    """The ids among ``run_ids`` whose instance has ended or is gone (unknown to the hub)."""
    ended: list[str] = []
    for run_id in [r for r in run_ids if isinstance(r, str) and r][:MAX_IDS]:
        status = await client.get_status(run_id)
        if runtime_name(status) not in ACTIVE_STATUSES:
            ended.append(run_id)
    if ended:
        logger.warning("admission: slot holders no longer running: %s", ", ".join(ended))
    return ended
