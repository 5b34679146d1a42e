"""The Durable boundary: what the orchestrator sends its activities and what they answer.

Every value that crosses an activity boundary is one of these small frozen dataclasses, turned
into a plain dict with ``to_dict`` and read back with ``from_dict``. mypy checks both sides of
the contract; the dict shapes are the ones the first release wrote, so histories recorded by it
(runs in flight across a deploy) replay unchanged:

- ``{"ok": true, "job": {...}, "run_parameters": {...}}`` → :class:`Submitted`
- ``{"ok": true, "job": {...}}`` → :class:`JobRead`
- ``{"ok": true}`` → :class:`CancelAccepted`
- ``{"ok": false, "error": {"type", "message", "retryable", ...}}`` → :class:`ActivityFailure`

A *transient* failure is raised by the activity instead, so ``call_activity_with_retry`` tries
again; permanent failures are returned as :class:`ActivityFailure` because Durable 1.x cannot
filter retries by error type.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, Union

from batch_endpoint import BatchJob
from batch_runs.request import RunRequest


def json_object(data: object, model: str) -> Mapping[str, Any]:
    """``data`` as a mapping, else ValueError naming ``model`` (a damaged activity payload)."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{model} must be a JSON object, got {type(data).__name__}")
    return data


def required_text(data: Mapping[str, Any], key: str, model: str) -> str:
    """``data[key]`` as a non-empty string, else ValueError naming ``model.key``."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{model}.{key} must be a non-empty string")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class InvokeInput:
    """Input of ``invoke_batch_endpoint``.

    Attributes:
        run_parameters: The run parameters as the caller gave them (ADF names); validated by
            the activity, because a sub-orchestration parent passes them without going through
            HTTP.
        run_id: The orchestration instance id (default output path, job name, logs).
        started: ISO-8601 time the orchestration started (deterministic job name and output).
    """

    run_parameters: Mapping[str, Any]
    run_id: str
    started: str

    @classmethod
    def from_dict(cls, data: object) -> "InvokeInput":
        """Raises: ValueError naming the bad field."""
        d = json_object(data, "InvokeInput")
        params = d.get("run_parameters")
        if not isinstance(params, Mapping):
            raise ValueError("InvokeInput.run_parameters must be a JSON object")
        started = required_text(d, "started", "InvokeInput")
        try:
            datetime.fromisoformat(started)
        except ValueError as exc:
            raise ValueError("InvokeInput.started must be an ISO-8601 timestamp") from exc
        return cls(
            run_parameters=params, run_id=required_text(d, "run_id", "InvokeInput"), started=started
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_parameters": dict(self.run_parameters),
            "run_id": self.run_id,
            "started": self.started,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRef:
    """Input of ``get_batch_job`` and ``cancel_batch_job``: which job, on which endpoint."""

    endpoint_uri: str
    job_name: str
    run_id: str
    job_id: str | None = None

    @classmethod
    def from_dict(cls, data: object) -> "JobRef":
        """Raises: ValueError naming the bad field."""
        d = json_object(data, "JobRef")
        job_id = d.get("job_id")
        if job_id is not None and not isinstance(job_id, str):
            raise ValueError("JobRef.job_id must be a string")
        return cls(
            endpoint_uri=required_text(d, "endpoint_uri", "JobRef"),
            job_name=required_text(d, "job_name", "JobRef"),
            run_id=required_text(d, "run_id", "JobRef"),
            job_id=job_id or None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "endpoint_uri": self.endpoint_uri,
            "job_name": self.job_name,
            "run_id": self.run_id,
        }
        if self.job_id:
            out["job_id"] = self.job_id
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityFailure:
    """A permanent failure, returned (not raised) by an activity.

    Attributes:
        type: The error's class name (``InvalidRunRequest``, ``AuthError``, ...).
        message: What went wrong; never carries tokens or SAS query strings.
        retryable: Always False when returned; kept for the record.
        details: ``[{"field", "message"}]`` for invalid run parameters.
        extra: Any further fields the error carried (``status``, ``code``, ``request_id``).
    """

    type: str
    message: str
    retryable: bool = False
    details: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ActivityFailure":
        error = data.get("error") if isinstance(data.get("error"), Mapping) else {}
        assert isinstance(error, Mapping)
        details = error.get("details")
        known = {"type", "code", "message", "retryable", "details"}
        return cls(
            type=str(error.get("type") or error.get("code") or "Error"),
            message=str(error.get("message") or "unknown error"),
            retryable=bool(error.get("retryable", False)),
            details=tuple(d for d in details if isinstance(d, Mapping))
            if isinstance(details, list)
            else (),
            extra={k: v for k, v in error.items() if k not in known},
        )

    def to_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "type": self.type,
            "message": self.message,
            "retryable": self.retryable,
            **self.extra,
        }
        if self.details:
            error["details"] = [dict(d) for d in self.details]
        return {"ok": False, "error": error}

    def describe(self, what: str) -> str:
        """A one-line message: ``<what> failed: <message> (field: message; ...)``."""
        message = self.message
        if self.details:
            parts = [f"{d.get('field')}: {d.get('message')}" for d in self.details]
            message = f"{message} ({'; '.join(parts)})"
        return f"{what} failed: {message}"


#: Cancel grace of outcomes written before ``CANCEL_GRACE_SECONDS`` existed.
DEFAULT_CANCEL_GRACE_SECONDS = 900


@dataclass(frozen=True, slots=True, kw_only=True)
class Submitted:
    """``invoke_batch_endpoint`` succeeded: the job, the request it was made from, and how long
    a cancel may take to be confirmed (``CANCEL_GRACE_SECONDS``, read by the activity because
    the orchestrator reads no settings)."""

    job: BatchJob
    request: RunRequest
    cancel_grace_seconds: int = DEFAULT_CANCEL_GRACE_SECONDS

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Submitted":
        grace = data.get("cancel_grace_seconds")
        return cls(
            job=BatchJob.from_dict(data.get("job")),
            request=RunRequest.from_resolved(data.get("run_parameters")),
            cancel_grace_seconds=grace
            if isinstance(grace, int) and grace > 0
            else DEFAULT_CANCEL_GRACE_SECONDS,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "job": self.job.to_dict(),
            "run_parameters": self.request.to_dict(),
            "cancel_grace_seconds": self.cancel_grace_seconds,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRead:
    """``get_batch_job`` succeeded: the job's current state."""

    job: BatchJob

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "JobRead":
        return cls(job=BatchJob.from_dict(data.get("job")))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "job": self.job.to_dict()}


@dataclass(frozen=True, slots=True)
class CancelAccepted:
    """``cancel_batch_job`` succeeded: the service accepted the cancel request, or the job had
    already ended (``already_ended``), which is not an error."""

    already_ended: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CancelAccepted":
        return cls(already_ended=bool(data.get("already_ended", False)))

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "already_ended": True} if self.already_ended else {"ok": True}


SubmitOutcome = Union[Submitted, ActivityFailure]  # noqa: UP007 (a runtime alias)
ReadOutcome = Union[JobRead, ActivityFailure]  # noqa: UP007
CancelOutcome = Union[CancelAccepted, ActivityFailure]  # noqa: UP007


_T = TypeVar("_T")


def _read(data: object, success: Callable[[Mapping[str, Any]], _T]) -> "_T | ActivityFailure":
    d = json_object(data, "activity outcome")
    return success(d) if d.get("ok") else ActivityFailure.from_dict(d)


def read_submit_outcome(data: object) -> SubmitOutcome:
    """Read what ``invoke_batch_endpoint`` returned (this release's or the first's shape)."""
    return _read(data, Submitted.from_dict)


def read_read_outcome(data: object) -> ReadOutcome:
    """Read what ``get_batch_job`` returned."""
    return _read(data, JobRead.from_dict)


def read_cancel_outcome(data: object) -> CancelOutcome:
    """Read what ``cancel_batch_job`` returned."""
    return _read(data, CancelAccepted.from_dict)
