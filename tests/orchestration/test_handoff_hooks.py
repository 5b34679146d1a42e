"""The run's ending hooks on devhost's engine (real SDK, virtual time): the notification start
happens once on every ending and never changes the outcome; a failed copy fails the run."""

import json
from collections.abc import Callable
from typing import Any

import pytest

from activities.handoff import COPY_ACTIVITY, START_NOTIFY_ACTIVITY
from batch_runs import get_settings
from tests.orchestration import conftest

INPUT = "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/"
NOTIFY_URL = "https://hooks.example.com/batch"
COPY_TO = "https://dest01.blob.core.windows.net/handoff/p.csv"


@pytest.fixture
def handoff_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    def set_env() -> None:
        monkeypatch.setenv("NOTIFY_ALLOWED_HOSTS", "hooks.example.com")
        monkeypatch.setenv("NOTIFY_SIGNING_SECRET", "orchestration-test-secret-123")
        monkeypatch.setenv("COPY_ALLOWED_HOSTS", "*.blob.core.windows.net")
        monkeypatch.setenv(
            "OUTPUT_DATASTORE_URLS", "workspaceblobstore=https://ws01.blob.core.windows.net/aml"
        )
        get_settings.cache_clear()

    return set_env


def _params(**extra: Any) -> dict[str, Any]:
    return {"endpoint_input_uri": INPUT, "poll_interval": 60, **extra}


def _recorder(monkeypatch: pytest.MonkeyPatch, name: str, answer: Any) -> list[dict]:
    calls: list[dict] = []

    def activity(payload: dict) -> Any:
        calls.append(payload)
        return answer

    monkeypatch.setitem(conftest.ACTIVITIES, name, activity)
    return calls


def test_a_failing_notification_start_never_changes_a_completed_run(make_harness, handoff_env):
    # The engine has no start_run_notification activity: every attempt fails.
    h = make_harness(["Running", "Completed"])
    handoff_env()
    status = h.run(_params(notify_url=NOTIFY_URL))
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["status"] == "Completed"
    assert "copied_to" not in status["output"]


def test_a_failing_notification_start_never_changes_a_failed_run(make_harness, handoff_env):
    h = make_harness(["Running", "Failed"], error_message="UserError: bad rows")
    handoff_env()
    status = h.run(_params(notify_url=NOTIFY_URL))
    assert status["runtimeStatus"] == "Failed"
    assert "ended Failed: UserError: bad rows" in status["output"]
    assert START_NOTIFY_ACTIVITY not in status["output"]


def test_every_ending_starts_the_notification_once_with_its_summary(
    make_harness, handoff_env, monkeypatch
):
    calls = _recorder(monkeypatch, START_NOTIFY_ACTIVITY, {"started": True})
    h = make_harness(["Completed"])
    handoff_env()
    done = h.run(_params(notify_url=NOTIFY_URL), instance_id="run-ok")
    h.fake.script[:] = ["Failed"]
    h.fake.error_message = "UserError: nope"
    failed = h.run(_params(notify_url=NOTIFY_URL), instance_id="run-bad")
    quiet = h.run(_params(), instance_id="run-quiet")  # no notify_url: no notification

    assert done["runtimeStatus"] == "Completed"
    assert failed["runtimeStatus"] == "Failed"
    assert quiet["runtimeStatus"] == "Failed"
    assert [c["run_id"] for c in calls] == ["run-ok", "run-bad"]
    ok, bad = (c["summary"] for c in calls)
    assert ok["status"] == "Completed"
    assert ok["job_name"] == done["output"]["job_name"]
    assert ok["output_uri"] == done["output"]["output_uri"]
    assert ok["trigger"] == "sub-orchestration"
    assert bad["status"] == "Failed"
    assert bad["reason"].startswith("Batch job ")
    # The summary carries the readable message; the run's failure is its JSON document.
    assert json.loads(failed["output"].split("failed: ", 1)[1])["error"] == bad["reason"]
    assert bad["job_status"] == "Failed"
    assert all(c["notify_url"] == NOTIFY_URL for c in calls)


def test_a_failed_copy_fails_the_run_naming_it_and_the_failure_is_notified(
    make_harness, handoff_env, monkeypatch
):
    copies = _recorder(
        monkeypatch, COPY_ACTIVITY, {"ok": False, "error": "403 AuthorizationPermissionMismatch"}
    )
    calls = _recorder(monkeypatch, START_NOTIFY_ACTIVITY, {"started": True})
    h = make_harness(["Completed"])
    handoff_env()
    status = h.run(_params(notify_url=NOTIFY_URL, copy_output_to=COPY_TO))

    assert status["runtimeStatus"] == "Failed"
    message = status["output"]
    assert "completed, but copying its output" in message
    assert COPY_TO in message
    assert "403 AuthorizationPermissionMismatch" in message
    assert status["customStatus"]["phase"] == "failed"
    assert len(copies) == 1
    assert copies[0]["copy_output_to"] == COPY_TO
    [call] = calls
    assert call["summary"]["status"] == "Failed"
    failure = json.loads(message.split("failed: ", 1)[1])
    assert failure["reason"] == "copy_failed"
    assert failure["error"] == call["summary"]["reason"]


def test_a_successful_copy_lists_both_uris(make_harness, handoff_env, monkeypatch):
    _recorder(monkeypatch, COPY_ACTIVITY, {"ok": True, "copied_to": COPY_TO, "size": 10})
    h = make_harness(["Completed"])
    handoff_env()
    status = h.run(_params(copy_output_to=COPY_TO))
    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["copied_to"] == COPY_TO
    assert status["output"]["output_uri"].startswith("azureml://")
