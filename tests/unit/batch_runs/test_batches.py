"""Batches, pure: request parsing, the sliding window, outcomes, counts and the view."""

from datetime import UTC, datetime

import pytest

from batch_runs import InvalidRunRequest, load_settings
from batch_runs import batches as b

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ENDPOINT = "https://heart.westeurope.inference.ml.azure.com/jobs"
DS = "azureml://datastores/workspaceblobstore/paths/"
SETTINGS = load_settings({"BATCH_ENDPOINT_URI": ENDPOINT})


def parse(body: object) -> b.BatchRequest:
    return b.parse_batch_request(body, SETTINGS, batch_id="batch-1", now=NOW)


def fields_of(body: object) -> set[str]:
    with pytest.raises(InvalidRunRequest) as caught:
        parse(body)
    return {d.field for d in caught.value.details}


def test_inputs_with_shared_parameters_and_the_default_cap() -> None:
    request = parse({"inputs": [f"{DS}a.csv", f"{DS}b.csv"], "poll_interval": 30})

    assert request.inputs == (f"{DS}a.csv", f"{DS}b.csv")
    assert request.max_parallel_jobs == b.DEFAULT_MAX_PARALLEL_JOBS == 4
    assert request.parameters == {"poll_interval": 30}
    assert b.BatchRequest.from_dict(request.to_dict()) == request


def test_input_folder_and_a_cap_given_as_text() -> None:
    request = parse({"input_folder": f"{DS}day1/", "max_parallel_jobs": "7"})
    assert request.input_folder == f"{DS}day1/"
    assert request.inputs == ()
    assert request.max_parallel_jobs == 7


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "input_folder"),
        ({"inputs": [f"{DS}a.csv"], "input_folder": f"{DS}x/"}, "inputs"),
        ({"inputs": []}, "inputs"),
        ({"inputs": "a.csv"}, "inputs"),
        ({"inputs": [f"{DS}a.csv"] * 1001}, "inputs"),
        ({"inputs": [f"{DS}a.csv", 3]}, "inputs[1]"),
        ({"inputs": [f"{DS}a.csv", "/etc/passwd"]}, "inputs[1]"),
        ({"inputs": [f"{DS}a.csv", f"{DS}a.csv?sig=x"]}, "inputs[1]"),
        ({"inputs": [f"{DS}folder/"]}, "inputs[0]"),  # UriFile by default: not a folder
        (
            {
                "input_folder": "azureml:/subscriptions/s/resourcegroups/r/providers/"
                "microsoft.machinelearningservices/workspaces/w/data/d/versions/1"
            },
            "input_folder",
        ),
        ({"input_folder": 5}, "input_folder"),
        ({"inputs": [f"{DS}a.csv"], "max_parallel_jobs": 0}, "max_parallel_jobs"),
        ({"inputs": [f"{DS}a.csv"], "max_parallel_jobs": 101}, "max_parallel_jobs"),
        ({"inputs": [f"{DS}a.csv"], "max_parallel_jobs": True}, "max_parallel_jobs"),
        ({"inputs": [f"{DS}a.csv"], "endpoint_input_uri": f"{DS}a.csv"}, "endpoint_input_uri"),
        ({"inputs": [f"{DS}a.csv"], "endpoint_output_uri": f"{DS}o.csv"}, "endpoint_output_uri"),
        ({"inputs": [f"{DS}a.csv"], "trigger": "http"}, "trigger"),
        (
            {"inputs": [f"{DS}a.csv"], "copy_output_to": "https://a.blob.core.windows.net/c/x.csv"},
            "copy_output_to",
        ),
        ({"inputs": [f"{DS}a.csv"], "poll_interval": 1}, "poll_interval"),  # the run rules
        ({"inputs": [f"{DS}a.csv"], "no_such": 1}, "no_such"),
        (
            {"inputs": [f"{DS}a.csv"], "endpoint_uri": "https://evil.example.com/jobs"},
            "endpoint_uri",
        ),
        ([1], "body"),
    ],
)
def test_bad_bodies_name_the_field(body: object, field: str) -> None:
    assert field in fields_of(body)


def test_every_bad_input_is_named_up_to_a_bound() -> None:
    found = fields_of({"inputs": ["bad"] * 50})
    assert found == {f"inputs[{i}]" for i in range(20)}


def test_child_parameters_carry_the_input_the_trigger_and_a_file_type() -> None:
    params = b.child_parameters({"poll_interval": 30}, f"{DS}a.csv")
    assert params == {
        "poll_interval": 30,
        "endpoint_input_type": "UriFile",
        "endpoint_input_uri": f"{DS}a.csv",
        "trigger": "batch",
    }
    folder = b.child_parameters({"endpoint_input_type": "UriFolder"}, f"{DS}d/")
    assert folder["endpoint_input_type"] == "UriFolder"


def test_child_ids_are_deterministic() -> None:
    assert b.child_instance_id("batch-1", 7) == "batch-1:7"
    assert b.instance_id_for_batch_key("run-abc") == "batch-abc"


def test_window_fills_up_to_the_cap_and_stops_when_cancelled_or_draining() -> None:
    fresh = b.BatchProgress()
    assert b.to_start(fresh, total=20, active=0, cap=4, ended_here=0) == range(4)
    later = b.BatchProgress(next_index=4)
    assert b.to_start(later, total=20, active=3, cap=4, ended_here=1) == range(4, 5)
    assert b.to_start(later, total=20, active=4, cap=4, ended_here=0) == range(0)
    assert b.to_start(b.BatchProgress(next_index=19), total=20, active=0, cap=4, ended_here=0) == (
        range(19, 20)
    )
    cancelled = b.BatchProgress(next_index=4, cancel_requested=True)
    assert b.to_start(cancelled, total=20, active=0, cap=4, ended_here=0) == range(0)
    full = b.CHILDREN_PER_EXECUTION
    assert b.to_start(later, total=500, active=0, cap=4, ended_here=full) == range(0)
    assert b.should_continue_as_new(active=0, ended_here=full, next_index=104, total=500)
    assert not b.should_continue_as_new(active=1, ended_here=full, next_index=104, total=500)
    assert not b.should_continue_as_new(active=0, ended_here=full, next_index=500, total=500)


def test_failures_are_failed_unless_a_cancel_made_the_job_end_canceled() -> None:
    canceled = "Batch job x ended Canceled: it was canceled on request."
    assert b.outcome_of_failure(1, "u", Exception(canceled), cancelled=True).state == "cancelled"
    assert b.outcome_of_failure(1, "u", Exception(canceled), cancelled=False).state == "failed"
    failed = b.outcome_of_failure(
        2, "u", Exception("Batch job y ended Failed: boom"), cancelled=True
    )
    assert (failed.state, failed.error) == ("failed", "Batch job y ended Failed: boom")
    assert b.outcome_of_failure(3, "u", Exception(""), cancelled=False).error == "Exception"


def test_a_structured_child_failure_gives_its_readable_error_and_is_kept() -> None:
    doc = (
        '{"error": "Batch job j ended Canceled: it was canceled on request.", '
        '"reason": "job_canceled", "job_name": "j", "job_status": "Canceled", "studio_url": null}'
    )
    raised = Exception(f"Orchestrator function 'batch_endpoint_run' failed: {doc} \n None")
    outcome = b.outcome_of_failure(4, "u", raised, cancelled=True)
    assert outcome.state == "cancelled"
    assert outcome.error == "Batch job j ended Canceled: it was canceled on request."
    assert outcome.failure is not None
    assert outcome.failure["job_name"] == "j"
    assert outcome.to_dict("batch-1")["failure"]["reason"] == "job_canceled"
    assert b.outcome_of_failure(4, "u", raised, cancelled=False).state == "failed"


def test_counts_and_output_keep_every_outcome_in_input_order() -> None:
    outcomes = (
        b.Outcome(index=2, input_uri="c", state="completed", output={"status": "Completed"}),
        b.Outcome(index=0, input_uri="a", state="failed", error="boom"),
    )
    progress = b.BatchProgress(next_index=4, outcomes=outcomes)
    assert b.counts(total=6, outcomes=outcomes, active=2, started=4) == {
        "pending": 2,
        "running": 2,
        "completed": 1,
        "failed": 1,
        "cancelled": 0,
    }
    out = b.batch_output("batch-1", 3, b.BatchProgress(next_index=3, outcomes=outcomes))
    assert [o["index"] for o in out["outcomes"]] == [0, 2]
    assert out["outcomes"][0] == {
        "index": 0,
        "input": "a",
        "id": "batch-1:0",
        "state": "failed",
        "error": "boom",
    }
    assert out["outcomes"][1]["output"] == {"status": "Completed"}
    again = b.BatchProgress.from_dict(progress.to_dict("batch-1"))
    assert again == progress


def test_not_started_inputs_of_a_cancelled_batch_are_cancelled() -> None:
    rest = b.not_started_outcomes(["a", "b", "c"], 1)
    assert [(o.index, o.state) for o in rest] == [(1, "cancelled"), (2, "cancelled")]
    counted = b.counts(total=3, outcomes=rest, active=0, started=3)
    assert (counted["cancelled"], counted["pending"]) == (2, 0)


def test_view_has_the_run_view_shape_and_counts() -> None:
    status = b.batch_status(
        phase="running", total=5, progress=b.BatchProgress(next_index=2), active=2, cap=2
    )
    view = b.batch_view(
        instance_id="batch-1",
        runtime_status="Running",
        custom_status=status,
        output=None,
        created="2026-11-30T12:00:00+00:00",
        last_updated=None,
        children=[],
        children_next=None,
    )
    assert (view["id"], view["runtime_status"]) == ("batch-1", "Running")
    assert view["phase"] == "running"
    assert view["counts"] == {
        "pending": 3,
        "running": 2,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert "output" not in view
    assert "error" not in view
    failed = b.batch_view(
        instance_id="batch-1",
        runtime_status="Failed",
        custom_status=None,
        output="Listing failed",
        created=None,
        last_updated=None,
        children=[],
        children_next=None,
    )
    assert failed["error"] == "Listing failed"
