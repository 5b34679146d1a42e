"""Azure ML job statuses and which of them are final.

Only ``Completed``, ``Failed`` and ``Canceled`` are final. ``NotResponding``, ``Paused``,
``Unknown`` and unrecognised values are "not final yet": the orchestrator keeps polling them
under its deadline (azure-ai-ml treats NotResponding and Paused as terminal; we deliberately do
not, because such jobs can come back).
"""

from enum import Enum


class JobStatus(str, Enum):
    """The 14 job status values of Azure ML, with their wire values."""

    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    PROVISIONING = "Provisioning"
    STARTING = "Starting"
    RUNNING = "Running"
    CANCEL_REQUESTED = "CancelRequested"
    FINALIZING = "Finalizing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    NOT_RESPONDING = "NotResponding"
    PAUSED = "Paused"
    UNKNOWN = "Unknown"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: object) -> "JobStatus":
        """Map a wire value to a status, case-insensitively; never raises.

        Args:
            value: Whatever the service sent (usually a string, possibly ``None``).

        Returns:
            The matching status; ``UNKNOWN`` for ``None``, non-strings and unrecognised values.
            The British spelling ``"Cancelled"`` maps to ``CANCELED``.
        """
        if isinstance(value, JobStatus):
            return value
        if not isinstance(value, str):
            return cls.UNKNOWN
        return _BY_LOWER.get(value.strip().lower(), cls.UNKNOWN)


_BY_LOWER: dict[str, JobStatus] = {s.value.lower(): s for s in JobStatus}
_BY_LOWER["cancelled"] = JobStatus.CANCELED
_BY_LOWER["cancelrequested"] = JobStatus.CANCEL_REQUESTED

FINAL_STATUSES: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED}
)


def is_final(status: JobStatus | str) -> bool:
    """Whether ``status`` is final (``Completed``, ``Failed`` or ``Canceled``).

    Args:
        status: A :class:`JobStatus` or a wire string (parsed leniently).

    Returns:
        True only for the three final statuses.
    """
    return JobStatus.parse(status) in FINAL_STATUSES
