"""Activity cores: what the three activities do, with their clients and settings injected.

The activity bindings in ``activities/`` only read a dict into an input model from
:mod:`batch_runs.contracts`, call one of these functions, and return its outcome's ``to_dict()``.
Outcomes are typed: success values, or :class:`ActivityFailure` for a *permanent* failure (bad
parameters, a 4xx from the service, a refused host). A *transient* failure (timeouts,
408/429/5xx after the client's own retries) is raised, so the orchestrator's
``call_activity_with_retry`` tries the activity again.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from batch_endpoint import BatchEndpointError, BatchJob, JobInvocation, JobStatus
from batch_runs.contracts import (
    ActivityFailure,
    CancelAccepted,
    CancelOutcome,
    InvokeInput,
    JobRead,
    JobRef,
    ReadOutcome,
    SubmitOutcome,
    Submitted,
)
from batch_runs.policy import job_name_for
from batch_runs.request import InvalidRunRequest, parse_run_request
from batch_runs.settings import Settings

logger = logging.getLogger(__name__)


class JobClient(Protocol):
    """What the cores need of a data-plane client (``BatchEndpointClient`` implements it)."""

    def invoke(
        self,
        invocation: JobInvocation,
        *,
        job_name: str | None = None,
        request_id: str | None = None,
    ) -> BatchJob: ...

    def get_job(self, name: str) -> BatchJob: ...


class JobsClient(Protocol):
    """What the cancel core needs of the ARM client (``WorkspaceJobsClient`` implements it)."""

    def cancel_job(self, job: BatchJob) -> None: ...


#: Returns the client for an endpoint URI (``batch_runs.clients.get_client`` in the app).
ClientFactory = Callable[[str], JobClient]


def failure_of(error: BaseException) -> ActivityFailure:
    """The :class:`ActivityFailure` for a permanent error."""
    if isinstance(error, InvalidRunRequest):
        body = error.to_error_body()["error"]
        return ActivityFailure(
            type="InvalidRunRequest",
            message=body["message"],
            details=tuple(body["details"]),
            extra={"code": body["code"]},
        )
    to_dict = getattr(error, "to_dict", None)
    if callable(to_dict):
        data = to_dict()
        known = {"type", "message", "retryable"}
        return ActivityFailure(
            type=str(data["type"]),
            message=str(data["message"]),
            extra={k: v for k, v in data.items() if k not in known},
        )
    return ActivityFailure(type=type(error).__name__, message=str(error))


def _permanent(exc: BatchEndpointError | ValueError, message: str, *args: str) -> ActivityFailure:
    """Re-raise a transient error (for the activity retry); log and return a permanent one."""
    if isinstance(exc, BatchEndpointError) and exc.retryable:
        raise exc
    logger.warning(message, *args, exc)
    return failure_of(exc)


def invoke_job(
    inp: InvokeInput, *, settings: Settings, client_factory: ClientFactory
) -> SubmitOutcome:
    """Validate the run parameters and submit the batch job (idempotently).

    The job name is derived from the run id and start time, so an activity that runs twice
    (at-least-once delivery, a host restart) finds the job it created instead of creating a
    second one.

    Returns:
        :class:`Submitted`, or :class:`ActivityFailure` for a permanent failure.

    Raises:
        BatchEndpointError: A transient failure (``retryable``), for the activity retry.
    """
    started = datetime.fromisoformat(inp.started)
    try:
        request = parse_run_request(
            dict(inp.run_parameters), settings, run_id=inp.run_id, now=started
        )
    except InvalidRunRequest as exc:
        logger.warning("run %s: invalid run parameters: %s", inp.run_id, exc)
        return failure_of(exc)
    job_name = job_name_for(inp.run_id, inp.started)
    try:
        job = client_factory(request.endpoint_uri).invoke(
            request.to_invocation(), job_name=job_name
        )
    except (BatchEndpointError, ValueError) as exc:  # ValueError: e.g. a refused host
        return _permanent(exc, "run %s: invoking the batch endpoint failed: %s", inp.run_id)
    logger.info(
        "run %s: submitted batch job %s (status %s)", inp.run_id, job.name, job.status.value
    )
    return Submitted(job=job, request=request)


def fetch_job(ref: JobRef, *, client_factory: ClientFactory) -> ReadOutcome:
    """Read the job's current state.

    Returns:
        :class:`JobRead`, or :class:`ActivityFailure` for a permanent failure.

    Raises:
        BatchEndpointError: A transient failure, for the activity retry.
    """
    try:
        job = client_factory(ref.endpoint_uri).get_job(ref.job_name)
    except (BatchEndpointError, ValueError) as exc:
        return _permanent(exc, "run %s: reading job %s failed: %s", ref.run_id, ref.job_name)
    logger.debug("run %s: job %s is %s", ref.run_id, job.name, job.status.value)
    return JobRead(job=job)


def cancel_job(
    ref: JobRef, *, client_factory: ClientFactory, jobs_client: Callable[[], JobsClient]
) -> CancelOutcome:
    """Ask Azure ML to cancel the job (ARM ``.../jobs/{name}/cancel``).

    Args:
        ref: The job; without ``job_id`` the job is read first to learn its ARM id.
        client_factory: Data-plane clients (to read the job).
        jobs_client: Returns the ARM workspace-jobs client.

    Returns:
        :class:`CancelAccepted` once the service accepted the request, else
        :class:`ActivityFailure`.

    Raises:
        BatchEndpointError: A transient failure, for the activity retry.
    """
    try:
        job = (
            client_factory(ref.endpoint_uri).get_job(ref.job_name)
            if not ref.job_id
            else BatchJob(name=ref.job_name, id=ref.job_id, status=JobStatus.UNKNOWN)
        )
        jobs_client().cancel_job(job)
    except (BatchEndpointError, ValueError) as exc:
        return _permanent(exc, "run %s: cancelling job %s failed: %s", ref.run_id, ref.job_name)
    logger.info("run %s: cancel requested for job %s", ref.run_id, ref.job_name)
    return CancelAccepted()
