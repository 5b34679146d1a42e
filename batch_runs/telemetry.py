"""Structured run logs: the fields every run log line carries, and the Azure Monitor export.

Log records carry ``run_id``, ``job_name``, ``endpoint`` and ``trigger`` as attributes (logging
``extra=``), so they become custom dimensions in Application Insights (``traces``
``customDimensions``; the OpenTelemetry logging handler copies a record's extra attributes into
the log record's attributes) and fields in devhost's log lines (its formatter appends them).

With ``APPLICATIONINSIGHTS_CONNECTION_STRING`` set, :func:`configure_telemetry` exports through
``azure-monitor-opentelemetry`` (``configure_azure_monitor``), the OpenTelemetry distro Azure
Functions Python apps use. With ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true`` the Python
worker configures that same distro itself before it indexes the app
(Azure/azure-functions-python-worker, the library worker's ``worker_init_request``:
``is_envvar_true(PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY)`` → ``initialize_azure_monitor()``),
so the app
then leaves it alone (a second configuration would export every record twice). Entra
authentication comes from ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING``, which the exporter reads
(azure-monitor-opentelemetry-exporter ``export/_base.py``). The distro is imported only when
configured here: importing it costs hundreds of milliseconds of cold start, which an app without
the setting does not pay.
"""

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

#: The structured fields of run logs, in this order.
RUN_FIELDS: tuple[str, ...] = ("run_id", "job_name", "endpoint", "trigger")
CONNECTION_STRING_SETTING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
WORKER_TELEMETRY_SETTING = "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"
#: The logger names whose records are exported ("" = the root: every logger of the app).
_EXPORT_LOGGER = ""
_configured = False
_lock = threading.Lock()


def run_fields(
    *,
    run_id: str | None = None,
    job_name: str | None = None,
    endpoint: str | None = None,
    trigger: str | None = None,
) -> dict[str, str]:
    """The ``extra=`` of a run log line: the fields that are known (strings, no secrets).

    ``endpoint`` is an endpoint URI (scheme, host and path; it carries no query or key).
    """
    values = {"run_id": run_id, "job_name": job_name, "endpoint": endpoint, "trigger": trigger}
    return {k: v for k, v in values.items() if isinstance(v, str) and v}


def log_run(
    logger: logging.Logger,
    level: int,
    message: str,
    *args: object,
    fields: Mapping[str, str],
) -> None:
    """Log ``message % args`` with the run's structured ``fields`` (see :func:`run_fields`)."""
    logger.log(level, message, *args, extra=dict(fields))


def fields_text(record: logging.LogRecord) -> str:
    """`` run_id=... job_name=...`` for the run fields a record carries ('' when none)."""
    parts = [
        f"{name}={getattr(record, name)}"
        for name in RUN_FIELDS
        if isinstance(getattr(record, name, None), str)
    ]
    return " " + " ".join(parts) if parts else ""


def configure_telemetry(environ: Mapping[str, str] | None = None, **options: Any) -> bool:
    """Export logs (and traces, metrics) to Application Insights when the setting is set.

    Idempotent per process: the first call that finds the connection string configures the
    distro; later calls do nothing. ``options`` go to ``configure_azure_monitor`` (e.g.
    ``log_record_processors`` in tests).

    Returns:
        True when the export was configured by this call (False without the connection string,
        or when the worker configures it: ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true``).
    """
    global _configured
    env = os.environ if environ is None else environ
    connection = env.get(CONNECTION_STRING_SETTING, "").strip()
    if not connection or env.get(WORKER_TELEMETRY_SETTING, "").strip().lower() == "true":
        return False
    with _lock:
        if _configured:
            return False
        from azure.monitor.opentelemetry import configure_azure_monitor  # lazy: cold start

        configure_azure_monitor(connection_string=connection, logger_name=_EXPORT_LOGGER, **options)
        _configured = True
    return True
