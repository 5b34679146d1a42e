"""Notification summary, signature and delivery decisions (pure)."""

import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from batch_runs.notify import (
    MAX_ATTEMPTS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Attempt,
    build_summary,
    delivery_decision,
    notification_view,
    notify_instance_id,
    notify_url_of,
    retry_delay,
    run_trigger,
    sign,
    signature_headers,
    summary_body,
    verify,
)

SECRET = "0123456789abcdef-secret"
END = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)
OUTPUT = {
    "job_name": "batchjob-1",
    "status": "Completed",
    "output_uri": "azureml://datastores/workspaceblobstore/paths/o/p.csv",
    "studio_url": "https://ml.azure.com/runs/batchjob-1",
    "polls": 3,
    "started": "2026-11-30T12:00:00+00:00",
    "finished": END.isoformat(),
    "copied_to": "https://dest01.blob.core.windows.net/c1c/p.csv",
}


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"run_id":"r1"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, body) == f"sha256={expected}"
    headers = signature_headers(SECRET, body, 1700000000)
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    assert verify(SECRET, body, headers, now=1700000010)


def test_verify_refuses_tampering_replays_and_wrong_secrets() -> None:
    body = b'{"run_id":"r1"}'
    headers = signature_headers(SECRET, body, 1700000000)
    assert not verify(SECRET, body + b" ", headers, now=1700000000)
    assert not verify(SECRET, body, headers, now=1700000000 + 301)  # too old: a replay
    assert not verify("another-secret-value", body, headers, now=1700000000)
    moved = {**headers, TIMESTAMP_HEADER: "1700000005"}  # the timestamp is signed too
    assert not verify(SECRET, body, moved, now=1700000005)
    assert not verify(SECRET, body, {SIGNATURE_HEADER: headers[SIGNATURE_HEADER]}, now=1)


def test_completed_summary_has_every_field() -> None:
    summary = build_summary(run_id="r1", trigger="http", finished=END, output=OUTPUT)
    assert summary == {
        "version": 1,
        "run_id": "r1",
        "trigger": "http",
        "status": "Completed",
        "job_name": "batchjob-1",
        "job_status": "Completed",
        "started": "2026-11-30T12:00:00+00:00",
        "finished": END.isoformat(),
        "duration_seconds": 30.0,
        "polls": 3,
        "studio_url": "https://ml.azure.com/runs/batchjob-1",
        "output_uri": OUTPUT["output_uri"],
        "copied_to": OUTPUT["copied_to"],
        "reason": None,
    }
    body = summary_body(summary)
    assert json.loads(body) == summary
    assert body == summary_body(dict(reversed(list(summary.items()))))  # stable bytes


def test_failed_summary_reads_the_last_custom_status() -> None:
    status = {
        "phase": "failed",
        "job_name": "batchjob-2",
        "job_status": "Failed",
        "polls": 4,
        "studio_url": "https://ml.azure.com/runs/batchjob-2",
        "started": "2026-11-30T11:59:00+00:00",
    }
    summary = build_summary(
        run_id="r2", trigger="blob", finished=END, status=status, reason="Batch job ended Failed"
    )
    assert summary["status"] == "Failed"
    assert summary["job_status"] == "Failed"
    assert summary["duration_seconds"] == 90.0
    assert summary["reason"] == "Batch job ended Failed"
    assert summary["output_uri"] is None
    # A run that failed before its job existed still has a summary.
    early = build_summary(run_id="r3", trigger="x", finished=END, status=None, reason="bad")
    assert early["job_name"] is None
    assert early["duration_seconds"] is None


@pytest.mark.parametrize(
    ("code", "attempts", "decision"),
    [
        (200, 1, "delivered"),
        (204, 5, "delivered"),
        (500, 1, "retry"),
        (503, 4, "retry"),
        (503, MAX_ATTEMPTS, "failed"),
        (429, 2, "retry"),
        (408, 2, "retry"),
        (None, 1, "retry"),
        (None, MAX_ATTEMPTS, "failed"),
        (400, 1, "failed"),
        (404, 1, "failed"),
        (301, 1, "failed"),
    ],
)
def test_delivery_decisions(code: int | None, attempts: int, decision: str) -> None:
    assert delivery_decision(Attempt(code), attempts) == decision


def test_retry_delay_is_exponential_and_capped() -> None:
    assert [retry_delay(n) for n in range(1, 5)] == [5, 10, 20, 40]
    assert retry_delay(30) == 300


def test_trigger_and_url_are_found_in_first_and_resumed_inputs() -> None:
    params = {"notify_url": "https://h.example.com/x", "trigger": "http"}
    assert notify_url_of(params) == "https://h.example.com/x"
    assert notify_url_of({"resume": {"run_parameters": params}}) == "https://h.example.com/x"
    assert notify_url_of({"endpoint_input_uri": "x"}) is None
    assert notify_url_of("nonsense") is None
    assert run_trigger(params) == "http"
    assert run_trigger({"resume": {"run_parameters": params}}) == "http"
    assert run_trigger({"resume": {"trigger": "blob"}}) == "blob"
    assert run_trigger({}) == "sub-orchestration"


def test_notification_view_from_the_delivery_instance() -> None:
    delivered = {"status": "delivered", "attempts": 2, "last_error": None}
    assert notification_view("Completed", delivered, delivered) == delivered
    pending = notification_view("Running", {"attempts": 1, "last_error": "HTTP 500"}, None)
    assert pending == {"status": "pending", "attempts": 1, "last_error": "HTTP 500"}
    assert notification_view(None, None, None)["status"] == "pending"
    assert notification_view("Failed", None, "boom")["status"] == "failed"
    assert notify_instance_id("run-abc") == "notify:run-abc"


def test_a_refused_url_is_final_without_a_status_and_round_trips() -> None:
    refused = Attempt(None, "nothing sent: notify_url is refused", final=True)
    assert delivery_decision(refused, 1) == "failed"
    assert Attempt.from_dict(refused.to_dict()) == refused
    assert Attempt.from_dict("garbage") == Attempt(None)


def test_an_existing_delivery_is_kept_for_the_same_ending_and_replaced_for_a_new_run() -> None:
    from batch_runs.notify import existing_delivery

    body = summary_body(build_summary(run_id="r1", trigger="http", finished=END, output=OUTPUT))
    same = {"run_id": "r1", "url": "u", "body": body}
    assert existing_delivery(same, "Completed", body) == "already started"
    assert existing_delivery(json.dumps(same), "Running", body) == "already started"
    later = summary_body(
        build_summary(run_id="r1", trigger="http", finished=END.replace(hour=13), output=OUTPUT)
    )
    assert existing_delivery(same, "Completed", later) == "replace"
    assert existing_delivery(same, "Failed", later) == "replace"
    assert existing_delivery(same, "Running", later) == "previous delivery still running"
    assert existing_delivery(None, "Completed", later) == "replace"
