"""Structured run logs: the fields on records, and the Azure Monitor export when configured."""

import json
import logging
import subprocess
import sys
import textwrap

import pytest

from batch_runs.telemetry import RUN_FIELDS, configure_telemetry, fields_text, log_run, run_fields


def test_run_log_records_carry_the_structured_fields(caplog):
    logger = logging.getLogger("batch_runs.test")
    fields = run_fields(
        run_id="run-1",
        job_name="bs-1",
        endpoint="https://ep.westeurope.inference.ml.azure.com/jobs",
        trigger="blob",
    )
    with caplog.at_level(logging.INFO, logger="batch_runs.test"):
        log_run(logger, logging.INFO, "run %s: submitted", "run-1", fields=fields)

    (record,) = caplog.records
    assert record.getMessage() == "run run-1: submitted"
    assert {name: getattr(record, name) for name in RUN_FIELDS} == {
        "run_id": "run-1",
        "job_name": "bs-1",
        "endpoint": "https://ep.westeurope.inference.ml.azure.com/jobs",
        "trigger": "blob",
    }
    assert fields_text(record) == (
        " run_id=run-1 job_name=bs-1 "
        "endpoint=https://ep.westeurope.inference.ml.azure.com/jobs trigger=blob"
    )


def test_unknown_fields_are_left_out():
    assert run_fields(run_id="r", job_name=None, endpoint="") == {"run_id": "r"}


def test_without_the_connection_string_nothing_is_configured_or_imported():
    assert configure_telemetry({}) is False
    # The worker configures the distro itself with this setting: the app does not do it twice.
    worker = {"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}
    worker["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] = "true"
    assert configure_telemetry(worker) is False
    code = (
        "import sys; import function_app; "
        "print('azure.monitor.opentelemetry' in sys.modules, 'opentelemetry.sdk' in sys.modules)"
    )
    env = {"PATH": "/usr/bin:/bin", "FUNCTIONS_WORKER_RUNTIME": "python"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.split() == ["False", "False"]


_EXPORT = textwrap.dedent(
    """
    import json, logging
    from opentelemetry._logs import get_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import InMemoryLogExporter, SimpleLogRecordProcessor
    from batch_runs.telemetry import configure_telemetry, log_run, run_fields

    exporter = InMemoryLogExporter()
    env = {"APPLICATIONINSIGHTS_CONNECTION_STRING":
           "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
           "IngestionEndpoint=http://127.0.0.1:9/"}
    first = configure_telemetry(env, log_record_processors=[SimpleLogRecordProcessor(exporter)],
                                disable_offline_storage=True, enable_live_metrics=False)
    second = configure_telemetry(env)
    logging.getLogger().setLevel(logging.INFO)
    log_run(logging.getLogger("batch_runs.operations"), logging.INFO, "run %s: submitted", "r-1",
            fields=run_fields(run_id="r-1", job_name="bs-1", endpoint="https://h/jobs",
                              trigger="http"))
    records = [d.log_record for d in exporter.get_finished_logs()]
    mine = [r for r in records if "submitted" in str(r.body)]
    print(json.dumps({
        "first": first, "second": second,
        "provider": type(get_logger_provider()).__name__,
        "is_sdk": isinstance(get_logger_provider(), LoggerProvider),
        "attributes": dict(mine[0].attributes) if mine else None,
    }, default=str))
    """
)


def test_with_the_connection_string_logs_are_exported_with_the_fields_as_attributes():
    """``configure_azure_monitor`` sets the OpenTelemetry SDK's logger provider and a handler on
    the root logger; a record's ``extra`` fields become log attributes (Application Insights
    ``customDimensions``). Run in a fresh process: the providers are process-global."""
    pytest.importorskip("azure.monitor.opentelemetry")
    out = subprocess.run(
        [sys.executable, "-c", _EXPORT], capture_output=True, text=True, check=True, timeout=120
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])

    assert result["first"] is True
    assert result["second"] is False  # once per process
    assert result["is_sdk"] is True
    attributes = result["attributes"]
    assert attributes is not None
    assert {k: attributes[k] for k in RUN_FIELDS} == {
        "run_id": "r-1",
        "job_name": "bs-1",
        "endpoint": "https://h/jobs",
        "trigger": "http",
    }
