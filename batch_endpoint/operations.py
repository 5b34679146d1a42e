"""Activity cores: what the three activities do, with their client and settings injected.

The activity bindings in ``activities/`` only translate a dict into one of the input models
below and call these functions. Outcomes are plain JSON-able dicts so they cross the Durable
activity boundary unchanged:

- ``{"ok": True, ...}`` on success;
- ``{"ok": False, "error": {...}}`` for a *permanent* failure (bad parameters, 4xx from the
  service). Durable Functions 1.x cannot filter retries by error type, so permanent errors are
  returned as data and never retried;
- a *transient* failure (timeouts, 408/429/5xx after the client's own retries) is raised, so the
  orchestrator's ``call_activity_with_retry`` tries the activity again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ._errors import BatchEndpointError
from ._models import BatchJob, InvalidRunRequest, RunRequest, parse_run_request
from ._policy import job_name_for
from ._settings import Settings
from ._status import JobStatus

logger = logging.getLogger(__name__)

class JobClient(Protocol):
    """What the cores need of a batch endpoint client (``BatchEndpointClient`` implements it)."""

    def invoke(self, request: RunRequest, *, job_name: str | None = None,
               request_id: str | None = None) -> BatchJob: ...

    def get_job(self, name: str) -> BatchJob: ...

    def cancel_job(self, job: BatchJob) -> None: ...


#: Returns the client for an endpoint URI (``batch_endpoint.get_client`` in the app).
ClientFactory = Callable[[str], JobClient]


def _require_str(data: Mapping[str, Any], key: str, model: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{model}.{key} must be a non-empty string")
    return value


def _require_mapping(data: object, model: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{model} input must be a JSON object, got {type(data).__name__}")
    return data


@dataclass(frozen=True, slots=True, kw_only=True)
class InvokeInput:
    """Input of ``invoke_batch_endpoint``.

    Attributes:
        run_parameters: the run parameters as the caller gave them (ADF names); validated here,
            because a sub-orchestration parent passes them without going through HTTP.
        run_id: the orchestration instance id (used for the default output path and logs).
        started: ISO-8601 time the orchestration started (deterministic job name and output path).
    """

    run_parameters: Mapping[str, Any]
    run_id: str
    started: str

    @classmethod
    def from_dict(cls, data: object) -> InvokeInput:
        d = _require_mapping(data, "InvokeInput")
        params = d.get("run_parameters")
        if not isinstance(params, Mapping):
            raise ValueError("InvokeInput.run_parameters must be a JSON object")
        started = _require_str(d, "started", "InvokeInput")
        try:
            datetime.fromisoformat(started)
        except ValueError as exc:
            raise ValueError("InvokeInput.started must be an ISO-8601 timestamp") from exc
        return cls(run_parameters=params, run_id=_require_str(d, "run_id", "InvokeInput"),
                   started=started)

    def to_dict(self) -> dict[str, Any]:
        return {"run_parameters": dict(self.run_parameters), "run_id": self.run_id,
                "started": self.started}


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRef:
    """Input of ``get_batch_job`` and ``cancel_batch_job``: which job, on which endpoint."""

    endpoint_uri: str
    job_name: str
    run_id: str
    job_id: str | None = None

    @classmethod
    def from_dict(cls, data: object) -> JobRef:
        d = _require_mapping(data, "JobRef")
        job_id = d.get("job_id")
        if job_id is not None and not isinstance(job_id, str):
            raise ValueError("JobRef.job_id must be a string")
        return cls(
            endpoint_uri=_require_str(d, "endpoint_uri", "JobRef"),
            job_name=_require_str(d, "job_name", "JobRef"),
            run_id=_require_str(d, "run_id", "JobRef"),
            job_id=job_id,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"endpoint_uri": self.endpoint_uri, "job_name": self.job_name,
                               "run_id": self.run_id}
        if self.job_id:
            out["job_id"] = self.job_id
        return out


def _failure(error: BaseException, **context: Any) -> dict[str, Any]:
    if isinstance(error, InvalidRunRequest):
        body = error.to_error_body()["error"]
        return {"ok": False, "error": {"type": "InvalidRunRequest", "retryable": False, **body},
                **context}
    if isinstance(error, BatchEndpointError):
        return {"ok": False, "error": error.to_dict(), **context}
    return {"ok": False, "error": {"type": type(error).__name__, "message": str(error),
                                   "retryable": False}, **context}


def invoke_job(
    inp: InvokeInput, *, settings: Settings, client_factory: ClientFactory
) -> dict[str, Any]:
    """Validate the run parameters and submit the batch job (idempotently).

    The job name is derived from the run id and start time, so an activity that runs twice
    (at-least-once delivery, a host restart) finds the job it created instead of creating a
    second one.

    Returns:
        ``{"ok": True, "job": BatchJob dict, "run_parameters": resolved parameters}`` or
        ``{"ok": False, "error": {...}}`` for a permanent failure.

    Raises:
        BatchEndpointError: a transient failure (``retryable`` is true), for the orchestrator's
            activity retry.
    """
    started = datetime.fromisoformat(inp.started)
    try:
        request = parse_run_request(dict(inp.run_parameters), settings, run_id=inp.run_id,
                                    now=started)
    except InvalidRunRequest as exc:
        logger.warning("run %s: invalid run parameters: %s", inp.run_id, exc)
        return _failure(exc)
    job_name = job_name_for(inp.run_id, inp.started)
    try:
        job = client_factory(request.endpoint_uri).invoke(
            request, job_name=job_name, request_id=None
        )
    except BatchEndpointError as exc:
        if exc.retryable:
            raise
        logger.warning("run %s: invoking the batch endpoint failed: %s", inp.run_id, exc)
        return _failure(exc, run_parameters=request.to_dict())
    except ValueError as exc:  # e.g. the endpoint URI failed the client's own checks
        logger.warning("run %s: invoking the batch endpoint failed: %s", inp.run_id, exc)
        return _failure(exc, run_parameters=request.to_dict())
    logger.info("run %s: submitted batch job %s (status %s)", inp.run_id, job.name,
                job.status.value)
    return {"ok": True, "job": job.to_dict(), "run_parameters": request.to_dict()}


def fetch_job(ref: JobRef, *, client_factory: ClientFactory) -> dict[str, Any]:
    """Read the job's current state.

    Returns:
        ``{"ok": True, "job": BatchJob dict}`` or ``{"ok": False, "error": {...}}``.

    Raises:
        BatchEndpointError: a transient failure, for the activity retry.
    """
    try:
        job = client_factory(ref.endpoint_uri).get_job(ref.job_name)
    except BatchEndpointError as exc:
        if exc.retryable:
            raise
        logger.warning("run %s: reading job %s failed: %s", ref.run_id, ref.job_name, exc)
        return _failure(exc)
    logger.debug("run %s: job %s is %s", ref.run_id, job.name, job.status.value)
    return {"ok": True, "job": job.to_dict()}


def cancel_job(ref: JobRef, *, client_factory: ClientFactory) -> dict[str, Any]:
    """Ask Azure ML to cancel the job (ARM ``.../jobs/{name}/cancel``).

    Returns:
        ``{"ok": True}`` once the service accepted the request, else ``{"ok": False, ...}``.

    Raises:
        BatchEndpointError: a transient failure, for the activity retry.
    """
    client = client_factory(ref.endpoint_uri)
    try:
        job = (
            client.get_job(ref.job_name)
            if not ref.job_id
            else BatchJob(name=ref.job_name, id=ref.job_id, status=JobStatus.UNKNOWN,
                          studio_url=None, output_uri=None, input_uri=None, error_message=None,
                          created_at=None)
        )
        client.cancel_job(job)
    except BatchEndpointError as exc:
        if exc.retryable:
            raise
        logger.warning("run %s: cancelling job %s failed: %s", ref.run_id, ref.job_name, exc)
        return _failure(exc)
    except ValueError as exc:
        logger.warning("run %s: cancelling job %s failed: %s", ref.run_id, ref.job_name, exc)
        return _failure(exc)
    logger.info("run %s: cancel requested for job %s", ref.run_id, ref.job_name)
    return {"ok": True}
