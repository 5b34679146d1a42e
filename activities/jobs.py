"""Activities over the batch endpoint: invoke, read and cancel a job.

Thin bindings: dict in → input model → core in ``batch_runs.operations`` → outcome dict out.
Activities are sync ``def`` because ``requests`` blocks; the Functions worker runs them on its
thread pool. Permanent failures come back as ``{"ok": False, "error": ...}``; transient ones
raise so that the orchestrator's ``call_activity_with_retry`` tries again.
"""

import azure.durable_functions as df

from batch_runs.clients import get_client, get_jobs_client
from batch_runs.contracts import InvokeInput, JobRef
from batch_runs.operations import cancel_job, fetch_job, invoke_job
from batch_runs.settings import get_settings

bp = df.Blueprint()

INVOKE_ACTIVITY = "invoke_batch_endpoint"
GET_ACTIVITY = "get_batch_job"
CANCEL_ACTIVITY = "cancel_batch_job"


@bp.activity_trigger(input_name="payload")
def invoke_batch_endpoint(payload: dict) -> dict:
    """Validate the run parameters and submit the job; see ``operations.invoke_job``."""
    return invoke_job(
        InvokeInput.from_dict(payload),
        settings=get_settings(),
        client_factory=get_client,
        jobs_client=get_jobs_client,
    ).to_dict()


@bp.activity_trigger(input_name="payload")
def get_batch_job(payload: dict) -> dict:
    """Read the job's status; see ``operations.fetch_job``."""
    return fetch_job(JobRef.from_dict(payload), client_factory=get_client).to_dict()


@bp.activity_trigger(input_name="payload")
def cancel_batch_job(payload: dict) -> dict:
    """Request cancellation of the job (ARM); see ``operations.cancel_job``."""
    return cancel_job(
        JobRef.from_dict(payload),
        client_factory=get_client,
        jobs_client=get_jobs_client,
        workspace_id=get_settings().workspace_id,
    ).to_dict()
