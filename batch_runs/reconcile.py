"""Orphaned jobs: find ended runs whose Azure ML job still runs, and cancel those jobs.

A run that is terminated through the Durable management API (or whose parent orchestration is
terminated, azure-functions-durable-extension#506) ends without cancelling its job, and a run
that failed while its cancel was refused or unconfirmed may leave its job running. Its job
name and last seen job status are in its custom status, its endpoint in its input.

Pure: no Functions or Durable imports. The job to reconcile comes from orchestration state,
so the job is read from its endpoint through the allowlist first (``client_factory`` refuses a
host outside it) and the job that answer names is the one cancelled, as
:func:`batch_runs.operations.cancel_job` does.

The reconciliation is recorded as the input of a small completed orchestration
(:data:`RECORD_ORCHESTRATOR`, instance id :func:`record_instance_id`) in the run's own task
hub, because the custom status of an ended instance cannot be set any more: the record then
lives in the same store as the run, on every Durable backend, with no second storage
connection, and the retention purge removes it with the finished runs.
"""

import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from batch_endpoint import BatchEndpointError, ClientError, JobStatus, is_final
from batch_runs.operations import ClientFactory, JobsClient
from batch_runs.run_control import InstancesApi, endpoint_of, iter_instances, run_parameters_of

logger = logging.getLogger(__name__)

#: The runtime statuses of runs that ended without their orchestrator seeing the job end.
RECONCILED_STATUSES: tuple[str, ...] = ("Terminated", "Failed")
#: The orchestrator whose completed instances hold reconciliation records.
RECORD_ORCHESTRATOR = "batch_run_reconciliation"
_RECORD_PREFIX = "reconciled-"


def record_instance_id(run_id: str) -> str:
    """The instance id of ``run_id``'s reconciliation record (bounded: a hash of the run id)."""
    return _RECORD_PREFIX + hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:40]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrphanCandidate:
    """An ended run whose job was last seen active: the job to read and maybe cancel."""

    run_id: str
    job_name: str
    endpoint_uri: str
    last_job_status: str


def job_left_active(runtime_status: str | None, custom_status: object) -> bool:
    """Whether an ended run's job was last seen active (only such a run can be reconciled)."""
    if runtime_status not in RECONCILED_STATUSES or not isinstance(custom_status, Mapping):
        return False
    job_name = custom_status.get("job_name")
    job_status = custom_status.get("job_status")
    return isinstance(job_name, str) and bool(job_name) and not is_final(str(job_status or ""))


def candidate_of(
    *,
    run_id: str,
    runtime_status: str | None,
    custom_status: object,
    durable_input: object,
    default_endpoint: str | None,
) -> OrphanCandidate | None:
    """The job of an ended run that may still run, or None (active run, no job, job final)."""
    if not job_left_active(runtime_status, custom_status):
        return None
    assert isinstance(custom_status, Mapping)
    job_name = str(custom_status.get("job_name"))
    job_status = custom_status.get("job_status")
    endpoint = endpoint_of(run_parameters_of(durable_input), default_endpoint)
    if endpoint is None:
        return None
    return OrphanCandidate(
        run_id=run_id,
        job_name=job_name,
        endpoint_uri=endpoint,
        last_job_status=str(job_status or JobStatus.UNKNOWN.value),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconciliation:
    """What was done about an ended run's job.

    Attributes:
        run_id: The run.
        job_name: Its job.
        action: ``cancelled`` (the job was active and its cancel was accepted) or
            ``already_ended`` (the job had reached a final status on its own).
        job_status: The job's status as read before acting.
        at: When (ISO-8601, UTC).
        by: ``reconcile_jobs`` (the timer) or ``cancel`` (``POST /api/runs/{id}/cancel``).
    """

    run_id: str
    job_name: str
    action: str
    job_status: str
    at: str
    by: str

    def to_dict(self) -> dict[str, str]:
        return {
            "run_id": self.run_id,
            "job_name": self.job_name,
            "action": self.action,
            "job_status": self.job_status,
            "at": self.at,
            "by": self.by,
        }

    def view(self) -> dict[str, str]:
        """What the run view shows under ``reconciliation``."""
        return {k: v for k, v in self.to_dict().items() if k != "run_id"}

    @classmethod
    def from_record(cls, data: object, run_id: str) -> "Reconciliation | None":
        """A record's input, when it is a reconciliation of ``run_id`` (else None)."""
        if not isinstance(data, Mapping) or data.get("run_id") != run_id:
            return None
        values = {k: data.get(k) for k in ("job_name", "action", "job_status", "at", "by")}
        if not all(isinstance(v, str) for v in values.values()):
            return None
        return cls(run_id=run_id, **values)  # type: ignore[arg-type]


class ReconcileFailed(Exception):
    """Reading or cancelling the job failed; the message names the job and never a secret."""


def reconcile_job(
    candidate: OrphanCandidate,
    *,
    client_factory: ClientFactory,
    jobs_client: Callable[[], JobsClient],
    workspace_id: str | None,
    now: datetime,
    by: str,
) -> Reconciliation:
    """Read the job from its allowlisted endpoint; cancel it when it is still active.

    Raises:
        ReconcileFailed: The endpoint is refused, or the read or the cancel failed.
    """
    try:
        job = client_factory(candidate.endpoint_uri).get_job(candidate.job_name)
        if job.is_final:
            action = "already_ended"
        else:
            jobs_client().cancel_job(job, workspace_id=workspace_id)
            action = "cancelled"
    except ClientError as exc:
        raise ReconcileFailed(f"cancelling job {candidate.job_name} was refused: {exc}") from exc
    except (BatchEndpointError, ValueError) as exc:
        raise ReconcileFailed(f"cancelling job {candidate.job_name} failed: {exc}") from exc
    return Reconciliation(
        run_id=candidate.run_id,
        job_name=job.name,
        action=action,
        job_status=job.status.value,
        at=now.isoformat(),
        by=by,
    )


def ended_candidates(
    api: InstancesApi,
    *,
    orchestrator: str,
    default_endpoint: str | None,
    max_pages: int = 1000,
) -> Iterator[OrphanCandidate]:
    """Every ended run of ``orchestrator`` whose job was last seen active, over all pages."""
    params = {"runtimeStatus": ",".join(RECONCILED_STATUSES), "top": "100", "showInput": "true"}
    for status in iter_instances(api, params, max_pages=max_pages):
        if status.get("name") != orchestrator:
            continue
        candidate = candidate_of(
            run_id=str(status.get("instanceId")),
            runtime_status=_text(status.get("runtimeStatus")),
            custom_status=status.get("customStatus"),
            durable_input=status.get("input"),
            default_endpoint=default_endpoint,
        )
        if candidate is not None:
            yield candidate


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
