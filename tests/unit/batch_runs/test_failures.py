"""Structured run failures: built in one place, read back by the run view and by parents."""

from datetime import UTC, datetime

import pytest

from batch_endpoint import BatchJob
from batch_runs import load_settings
from batch_runs.failures import read_run_failure, readable_error
from batch_runs.request import parse_run_request
from batch_runs.starts import run_view
from batch_runs.state import FAILURE_REASONS, RunFailed, RunState, run_failed

EP = "https://ep.westeurope.inference.ml.azure.com/jobs"
NOW = datetime(2026, 11, 30, tzinfo=UTC)


def _state(status: str, error: str | None = None) -> RunState:
    request = parse_run_request(
        {"endpoint_input_uri": "azureml://datastores/ws/paths/in/"},
        load_settings({"BATCH_ENDPOINT_URI": EP}),
        run_id="run-1",
        now=NOW,
    )
    job = BatchJob.from_dict(
        {
            "name": "bs-1",
            "status": status,
            "studio_url": "https://ml.azure.com/runs/bs-1",
            "error_message": error,
        }
    )
    return RunState.begin(request=request, job=job, started=NOW)


def test_a_failure_is_json_with_the_job_status_reason_and_studio_link():
    exc = run_failed("job_ended", _state("Failed", "No objects to concatenate"))

    details = read_run_failure(str(exc))
    assert details == exc.details
    assert details is not None
    assert details["reason"] == "job_ended"
    assert details["job_name"] == "bs-1"
    assert details["job_status"] == "Failed"
    assert details["studio_url"] == "https://ml.azure.com/runs/bs-1"
    assert details["job_error"] == "No objects to concatenate"
    assert details["error"] == exc.message
    assert exc.message.startswith("Batch job bs-1 ended Failed: No objects to concatenate.")


@pytest.mark.parametrize(
    "reason", ["job_ended", "deadline", "watchdog", "cancel_unconfirmed", "poll_failures"]
)
def test_every_reason_with_a_state_builds_its_message_in_one_place(reason):
    exc = run_failed(reason, _state("Running"))
    assert isinstance(exc, RunFailed)
    assert exc.message
    assert "bs-1" in exc.message
    assert reason in FAILURE_REASONS


def test_reasons_an_activity_explains_need_a_message_and_unknown_reasons_are_refused():
    assert run_failed("submit_failed", message="Submitting failed: x").details == {
        "error": "Submitting failed: x",
        "reason": "submit_failed",
        "job_name": None,
        "job_status": None,
        "studio_url": None,
    }
    with pytest.raises(ValueError, match="needs a state or a message"):
        run_failed("submit_failed")
    with pytest.raises(ValueError, match="unknown failure reason"):
        run_failed("oops", message="x")


def test_a_parent_finds_the_json_in_the_sdk_exception_text():
    exc = run_failed("deadline", _state("Canceled"))
    # What the parent's call_sub_orchestrator raises: Exception(f"{Reason} \n {Details}").
    text = f"Orchestrator function 'batch_endpoint_run' failed: {exc} \n "
    assert read_run_failure(Exception(text)) == exc.details
    assert read_run_failure("Batch job x ended Failed: {not json}") is None
    assert read_run_failure(None) is None


def test_the_run_view_shows_the_readable_error_and_the_structured_failure():
    exc = run_failed("job_ended", _state("Failed"))
    output = f"Orchestrator function 'batch_endpoint_run' failed: {exc}"
    view = run_view(
        instance_id="run-1",
        name="batch_endpoint_run",
        runtime_status="Failed",
        custom_status=None,
        output=output,
        created_time=NOW,
        last_updated_time=NOW,
    )
    assert view["error"] == exc.message
    assert view["failure"] == exc.details
    assert readable_error("plain old text") == ("plain old text", None)
