"""Activity ``estimate_job_duration``: the predictive poll plan of a run.

Thin binding: dict in → :class:`~batch_runs.estimates.EstimateInput` → core
``batch_runs.estimates.estimate_plan`` → outcome dict out. The durable client binding gives the
management API's URLs (the raw binding JSON, as ``GET /api/runs`` reads it), through which the
core lists the app's recent completed runs. It never raises for a missing history: the outcome
then carries no plan and the run polls as the fixed policy does.
"""

import azure.durable_functions as df

from batch_runs.clients import get_session
from batch_runs.estimates import EstimateInput, estimate_plan
from batch_runs.run_control import HttpInstancesApi, ManagementEndpoint
from batch_runs.settings import get_settings

bp = df.Blueprint()

ESTIMATE_ACTIVITY = "estimate_job_duration"
#: The run orchestrator whose finished runs are the history (orchestrators/batch_run.py).
RUN_ORCHESTRATOR = "batch_endpoint_run"
#: ``(connect, read)`` seconds for each management API page: the estimate must stay cheap.
_TIMEOUT = (5.0, 10.0)


@bp.activity_trigger(input_name="payload")
@bp.generic_input_binding(arg_name="client", type="durableClient")
def estimate_job_duration(payload: dict, client: str) -> dict:
    """Plan the run's checks from recent runs on its endpoint and deployment."""
    return estimate_plan(
        EstimateInput.from_dict(payload),
        api_factory=lambda: HttpInstancesApi(
            ManagementEndpoint.from_binding(client), session=get_session(), timeout=_TIMEOUT
        ),
        settings=get_settings(),
        orchestrator=RUN_ORCHESTRATOR,
    ).to_dict()
