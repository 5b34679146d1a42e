"""Pure decisions of the run orchestrator (batch_runs.state)."""

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batch_endpoint import BatchJob, JobStatus
from batch_runs import RunRequest
from batch_runs.contracts import ActivityFailure
from batch_runs.state import (
    Phase,
    RunState,
    completed_output,
    custom_status,
    deadline_message,
    deadline_passed,
    failure_message,
    is_done,
    next_check,
    poll_failures_message,
)

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
REQUEST = RunRequest(
    endpoint_uri="https://h.westeurope.inference.ml.azure.com/jobs",
    input_uri="azureml://datastores/ws/paths/in/",
    input_type="UriFolder",
    output_uri="azureml://datastores/ws/paths/o/p.csv",
    poll_interval=120,
    timeout=600,
)


def _job(status="Running", **kw):
    base: dict[str, Any] = dict(
        name="bs-1",
        id="/subscriptions/s/resourceGroups/r/providers/"
        "Microsoft.MachineLearningServices/workspaces/w/jobs/bs-1",
        status=JobStatus(status),
        studio_url="https://ml.azure.com/runs/bs-1",
        output_uri=None,
        input_uri=None,
        error_message=None,
        created_at=None,
    )
    base.update(kw)
    return BatchJob(**base)


def _state(**kw):
    return RunState.begin(request=REQUEST, job=_job(**kw), started=T0)


def test_begin_derives_deadline_and_interval_from_parameters():
    state = _state()
    assert state.deadline == T0 + timedelta(seconds=600)
    assert state.poll_interval == 120
    assert state.polls == 0


def test_state_round_trips_through_a_dict():
    state = _state().with_job(_job("Queued")).with_cancel_requested()
    assert RunState.from_dict(state.to_dict()) == state


def test_next_check_never_passes_the_deadline():
    state = _state()
    assert next_check(state, T0) == T0 + timedelta(seconds=120)
    assert next_check(state, T0 + timedelta(seconds=550)) == state.deadline
    assert not deadline_passed(state, T0 + timedelta(seconds=599))
    assert deadline_passed(state, T0 + timedelta(seconds=600))


@pytest.mark.parametrize(
    ("status", "done"),
    [
        ("Completed", True),
        ("Failed", True),
        ("Canceled", True),
        ("Running", False),
        ("NotResponding", False),
        ("Paused", False),
        ("Unknown", False),
        ("CancelRequested", False),
    ],
)
def test_only_completed_failed_canceled_end_the_loop(status, done):
    assert is_done(_state(status=status)) is done


def test_poll_failures_count_and_reset_on_success():
    state = _state().with_poll_failure("timeout").with_poll_failure("timeout again")
    assert (state.polls, state.poll_failures, state.last_poll_error) == (2, 2, "timeout again")
    state = state.with_job(_job("Running"))
    assert (state.polls, state.poll_failures, state.last_poll_error) == (3, 0, None)


def test_custom_status_is_small_and_carries_the_job():
    state = _state()
    status = custom_status(state, Phase.WAITING, next_check_at=T0)
    assert status == {
        "phase": "waiting",
        "job_name": "bs-1",
        "job_status": "Running",
        "polls": 0,
        "studio_url": "https://ml.azure.com/runs/bs-1",
        "deadline": state.deadline.isoformat(),
        "started": state.started.isoformat(),
        "next_check": T0.isoformat(),
    }
    assert custom_status(None, Phase.SUBMITTING) == {"phase": "submitting"}


def test_completed_output_has_the_documented_keys():
    out = completed_output(_state(status="Completed"), T0 + timedelta(minutes=5))
    assert out == {
        "job_name": "bs-1",
        "status": "Completed",
        "output_uri": "azureml://datastores/ws/paths/o/p.csv",
        "studio_url": "https://ml.azure.com/runs/bs-1",
        "polls": 0,
        "started": T0.isoformat(),
        "finished": (T0 + timedelta(minutes=5)).isoformat(),
        "job_ended_after": T0.isoformat(),
    }


def test_failure_messages_name_job_status_and_studio_link():
    failed = failure_message(_state(status="Failed", error_message="the path already exists"))
    assert failed == (
        "Batch job bs-1 ended Failed: the path already exists. "
        "Studio: https://ml.azure.com/runs/bs-1"
    )
    canceled = failure_message(_state(status="Canceled").with_cancel_requested())
    assert "ended Canceled: it was canceled on request" in canceled
    timeout = deadline_message(_state(status="Queued"))
    assert "bs-1" in timeout
    assert "Queued" in timeout
    assert "ml.azure.com/runs/bs-1" in timeout
    gave_up = poll_failures_message(_state().with_poll_failure("HTTP 503"))
    assert "bs-1" in gave_up
    assert "HTTP 503" in gave_up


def test_activity_error_message_lists_field_details():
    details = [{"field": "poll_interval", "message": "too small"}]
    outcome = {"ok": False, "error": {"message": "Invalid run request", "details": details}}
    assert ActivityFailure.from_dict(outcome).describe("Submitting") == (
        "Submitting failed: Invalid run request (poll_interval: too small)"
    )


def test_poll_delay_without_backoff_is_the_fixed_adf_interval():
    from batch_runs.policy import poll_delay

    assert [poll_delay(120, polls=n) for n in range(5)] == [120] * 5


def test_poll_delay_grows_caps_and_jitters_deterministically():
    from batch_runs.policy import MAX_TIMER_SECONDS, poll_delay

    delays = [
        poll_delay(60, polls=n, backoff=2.0, max_interval=900, seed="run-1") for n in range(8)
    ]

    assert delays == [
        poll_delay(60, polls=n, backoff=2.0, max_interval=900, seed="run-1") for n in range(8)
    ]  # replay computes the same waits
    assert delays[0] == 60
    assert all(b >= a * 0.9 for a, b in itertools.pairwise(delays))
    assert max(delays) <= 900
    assert delays[-1] >= 810  # at the cap, less at most 10 % jitter
    assert poll_delay(60, polls=200, backoff=10.0, seed="x") <= MAX_TIMER_SECONDS
