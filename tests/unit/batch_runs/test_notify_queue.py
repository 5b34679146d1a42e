"""NOTIFY_QUEUE: the setting (Storage queue naming rules), the message, the two activities."""

import json

import pytest

from batch_runs import SettingsError, get_settings, load_settings
from batch_runs.notify_queue import queue_message


@pytest.mark.parametrize("name", ["abc", "batch-run-endings", "a1-b2-c3", "0" * 63, "q-9"])
def test_valid_queue_names(name: str) -> None:
    assert load_settings({"NOTIFY_QUEUE": name}).notify_queue == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("ab", "3-63 characters"),
        ("a" * 64, "3-63 characters"),
        ("Batch-Runs", "lowercase"),
        ("-runs", "starting and ending"),
        ("runs-", "starting and ending"),
        ("run--ends", "single hyphens"),
        ("run_ends", "lowercase letters, digits"),
        ("run.ends", "lowercase letters, digits"),
    ],
)
def test_invalid_queue_names_are_a_settings_error_naming_it(name: str, why: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"NOTIFY_QUEUE": name})
    assert "NOTIFY_QUEUE" in str(info.value)
    assert why in str(info.value)


def test_unset_or_blank_means_off() -> None:
    assert load_settings({}).notify_queue is None
    assert load_settings({"NOTIFY_QUEUE": "  "}).notify_queue is None


def test_the_message_is_the_summary_as_stable_json() -> None:
    summary = {"run_id": "r1", "status": "Completed", "reason": None, "note": "é"}
    text = queue_message(summary)
    assert json.loads(text) == summary
    assert text == queue_message(dict(reversed(list(summary.items()))))
    assert "é" in text


def test_plan_activity_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from activities.notify_queue import plan_run_summary_queue

    plan = plan_run_summary_queue.build().get_user_function()
    monkeypatch.delenv("NOTIFY_QUEUE", raising=False)
    get_settings.cache_clear()
    assert plan(None) == {"enqueue": False}
    monkeypatch.setenv("NOTIFY_QUEUE", "batch-run-endings")
    get_settings.cache_clear()
    assert plan(None) == {"enqueue": True, "queue": "batch-run-endings"}
    get_settings.cache_clear()


def test_enqueue_activity_sets_the_summary_on_its_output() -> None:
    from activities.notify_queue import enqueue_run_summary

    class Out:
        value: str | None = None

        def set(self, val: str) -> None:
            self.value = val

    out = Out()
    summary = {"run_id": "r1", "status": "Failed", "reason": "Batch job x ended Failed"}
    fn = enqueue_run_summary.build().get_user_function()
    assert fn({"summary": summary}, out) == {"queued": True}
    assert out.value is not None
    assert json.loads(out.value) == summary
