"""Function execution log lines in the Functions host's format."""

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator

__all__ = ["FieldsFormatter", "function_invocation"]

logger = logging.getLogger("devhost.functions")


@contextlib.contextmanager
def function_invocation(name: str, reason: str) -> Iterator[str]:
    """Log ``Executing``/``Executed`` around one function execution; yield its invocation id.

    The outcome is ``Failed`` when the body raises (the exception propagates).
    """
    invocation_id = str(uuid.uuid4())
    logger.info("Executing 'Functions.%s' (Reason='%s', Id=%s)", name, reason, invocation_id)
    started = time.monotonic()
    outcome = "Failed"
    try:
        yield invocation_id
        outcome = "Succeeded"
    finally:
        duration_ms = int((time.monotonic() - started) * 1000)
        log = logger.info if outcome == "Succeeded" else logger.error
        log(
            "Executed 'Functions.%s' (%s, Id=%s, Duration=%dms)",
            name,
            outcome,
            invocation_id,
            duration_ms,
        )


#: Structured fields an app's log records may carry (``extra=``), shown after the message as
#: Application Insights shows them among a trace's custom dimensions.
LOG_FIELDS = ("run_id", "job_name", "endpoint", "trigger")


class FieldsFormatter(logging.Formatter):
    """The host's line format, followed by `` name=value`` for each structured field set."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = [
            f"{name}={value}"
            for name in LOG_FIELDS
            if isinstance(value := getattr(record, name, None), str) and value
        ]
        return f"{text} {' '.join(fields)}" if fields else text
