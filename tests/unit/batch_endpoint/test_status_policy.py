"""Job statuses and the pure policy functions (timing, backoff, naming)."""

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from batch_endpoint import FINAL_STATUSES, JobStatus, backoff_delay, is_final, parse_retry_after
from batch_runs import deadline_from, default_output_uri, job_name_for, next_check_time

WIRE_VALUES = [
    "NotStarted",
    "Queued",
    "Preparing",
    "Provisioning",
    "Starting",
    "Running",
    "CancelRequested",
    "Finalizing",
    "Completed",
    "Failed",
    "Canceled",
    "NotResponding",
    "Paused",
    "Unknown",
]


def test_all_fourteen_statuses_with_wire_values() -> None:
    assert [s.value for s in JobStatus] == WIRE_VALUES
    assert JobStatus.NOT_STARTED.value == "NotStarted"
    assert isinstance(JobStatus.CANCEL_REQUESTED, str)
    assert JobStatus("CancelRequested") is JobStatus.CANCEL_REQUESTED
    assert all(member.name.isupper() for member in JobStatus)


@pytest.mark.parametrize("wire", WIRE_VALUES)
def test_parse_every_wire_value_in_any_case(wire: str) -> None:
    expected = JobStatus(wire)

    assert JobStatus.parse(wire) is expected
    assert JobStatus.parse(wire.upper()) is expected
    assert JobStatus.parse(wire.lower()) is expected
    assert JobStatus.parse(f"  {wire} ") is expected


@pytest.mark.parametrize("value", [None, "", "Succeeded", "Done", 3, ["Running"], {"s": 1}])
def test_parse_unknown_values_never_raise(value: object) -> None:
    assert JobStatus.parse(value) is JobStatus.UNKNOWN


def test_parse_accepts_british_cancelled_and_members() -> None:
    assert JobStatus.parse("Cancelled") is JobStatus.CANCELED
    assert JobStatus.parse(JobStatus.RUNNING) is JobStatus.RUNNING


def test_str_of_a_status_is_its_wire_value() -> None:
    assert str(JobStatus.NOT_RESPONDING) == "NotResponding"
    assert f"{JobStatus.COMPLETED}" == "Completed"


@pytest.mark.parametrize("status", list(JobStatus))
def test_only_completed_failed_canceled_are_final(status: JobStatus) -> None:
    expected = status in {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED}

    assert is_final(status) is expected
    assert is_final(status.value.upper()) is expected
    assert (status in FINAL_STATUSES) is expected


def test_next_check_time_is_capped_by_the_deadline() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    assert next_check_time(now, 120, now + timedelta(hours=1)) == now + timedelta(seconds=120)
    assert next_check_time(now, 120, now + timedelta(seconds=30)) == now + timedelta(seconds=30)


def test_deadline_from_adds_the_timeout() -> None:
    started = datetime(2026, 1, 1, tzinfo=UTC)

    assert deadline_from(started, 86400) == datetime(2026, 1, 2, tzinfo=UTC)


def test_backoff_is_full_jitter_exponential_and_capped() -> None:
    assert backoff_delay(1, rng=lambda: 0.5) == 0.5
    assert backoff_delay(3, rng=lambda: 0.5) == 2.0
    assert backoff_delay(4, base=2.0, rng=lambda: 1.0) == 16.0
    assert backoff_delay(10, rng=lambda: 1.0) == 30.0
    assert backoff_delay(10_000, rng=lambda: 1.0) == 30.0
    assert backoff_delay(2, rng=lambda: 0.0) == 0.0


def test_retry_after_wins_and_is_capped() -> None:
    assert backoff_delay(1, retry_after=7.0, rng=lambda: 0.9) == 7.0
    assert backoff_delay(1, retry_after=3600.0, rng=lambda: 0.9) == 60.0
    assert backoff_delay(1, retry_after=100.0, rng=lambda: 0.9, cap_retry_after=90) == 90.0
    assert backoff_delay(1, retry_after=-5.0, rng=lambda: 0.9) == 0.0


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 11, 25, 6, 0, 0, tzinfo=UTC)

    assert parse_retry_after("17") == 17.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("Wed, 25 Nov 2026 06:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 25 Nov 2026 05:00:00 GMT", now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-3", "inf", "Wed, 99 Foo 2026"])
def test_parse_retry_after_rejects_garbage(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_job_name_is_deterministic_and_azure_valid() -> None:
    name = job_name_for("run-123", "2026-11-25T06:00:00+00:00")

    digest = hashlib.sha256(b"run-123|2026-11-25T06:00:00+00:00").hexdigest()
    assert name == "bs-" + digest[:32]
    assert name == job_name_for("run-123", "2026-11-25T06:00:00+00:00")
    assert name != job_name_for("run-123", "2026-11-25T06:00:01+00:00")
    assert re.fullmatch(r"[a-z][a-z0-9-]{0,254}", name)


def test_default_output_uri_fills_every_placeholder() -> None:
    template = "azureml://datastores/ws/paths/{date}/{timestamp}/{source_name}/{run_id}.csv"
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)

    uri = default_output_uri(template, run_id="abc:1/2", source_name="my file?.csv", now=now)

    assert (
        uri == "azureml://datastores/ws/paths/2026/03/04/20260304T050607Z/my-file-.csv/abc-1-2.csv"
    )


def test_default_output_uri_defaults_and_time_zones() -> None:
    template = "azureml://datastores/ws/paths/{source_name}/{timestamp}/p.csv"
    local = datetime(2026, 3, 4, 7, 0, 0, tzinfo=timezone(timedelta(hours=2)))

    assert default_output_uri(template, run_id="r", source_name=None, now=local) == (
        "azureml://datastores/ws/paths/run/20260304T050000Z/p.csv"
    )
    assert default_output_uri(template, run_id="r", source_name="..", now=local).startswith(
        "azureml://datastores/ws/paths/run/"
    )


def test_default_output_uri_rejects_unknown_placeholders() -> None:
    with pytest.raises(ValueError, match=r"\{job\}"):
        default_output_uri(
            "azureml://datastores/ws/paths/{job}.csv",
            run_id="r",
            source_name=None,
            now=datetime.now(UTC),
        )
