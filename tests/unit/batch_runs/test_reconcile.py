"""Orphaned jobs: which ended runs may still have a running job, and what reconciling does."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from batch_endpoint import AuthError, BatchJob, JobStatus
from batch_runs.reconcile import (
    OrphanCandidate,
    ReconcileFailed,
    Reconciliation,
    candidate_of,
    ended_candidates,
    reconcile_job,
    record_instance_id,
)
from batch_runs.run_control import iter_instances, rerun_parameters
from batch_runs.starts import is_valid_instance_id

EP = "https://ep.westeurope.inference.ml.azure.com/jobs"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _status(run_id: str, runtime: str, job_status: str | None, **extra: Any) -> dict[str, Any]:
    custom = {"phase": "polling", "job_name": f"bs-{run_id}", "job_status": job_status}
    return {
        "instanceId": run_id,
        "name": "batch_endpoint_run",
        "runtimeStatus": runtime,
        "customStatus": custom if job_status else None,
        "input": {"endpoint_uri": EP, "endpoint_input_uri": "azureml://x/"},
        **extra,
    }


@pytest.mark.parametrize(
    ("runtime", "job_status", "expected"),
    [
        ("Terminated", "Running", True),
        ("Failed", "CancelRequested", True),  # a cancel that was never confirmed
        ("Failed", "Queued", True),
        ("Failed", "Failed", False),  # the job ended: nothing runs
        ("Terminated", "Completed", False),
        ("Completed", "Completed", False),
        ("Running", "Running", False),  # active runs cancel through their orchestrator
        ("Terminated", None, False),  # terminated before it had a job
    ],
)
def test_candidates_are_ended_runs_whose_job_was_last_seen_active(runtime, job_status, expected):
    s = _status("r1", runtime, job_status)
    found = candidate_of(
        run_id="r1",
        runtime_status=runtime,
        custom_status=s["customStatus"],
        durable_input=s["input"],
        default_endpoint=None,
    )
    assert (found is not None) is expected
    if found is not None:
        assert found == OrphanCandidate(
            run_id="r1", job_name="bs-r1", endpoint_uri=EP, last_job_status=job_status
        )


def test_a_resumed_run_takes_its_endpoint_from_its_state_and_a_bare_one_from_the_default():
    resumed = {"resume": {"run_parameters": {"endpoint_uri": EP}}}
    custom = {"job_name": "bs-1", "job_status": "Running"}
    a = candidate_of(
        run_id="a",
        runtime_status="Terminated",
        custom_status=custom,
        durable_input=resumed,
        default_endpoint=None,
    )
    b = candidate_of(
        run_id="b",
        runtime_status="Terminated",
        custom_status=custom,
        durable_input={"endpoint_input_uri": "azureml://x/"},
        default_endpoint=EP,
    )
    assert a is not None
    assert a.endpoint_uri == EP
    assert b is not None
    assert b.endpoint_uri == EP


class Pages:
    def __init__(self, statuses: Sequence[Mapping[str, Any]], per_page: int) -> None:
        self.statuses, self.per_page = statuses, per_page
        self.calls: list[str | None] = []

    def list_instances(
        self, params: Mapping[str, str], continuation: str | None
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        self.calls.append(continuation)
        start = int(continuation or 0)
        end = start + self.per_page
        return list(self.statuses[start:end]), (str(end) if end < len(self.statuses) else None)


def test_ended_candidates_reads_every_page_and_keeps_only_batch_runs_with_active_jobs():
    statuses = [_status(f"t{i}", "Terminated", "Running") for i in range(5)]
    statuses += [_status("f", "Failed", "Failed"), {**_status("o", "Terminated", "Running")}]
    statuses[-1]["name"] = "another_orchestrator"
    api = Pages(statuses, per_page=2)

    found = list(ended_candidates(api, orchestrator="batch_endpoint_run", default_endpoint=None))

    assert [c.run_id for c in found] == [f"t{i}" for i in range(5)]
    assert api.calls == [None, "2", "4", "6"]  # four pages, all of them


def test_iter_instances_stops_on_the_end_tokens_and_a_repeated_token():
    class Stuck:
        def list_instances(self, params, continuation):
            return [{"instanceId": "x"}], "same"

    assert len(list(iter_instances(Stuck(), {}))) == 2  # the token did not move: stop
    assert len(list(iter_instances(Pages([{"instanceId": "y"}], 1), {}))) == 1


class Service:
    """A job on its endpoint and the ARM cancel (the seams ``reconcile_job`` is built on)."""

    def __init__(self, status: str, cancel_error: Exception | None = None) -> None:
        self.status = status
        self.cancel_error = cancel_error
        self.cancelled: list[str] = []
        self.endpoints: list[str] = []

    def __call__(self, endpoint: str) -> "Service":
        self.endpoints.append(endpoint)
        return self

    def get_job(self, name: str) -> BatchJob:
        return BatchJob.from_dict({"name": name, "status": self.status})

    def cancel_job(self, job: BatchJob, *, workspace_id: str | None = None) -> None:
        if self.cancel_error is not None:
            raise self.cancel_error
        self.cancelled.append(job.name)


CANDIDATE = OrphanCandidate(run_id="r", job_name="bs-r", endpoint_uri=EP, last_job_status="Running")


def _reconcile(service: Service) -> Reconciliation:
    return reconcile_job(
        CANDIDATE,
        client_factory=service,  # type: ignore[arg-type]
        jobs_client=lambda: service,  # type: ignore[arg-type,return-value]
        workspace_id=None,
        now=NOW,
        by="reconcile_jobs",
    )


def test_a_running_job_is_read_from_its_endpoint_then_cancelled():
    service = Service("Running")
    result = _reconcile(service)

    assert service.endpoints == [EP]
    assert service.cancelled == ["bs-r"]
    assert result.action == "cancelled"
    assert result.job_status == "Running"
    assert result.view() == {
        "job_name": "bs-r",
        "action": "cancelled",
        "job_status": "Running",
        "at": NOW.isoformat(),
        "by": "reconcile_jobs",
    }


def test_a_job_that_ended_meanwhile_is_not_cancelled():
    service = Service(JobStatus.CANCELED.value)
    result = _reconcile(service)
    assert service.cancelled == []
    assert result.action == "already_ended"


def test_a_refused_cancel_or_a_refused_endpoint_is_reconcile_failed():
    with pytest.raises(ReconcileFailed, match="was refused"):
        _reconcile(Service("Running", AuthError(403, "AuthorizationFailed", "no")))

    def refused(endpoint: str) -> Service:
        raise ValueError("host is not allowed")

    with pytest.raises(ReconcileFailed, match="bs-r failed: host is not allowed"):
        reconcile_job(
            CANDIDATE,
            client_factory=refused,  # type: ignore[arg-type]
            jobs_client=lambda: Service("Running"),  # type: ignore[arg-type,return-value]
            workspace_id=None,
            now=NOW,
            by="cancel",
        )


def test_a_record_reads_back_only_for_its_own_run():
    record = _reconcile(Service("Running")).to_dict()
    assert Reconciliation.from_record(record, "r") == _reconcile(Service("Running"))
    assert Reconciliation.from_record(record, "other") is None
    assert Reconciliation.from_record({**record, "action": 3}, "r") is None
    assert Reconciliation.from_record("text", "r") is None


def test_record_ids_are_bounded_valid_instance_ids_and_distinct_per_run():
    long_id = "r" * 256
    assert is_valid_instance_id(record_instance_id(long_id))
    assert len(record_instance_id(long_id)) == len("reconciled-") + 40
    assert record_instance_id("a") != record_instance_id("b")


def test_a_rerun_is_an_http_run_whatever_started_the_original():
    params = {"endpoint_input_uri": "azureml://x/", "trigger": "schedule"}
    body = rerun_parameters(params, original_id="o", output_template="{run_id}/out.csv")
    assert body["trigger"] == "http"
    assert body["rerun_of"] == "o"
