"""Activity cores: what the three activities do, with their clients and settings injected.

The activity bindings in ``activities/`` only read a dict into an input model from
:mod:`batch_runs.contracts`, call one of these functions, and return its outcome's ``to_dict()``.
Outcomes are typed: success values, or :class:`ActivityFailure` for a *permanent* failure (bad
parameters, a 4xx from the service, a refused host). A *transient* failure (timeouts,
408/429/5xx after the client's own retries) is raised, so the orchestrator's
``call_activity_with_retry`` tries the activity again.
"""

import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Protocol

from batch_endpoint import (
    AuthError,
    BatchEndpointError,
    BatchJob,
    ClientError,
    JobInvocation,
)
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
from batch_runs.request import RUN_KEY_PROPERTY, InvalidRunRequest, parse_run_request
from batch_runs.settings import Settings
from batch_runs.telemetry import log_run, run_fields

logger = logging.getLogger(__name__)


class JobClient(Protocol):
    """What the cores need of a data-plane client (``BatchEndpointClient`` implements it)."""

    def invoke(
        self,
        invocation: JobInvocation,
        *,
        job_name: str | None = None,
        request_id: str | None = None,
        find_existing: Callable[[], BatchJob | None] | None = None,
    ) -> BatchJob: ...

    def get_job(self, name: str) -> BatchJob: ...


class JobsClient(Protocol):
    """What the cores need of the ARM client (``WorkspaceJobsClient`` implements it)."""

    def cancel_job(self, job: BatchJob, *, workspace_id: str | None = None) -> None: ...

    def find_jobs(
        self,
        *,
        workspace_id: str,
        properties: Mapping[str, str] | None = None,
        tag: str | None = None,
    ) -> Iterator[BatchJob]: ...


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


def _has_ended(client_factory: ClientFactory, ref: JobRef) -> bool:
    """Whether the job is final now (False when it cannot be read)."""
    try:
        return client_factory(ref.endpoint_uri).get_job(ref.job_name).is_final
    except (BatchEndpointError, ValueError):
        return False


def _permanent(exc: BatchEndpointError | ValueError, message: str, *args: str) -> ActivityFailure:
    """Re-raise a transient error (for the activity retry); log and return a permanent one."""
    if isinstance(exc, BatchEndpointError) and exc.retryable:
        raise exc
    logger.warning(message, *args, exc)
    return failure_of(exc)


def invoke_job(
    inp: InvokeInput,
    *,
    settings: Settings,
    client_factory: ClientFactory,
    jobs_client: Callable[[], JobsClient],
) -> SubmitOutcome:
    """Validate the run parameters and submit the batch job, at most once per run.

    The run's job key (``bs-<hash(run id, start)>``) is sent as the job name (a fast path for a
    service that honours names), as the job's tag and property ``batch_run_key``, and as the
    seed of the ``repeatability_request-id``, so every activity attempt sends the same. With
    ``AML_WORKSPACE_ID`` set, the client looks for a job carrying that property through the ARM
    Jobs list before it submits and after any ambiguous attempt, so an activity that runs twice
    (at-least-once delivery, a lost answer, a host restart) adopts the job it created instead
    of creating a second one, even when the service ignores client names.

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
    run_key = job_name_for(inp.run_id, inp.started)
    workspace_id = settings.workspace_id

    def find_existing() -> BatchJob | None:
        assert workspace_id is not None
        found = jobs_client().find_jobs(
            workspace_id=workspace_id, properties={RUN_KEY_PROPERTY: run_key}
        )
        return next(iter(found), None)

    try:
        job = client_factory(request.endpoint_uri).invoke(
            request.to_invocation(run_key, inp.run_id),
            job_name=run_key,
            request_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"batch-endpoint-run:{run_key}")),
            find_existing=find_existing if workspace_id else None,
        )
    except (BatchEndpointError, ValueError) as exc:  # ValueError: e.g. a refused host
        return _permanent(exc, "run %s: invoking the batch endpoint failed: %s", inp.run_id)
    log_run(
        logger,
        logging.INFO,
        "run %s: submitted batch job %s (status %s)",
        inp.run_id,
        job.name,
        job.status.value,
        fields=run_fields(
            run_id=inp.run_id,
            job_name=job.name,
            endpoint=request.endpoint_uri,
            trigger=request.trigger,
        ),
    )
    return Submitted(job=job, request=request, cancel_grace_seconds=settings.cancel_grace_seconds)


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
    ref: JobRef,
    *,
    client_factory: ClientFactory,
    jobs_client: Callable[[], JobsClient],
    workspace_id: str | None = None,
) -> CancelOutcome:
    """Ask Azure ML to cancel the job (ARM ``.../jobs/{name}/cancel``).

    The job is read from its endpoint first (through the allowlist) and the job that answer
    names is the one cancelled. Cancelling a job that has already ended is not an error: when
    ARM refuses with a 4xx other than 401/403, the job is read again, and if it is final the
    outcome is ``CancelAccepted(already_ended=True)``.

    Args:
        ref: The job.
        client_factory: Data-plane clients (to read the job).
        jobs_client: Returns the ARM workspace-jobs client.
        workspace_id: ``AML_WORKSPACE_ID``; without it the workspace comes from the job id.

    Returns:
        :class:`CancelAccepted` once the service accepted the request (or the job had ended),
        else :class:`ActivityFailure` naming the refusal.

    Raises:
        BatchEndpointError: A transient failure, for the activity retry.
    """
    try:
        # Read the job from its (allowlisted) endpoint first and cancel what that returns: the
        # reference comes from orchestration state, which must not be able to name any job of
        # the workspace (or another workspace) to cancel.
        job = client_factory(ref.endpoint_uri).get_job(ref.job_name)
        jobs_client().cancel_job(job, workspace_id=workspace_id)
    except ClientError as exc:
        if isinstance(exc, AuthError) or not _has_ended(client_factory, ref):
            return _permanent(
                exc, "run %s: cancelling job %s was refused: %s", ref.run_id, ref.job_name
            )
        logger.info("run %s: job %s had already ended; nothing to cancel", ref.run_id, ref.job_name)
        return CancelAccepted(already_ended=True)
    except (BatchEndpointError, ValueError) as exc:
        return _permanent(exc, "run %s: cancelling job %s failed: %s", ref.run_id, ref.job_name)
    log_run(
        logger,
        logging.INFO,
        "run %s: cancel requested for job %s",
        ref.run_id,
        ref.job_name,
        fields=run_fields(run_id=ref.run_id, job_name=ref.job_name, endpoint=ref.endpoint_uri),
    )
    return CancelAccepted()
