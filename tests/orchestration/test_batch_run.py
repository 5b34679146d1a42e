"""``batch_endpoint_run`` through the real SDK replay on devhost's engine, in virtual time."""

import threading
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df
import pytest

from batch_endpoint import (
    AuthError,
    ClientError,
    NotFoundError,
    RetryableHttpError,
    TransportError,
)
from batch_runs import state
from batch_runs.failures import read_run_failure
from batch_runs.state import POLLS_PER_EXECUTION
from tests.orchestration.conftest import T0, handle

INPUT = "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/"


def _params(**overrides):
    return {
        "endpoint_input_uri": INPUT,
        "endpoint_input_type": "UriFolder",
        "poll_interval": 60,
        **overrides,
    }


def test_happy_path_completes_with_the_documented_output(make_harness):
    h = make_harness(["Queued", "Running", "Running", "Completed"])
    status = h.run(_params())

    assert status["runtimeStatus"] == "Completed"
    out = status["output"]
    assert set(out) == {
        "job_name",
        "status",
        "output_uri",
        "studio_url",
        "polls",
        "started",
        "finished",
        "job_ended_after",
    }
    assert out["status"] == "Completed"
    assert out["polls"] == 4
    assert out["job_name"].startswith("bs-")
    assert out["studio_url"] == f"https://ml.azure.com/runs/{out['job_name']}"
    assert out["started"] == T0.isoformat()
    elapsed = datetime.fromisoformat(out["finished"]) - datetime.fromisoformat(out["started"])
    assert timedelta(seconds=240) <= elapsed < timedelta(seconds=300)  # 4 waits of 60 s
    ended_after = datetime.fromisoformat(out["job_ended_after"])  # the third check: Running
    assert ended_after - datetime.fromisoformat(out["started"]) == elapsed - timedelta(seconds=60)
    assert status["customStatus"]["phase"] == "completed"
    assert len(h.fake.invokes) == 1
    invocation, job_name = h.fake.invokes[0]
    assert job_name == out["job_name"]
    assert (invocation.input_uri, invocation.input_type) == (INPUT, "UriFolder")


def test_failed_job_fails_the_run_naming_job_status_and_studio_link(make_harness):
    h = make_harness(["Running", "Failed"], error_message="UserError: the path already exists")
    status = h.run(_params())

    assert status["runtimeStatus"] == "Failed"
    message = status["output"]
    assert "Batch job bs-" in message
    assert "ended Failed: UserError: the path already exists" in message
    assert "Studio: https://ml.azure.com/runs/bs-" in message
    assert status["customStatus"]["phase"] == "failed"


def test_canceled_job_ends_the_run_instead_of_looping(make_harness):
    h = make_harness(["Canceled"])
    status = h.run(_params())
    assert status["runtimeStatus"] == "Failed"
    assert "ended Canceled: it was canceled." in status["output"]
    assert h.fake.gets == 1


def test_not_responding_paused_unknown_keep_polling_until_completed(make_harness):
    h = make_harness(["NotResponding", "NotResponding", "Paused", "SomethingNew", "Completed"])
    status = h.run(_params())
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["polls"] == 5


def test_deadline_cancels_the_job_and_fails_the_run(make_harness):
    h = make_harness(["Queued"])
    status = h.run(_params(poll_interval=120, timeout=600))

    assert status["runtimeStatus"] == "Failed"
    assert "did not finish before the run's deadline" in status["output"]
    # Verified cancel: the run polls on after the cancel and ends with what the job did.
    assert "it was cancelled and ended Canceled after 6 polls" in status["output"]
    assert h.fake.cancels == [status["customStatus"]["job_name"]]
    # checks at 120, 240, 360, 480, 600 s; the cancel reads the job it cancels; confirmation
    assert h.fake.gets == 7


def test_refused_cancel_fails_the_run_at_once_naming_the_refusal(make_harness):
    h = make_harness(
        ["Running"],
        cancel_error=AuthError(403, "AuthorizationFailed", "no jobs/cancel/action"),
    )
    status = h.run(_params(poll_interval=120, timeout=600))

    assert status["runtimeStatus"] == "Failed"
    assert "was refused" in status["output"]
    assert "AuthorizationFailed" in status["output"]
    assert "may still be running" in status["output"]
    # 5 checks and the cancel's read of the job; no poll after the refusal: the run ends
    # within one interval
    assert h.fake.gets == 6


def test_cancel_that_is_not_confirmed_within_the_grace_gives_up_saying_so(make_harness):
    h = make_harness(["Running"], cancel_takes_effect=False)
    status = h.run(_params(poll_interval=120, timeout=600))

    assert status["runtimeStatus"] == "Failed"
    assert "did not reach a final status within 900s" in status["output"]
    assert "it may still be running" in status["output"]


def test_job_that_completes_while_its_cancel_is_on_the_way_completes_the_run(make_harness):
    h = make_harness(["Running"] * 5 + ["Completed"], cancel_takes_effect=False)
    status = h.run(_params(poll_interval=120, timeout=600))

    assert status["runtimeStatus"] == "Completed"
    assert h.fake.cancels  # the deadline did send the cancel


def test_cancel_of_a_job_that_already_ended_is_not_an_error(make_harness):
    h = make_harness(
        ["Running"] * 5 + ["Completed"],
        cancel_error=ClientError(400, "UserError", "job is in a terminal state"),
        cancel_ends_job=True,
    )
    status = h.run(_params(poll_interval=120, timeout=600))

    assert status["runtimeStatus"] == "Completed"


def test_failed_job_without_error_text_points_to_the_logs_in_studio(make_harness):
    h = make_harness(["Running", "Failed"])  # no error_message: as the documented contract
    status = h.run(_params())

    assert status["runtimeStatus"] == "Failed"
    assert "the service reported no error detail" in status["output"]
    assert "user_logs" in status["output"]
    assert "Studio: https://ml.azure.com/runs/" in status["output"]


def test_transient_status_errors_are_retried_by_the_activity(make_harness):
    h = make_harness(
        [
            TransportError("connection reset"),
            RetryableHttpError(503, "ServiceUnavailable", "busy", retry_after=1.0),
            "Completed",
        ]
    )
    status = h.run(_params())
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["polls"] == 1
    assert h.fake.gets == 3


def test_status_checks_that_keep_failing_end_the_run_with_the_last_error(make_harness):
    h = make_harness([TransportError("connection reset by peer")])
    status = h.run(_params())

    assert status["runtimeStatus"] == "Failed"
    assert "Gave up on batch job bs-" in status["output"]
    assert "6 consecutive failed status checks" in status["output"]
    assert h.fake.gets == 6 * 4  # six polls, each with four activity attempts


def test_permanent_status_error_fails_at_once(make_harness):
    h = make_harness([NotFoundError(404, "UserError", "Job not found")])
    status = h.run(_params())
    assert status["runtimeStatus"] == "Failed"
    assert "Checking batch job bs-" in status["output"]
    assert "Job not found" in status["output"]
    assert h.fake.gets == 1


def test_invalid_parameters_from_a_parent_fail_before_anything_is_submitted(make_harness):
    h = make_harness(["Completed"])
    status = h.run({"endpoint_input_uri": "", "poll_interval": 0})
    assert status["runtimeStatus"] == "Failed"
    failure = read_run_failure(status["output"])
    assert failure is not None
    assert failure["reason"] == "submit_failed"
    assert failure["job_name"] is None  # no job was submitted
    assert failure["error"].startswith("Submitting the batch job failed")
    assert "endpoint_input_uri" in failure["error"]
    assert "poll_interval" in failure["error"]
    assert h.fake.invokes == []


def test_transient_invoke_failure_is_retried_and_submits_once(make_harness):
    h = make_harness(["Completed"], invoke_errors=[RetryableHttpError(503, None, "busy")])
    status = h.run(_params())
    assert status["runtimeStatus"] == "Completed"
    assert len(h.fake.invokes) == 1


def test_cancel_event_cancels_the_job_and_ends_the_run(make_harness):
    h = make_harness(["Running"])
    iid = h.engine.start_new("batch_endpoint_run", input=_params(timeout=7 * 86400))

    def wait_polled() -> bool:
        st = h.engine.get_status(iid) or {}
        return bool((st.get("customStatus") or {}).get("polls", 0) >= 2)

    from tests.support import wait_until

    wait_until(wait_polled, timeout=30, what="two polls")
    h.engine.raise_event(iid, "cancel", {"reason": "test"})
    status = h.engine.wait_for_completion(iid, timeout=60)

    assert status["runtimeStatus"] == "Failed"
    assert "ended Canceled: it was canceled on request" in status["output"]
    assert len(h.fake.cancels) == 1


def _cancel_during_status_check(make_harness, check: int) -> tuple[dict, Any]:
    """Hold the ``check``-th status check, raise ``cancel`` meanwhile, then let it finish."""
    in_poll, release = threading.Event(), threading.Event()

    def on_get(count: int) -> None:
        if count == check:
            in_poll.set()
            release.wait(10)

    h = make_harness(["Running"], on_get=on_get)
    iid = h.engine.start_new("batch_endpoint_run", input=_params(timeout=7 * 86400))
    assert in_poll.wait(30)
    h.engine.raise_event(iid, "cancel", {})
    release.set()
    return h.engine.wait_for_completion(iid, timeout=60), h


def test_cancel_raised_while_a_status_check_runs_is_not_lost(make_harness):
    status, h = _cancel_during_status_check(make_harness, 2)

    assert status["runtimeStatus"] == "Failed"
    assert "canceled on request" in status["output"]
    assert len(h.fake.cancels) == 1


def test_cancel_raised_during_the_last_poll_of_an_execution_survives_continue_as_new(
    make_harness,
):
    """The last poll before ``continue_as_new`` is the ``POLLS_PER_EXECUTION``-th. A cancel
    raised while it runs completes this execution's waiter; ``continue_as_new`` would drop it
    (DTFx starts the next execution with a fresh event list), so the run must act on it first."""
    status, h = _cancel_during_status_check(make_harness, POLLS_PER_EXECUTION)

    assert status["runtimeStatus"] == "Failed"
    assert "canceled on request" in status["output"]
    assert len(h.fake.cancels) == 1


@pytest.mark.parametrize("check", [1, 2, 3])
def test_with_one_poll_per_execution_a_cancel_raised_during_any_poll_is_acted_on(
    make_harness, monkeypatch: pytest.MonkeyPatch, check: int
):
    """At one poll per execution every poll is the last one before ``continue_as_new``."""
    monkeypatch.setattr(state, "POLLS_PER_EXECUTION", 1)
    status, h = _cancel_during_status_check(make_harness, check)

    assert status["runtimeStatus"] == "Failed"
    assert "canceled on request" in status["output"]
    assert len(h.fake.cancels) == 1
    # the lookup before the submit, `check` polls, then one that reads the cancelled job
    assert h.fake.gets == check + 2


def test_long_runs_continue_as_new_and_keep_their_state(make_harness):
    # 300 polls = 300 / POLLS_PER_EXECUTION executions, in virtual time.
    h = make_harness(["Running"] * 299 + ["Completed"])
    status = h.run(_params(poll_interval=10), timeout=120)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["polls"] == 300
    assert len(h.fake.invokes) == 1  # continue_as_new carried the job, nothing resubmitted
    elapsed = datetime.fromisoformat(status["output"]["finished"]) - datetime.fromisoformat(
        status["output"]["started"]
    )
    assert elapsed >= timedelta(seconds=3_000)


# --- reuse as a sub-orchestration (ADF "Execute Pipeline") ----------------------------------

parent_bp = df.Blueprint()


@parent_bp.orchestration_trigger(context_name="context")
def nightly_parent(context: df.DurableOrchestrationContext):
    params = context.get_input()
    try:
        result = yield context.call_sub_orchestrator(
            "batch_endpoint_run", params, f"{context.instance_id}:score"
        )
    except Exception as exc:  # 1.x surfaces a failed child as a plain Exception
        return {"failed": str(exc)}
    return {"scored": result["output_uri"], "job": result["job_name"]}


def test_parent_orchestrator_reuses_the_run_as_a_sub_orchestration(make_harness):
    h = make_harness(
        ["Running", "Completed"], extra_orchestrators={"nightly_parent": handle(nightly_parent)}
    )
    status = h.run(_params(), name="nightly_parent", instance_id="nightly-1")

    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["scored"].startswith("azureml://datastores/")
    child = h.engine.get_status("nightly-1:score")
    assert child["runtimeStatus"] == "Completed"
    assert child["output"]["job_name"] == status["output"]["job"]


def test_parent_sees_the_child_failure_message(make_harness):
    h = make_harness(
        ["Failed"],
        error_message="No objects to concatenate",
        extra_orchestrators={"nightly_parent": handle(nightly_parent)},
    )
    status = h.run(_params(), name="nightly_parent")
    assert status["runtimeStatus"] == "Completed"
    assert "ended Failed: No objects to concatenate" in status["output"]["failed"]


@parent_bp.orchestration_trigger(context_name="context")
def structured_parent(context: df.DurableOrchestrationContext):
    try:
        yield context.call_sub_orchestrator("batch_endpoint_run", context.get_input())
    except Exception as exc:
        return {"failure": read_run_failure(exc), "text": str(exc)}
    return {"failure": None}


def test_parent_reads_the_child_failure_as_json(make_harness):
    """The parent gets ``Exception(f"{Reason} \\n {Details}")`` (azure-functions-durable
    ``models/TaskOrchestrationExecutor.py``, failed sub-orchestration); the Reason carries the
    child's JSON failure after ``Orchestrator function '...' failed:``."""
    h = make_harness(
        ["Running", "Failed"],
        error_message="No objects to concatenate",
        extra_orchestrators={"structured_parent": handle(structured_parent)},
    )
    status = h.run(_params(), name="structured_parent")

    assert status["runtimeStatus"] == "Completed"
    failure = status["output"]["failure"]
    assert "Orchestrator function 'batch_endpoint_run' failed:" in status["output"]["text"]
    assert failure["reason"] == "job_ended"
    assert failure["job_status"] == "Failed"
    assert failure["job_name"].startswith("bs-")
    assert failure["job_error"] == "No objects to concatenate"
    assert failure["studio_url"].startswith("https://ml.azure.com/runs/")
    assert failure["error"].startswith(f"Batch job {failure['job_name']} ended Failed")


def test_queued_watchdog_cancels_a_stuck_job_and_names_itself(make_harness):
    h = make_harness(["Queued"])
    status = h.run(_params(poll_interval=120, max_queued_seconds=300))

    assert status["runtimeStatus"] == "Failed"
    message = status["output"]
    assert "stayed Queued for 300s (longer than max_queued_seconds=300)" in message
    assert "it was cancelled and ended Canceled" in message
    assert "Studio: https://ml.azure.com/runs/" in message
    assert len(h.fake.cancels) == 1


def test_not_responding_watchdog_counts_from_when_the_job_entered_that_status(make_harness):
    h = make_harness(["Running", "Running", "NotResponding"])
    status = h.run(_params(poll_interval=60, max_not_responding_seconds=150))

    assert status["runtimeStatus"] == "Failed"
    # NotResponding was first seen at the third check (+180 s); the watchdog fires 150 s later.
    assert "stayed NotResponding for 150s" in status["output"]


def test_no_watchdog_fires_for_a_status_it_does_not_watch(make_harness):
    h = make_harness(["Running"] * 6 + ["Completed"])
    status = h.run(_params(poll_interval=60, max_queued_seconds=60, max_not_responding_seconds=60))

    assert status["runtimeStatus"] == "Completed"
    assert h.fake.cancels == []


def test_poll_backoff_waits_longer_between_checks_up_to_its_cap(make_harness):
    h = make_harness(["Running"] * 4 + ["Completed"])
    status = h.run(_params(poll_interval=60, poll_backoff=2, poll_max_interval=240))

    assert status["runtimeStatus"] == "Completed"
    out = status["output"]
    elapsed = datetime.fromisoformat(out["finished"]) - datetime.fromisoformat(out["started"])
    # Fixed 60 s waits would finish at +300 s; growing waits (60, ~120, ~240, ~240, ~240, each
    # at most 10 % shorter from jitter) finish much later but never past five caps.
    assert timedelta(seconds=700) <= elapsed <= timedelta(seconds=60 + 4 * 240)
