"""The run-ending queue message (``NOTIFY_QUEUE``) on devhost's engine (real SDK, real plan
activity reading the settings): once per ending, with or without ``notify_url``; nothing when
the setting is unset; a failing enqueue never changes the run's outcome."""

from typing import Any

import pytest

from activities.handoff import START_NOTIFY_ACTIVITY
from activities.notify_queue import ENQUEUE_ACTIVITY
from batch_runs import get_settings
from tests.orchestration import conftest

INPUT = "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/"


def _params(**extra: Any) -> dict[str, Any]:
    return {"endpoint_input_uri": INPUT, "poll_interval": 60, **extra}


def _recorder(monkeypatch: pytest.MonkeyPatch, name: str, answer: Any) -> list[dict]:
    calls: list[dict] = []

    def activity(payload: dict) -> Any:
        calls.append(payload)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setitem(conftest.ACTIVITIES, name, activity)
    return calls


def _queue_on(monkeypatch: pytest.MonkeyPatch, name: str | None = "batch-run-endings") -> None:
    if name is None:
        monkeypatch.delenv("NOTIFY_QUEUE", raising=False)
    else:
        monkeypatch.setenv("NOTIFY_QUEUE", name)
    get_settings.cache_clear()


def test_every_ending_queues_its_summary_once(make_harness, monkeypatch) -> None:
    queued = _recorder(monkeypatch, ENQUEUE_ACTIVITY, {"queued": True})
    notified = _recorder(monkeypatch, START_NOTIFY_ACTIVITY, {"started": True})
    h = make_harness(["Running", "Completed"])
    _queue_on(monkeypatch)
    done = h.run(_params(), instance_id="q-ok")
    h.fake.script[:] = ["Failed"]
    h.fake.error_message = "UserError: bad rows"
    failed = h.run(_params(), instance_id="q-bad")

    assert done["runtimeStatus"] == "Completed"
    assert failed["runtimeStatus"] == "Failed"
    assert [c["summary"]["run_id"] for c in queued] == ["q-ok", "q-bad"]
    ok, bad = (c["summary"] for c in queued)
    assert ok["status"] == "Completed"
    assert ok["job_name"] == done["output"]["job_name"]
    assert ok["output_uri"] == done["output"]["output_uri"]
    assert bad["status"] == "Failed"
    assert bad["reason"].startswith("Batch job ")
    assert notified == []  # no notify_url: the queue message does not need one
    assert all(set(c) == {"summary"} for c in queued)  # no URL, no secret, no signature


def test_nothing_is_queued_when_notify_queue_is_unset(make_harness, monkeypatch) -> None:
    queued = _recorder(monkeypatch, ENQUEUE_ACTIVITY, {"queued": True})
    h = make_harness(["Completed"])
    _queue_on(monkeypatch, None)
    status = h.run(_params())
    assert status["runtimeStatus"] == "Completed"
    assert queued == []


def test_a_failing_enqueue_never_changes_the_outcome(make_harness, monkeypatch) -> None:
    queued = _recorder(monkeypatch, ENQUEUE_ACTIVITY, RuntimeError("queue service down"))
    h = make_harness(["Completed"])
    _queue_on(monkeypatch)
    status = h.run(_params())
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["status"] == "Completed"
    assert len(queued) == 3  # the retry policy's 3 attempts, then the ending goes on


def test_a_run_that_continues_as_new_queues_only_at_its_end(make_harness, monkeypatch) -> None:
    from batch_runs import state

    monkeypatch.setattr(state, "POLLS_PER_EXECUTION", 2)
    queued = _recorder(monkeypatch, ENQUEUE_ACTIVITY, {"queued": True})
    h = make_harness(["Running", "Running", "Running", "Running", "Completed"])
    _queue_on(monkeypatch)
    status = h.run(_params(), instance_id="q-long")
    assert status["runtimeStatus"] == "Completed"
    assert [c["summary"]["run_id"] for c in queued] == ["q-long"]
