"""Run control end to end through devhost: find runs (paging), rerun, retention purge, orphaned
jobs (reconcile, cancel after terminate), job tags and structured log fields."""

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from batch_endpoint import ARM_JOBS_API_VERSION
from scripts.devstack import EMULATOR_WORKSPACE_ID, Stack, wait_until
from tests.e2e.conftest import INPUT_FOLDER, make_stack
from tests.support import Azurite

pytestmark = pytest.mark.e2e

#: A run that fails at once: the emulator refuses an unknown deployment.
FAILING = {"endpoint_input_uri": INPUT_FOLDER, "deployment_name": "no-such-deployment"}
#: A run that stays active: it waits an hour before its first status check.
WAITING = {"endpoint_input_uri": INPUT_FOLDER, "poll_interval": 3600, "timeout": 3600}
COMPLETING = {"endpoint_input_uri": INPUT_FOLDER, "poll_interval": 1}


@pytest.fixture(scope="module")
def rc_stack(
    azurite: Azurite, sample_data: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = make_stack(
        tmp_path_factory.mktemp("run-control"),
        azurite,
        phase_seconds=0.3,
        settings={
            "SCHEDULED_INPUT_URI": "",
            "POLL_INTERVAL_SECONDS": "1",
            "SCORING_BLOB_PATH": "scoring-input-rc/{name}",
            # The tests fire reconcile_jobs themselves; its default schedule (every 15 minutes)
            # must not cancel a terminated run's job while a test still expects it running.
            "RECONCILE_SCHEDULE": "0 0 0 1 1 *",
            "OUTPUT_URI_TEMPLATE": (
                "azureml://datastores/workspaceblobstore/paths/e2e-rc/{run_id}/predictions.csv"
            ),
        },
    )
    try:
        yield stack
    finally:
        stack.stop()


def _start(stack: Stack, body: dict[str, Any], key: str | None = None) -> str:
    headers = {"Idempotency-Key": key} if key else {}
    resp = stack.api("POST", "runs", json=body, headers=headers)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def _list(stack: Stack, **params: str) -> dict[str, Any]:
    resp = stack.api("GET", "runs", params=params)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _all_pages(stack: Stack, **params: str) -> list[list[str]]:
    pages: list[list[str]] = []
    for _ in range(20):
        answer = _list(stack, **params)
        pages.append([v["id"] for v in answer["value"]])
        if answer["continuation"] is None:
            break
        params["continuation"] = answer["continuation"]
    return pages


def test_list_shows_run_views_and_applies_its_filters(rc_stack: Stack):
    failed = _start(rc_stack, FAILING)
    rc_stack.wait_run(failed)

    answer = _list(rc_stack, status="Failed", top="100")
    by_id = {v["id"]: v for v in answer["value"]}
    assert by_id[failed] == rc_stack.run_view(failed)  # the same view as GET /api/runs/{id}
    assert {v["runtime_status"] for v in answer["value"]} == {"Failed"}
    assert len(_list(rc_stack, top="1")["value"]) == 1
    on_endpoint = _list(rc_stack, endpoint=rc_stack.endpoint_uri, top="100")["value"]
    assert failed in {v["id"] for v in on_endpoint}
    other = "https://other.westeurope.inference.ml.azure.com/jobs"
    assert _list(rc_stack, endpoint=other)["value"] == []
    assert _list(rc_stack, status="Failed", created_from="2999-01-01T00:00:00Z")["value"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "Done"}, "status"),
        ({"top": "0"}, "top"),
        ({"top": "101"}, "top"),
        ({"created_from": "last week"}, "created_from"),
        ({"endpoint": "not a url"}, "endpoint"),
        ({"continuation": "forged!"}, "continuation"),
    ],
)
def test_a_bad_list_parameter_is_400_naming_it(rc_stack: Stack, params: dict, field: str):
    resp = rc_stack.api("GET", "runs", params=params)

    assert resp.status_code == 400
    assert [d["field"] for d in resp.json()["error"]["details"]] == [field]


def test_list_pages_over_more_than_one_page(rc_stack: Stack):
    ids = [_start(rc_stack, FAILING) for _ in range(5)]
    for run_id in ids:
        rc_stack.wait_run(run_id)

    pages = _all_pages(rc_stack, status="Failed", top="2")

    listed = [i for page in pages for i in page]
    assert all(len(page) <= 2 for page in pages)
    assert len(listed) == len(set(listed))  # no run twice
    assert set(ids) <= set(listed)  # every run, over several pages
    assert len(pages) >= 3


def test_rerun_starts_a_new_run_with_the_same_parameters_and_its_own_output(rc_stack: Stack):
    first = _start(rc_stack, COMPLETING)
    done = rc_stack.wait_run(first)
    assert done["runtime_status"] == "Completed"

    resp = rc_stack.api("POST", f"runs/{first}/rerun")

    assert resp.status_code == 202, resp.text
    second = resp.json()["id"]
    assert second != first
    assert resp.headers["Location"] == resp.json()["runStatusUri"]
    view = rc_stack.wait_run(second)
    assert view["runtime_status"] == "Completed"
    assert view["rerun_of"] == first
    assert "rerun_of" not in rc_stack.run_view(first)
    assert f"/{second}/" in view["output"]["output_uri"]
    assert view["job_name"] != done["job_name"]


def test_rerun_of_an_active_or_unknown_run_is_refused(rc_stack: Stack):
    active = _start(rc_stack, WAITING)

    busy = rc_stack.api("POST", f"runs/{active}/rerun")
    unknown = rc_stack.api("POST", "runs/no-such-run/rerun")
    bad = rc_stack.api("POST", "runs/..x/rerun")

    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "RunStillActive"
    assert unknown.status_code == 404
    assert bad.status_code == 400
    rc_stack.api("POST", f"runs/{active}/cancel")


def test_a_failed_idempotency_key_stays_bound_and_is_rerun_through_rerun(rc_stack: Stack):
    first = _start(rc_stack, FAILING, key="rc-nightly-2026-11-30")
    assert rc_stack.wait_run(first)["runtime_status"] == "Failed"

    again = rc_stack.api(
        "POST", "runs", json=FAILING, headers={"Idempotency-Key": "rc-nightly-2026-11-30"}
    )
    rerun = rc_stack.api(
        "POST", f"runs/{first}/rerun", headers={"Idempotency-Key": "rc-nightly-2026-11-30-r1"}
    )
    rerun_again = rc_stack.api(
        "POST", f"runs/{first}/rerun", headers={"Idempotency-Key": "rc-nightly-2026-11-30-r1"}
    )

    assert again.json()["id"] == first
    assert again.headers["Idempotent-Replayed"] == "true"
    assert rerun.status_code == 202
    assert rerun.json()["id"] != first
    assert rerun_again.json()["id"] == rerun.json()["id"]  # the rerun's own key is idempotent
    assert rerun_again.headers["Idempotent-Replayed"] == "true"
    assert rc_stack.wait_run(rerun.json()["id"])["rerun_of"] == first


def test_post_runs_refuses_rerun_of(rc_stack: Stack):
    resp = rc_stack.api("POST", "runs", json={**COMPLETING, "rerun_of": "someone"})

    assert resp.status_code == 400
    assert [d["field"] for d in resp.json()["error"]["details"]] == ["rerun_of"]


def test_retention_purges_finished_runs_and_frees_their_idempotency_key(
    azurite: Azurite, sample_data: list[Path], tmp_path: Path
):
    # Retention 0 days, every second: each finished run is purged at the next fire.
    stack = make_stack(
        tmp_path,
        azurite,
        phase_seconds=0.3,
        settings={
            "SCHEDULED_INPUT_URI": "",
            "POLL_INTERVAL_SECONDS": "1",
            "SCORING_BLOB_PATH": "scoring-input-retention/{name}",
            "RUN_RETENTION_DAYS": "0",
            "RETENTION_SCHEDULE": "*/1 * * * * *",
        },
    )
    try:
        active = _start(stack, WAITING)
        failed = _start(stack, FAILING, key="rc-retention")

        wait_until(
            lambda: stack.api("GET", f"runs/{failed}").status_code == 404,
            timeout=30,
            interval=0.2,
            what="the failed run to be purged",
        )
        assert stack.run_view(active)["runtime_status"] == "Running"  # never purged
        assert failed not in {v["id"] for v in _list(stack, top="100")["value"]}
        again = stack.api("POST", "runs", json=FAILING, headers={"Idempotency-Key": "rc-retention"})
        assert again.status_code == 202
        assert again.json()["id"] == failed  # the same id, free again: a new run
        assert "Idempotent-Replayed" not in again.headers
        assert stack.devhost is not None
        assert "retention: purged" in stack.devhost.log_text()
    finally:
        stack.stop()


# ------------------------------------------------------------- orphaned jobs, tags, log fields

#: The next job the emulator creates runs for a day (until it is cancelled).
NEVER_ENDS = {
    "endpoint": "heart-classifier",
    "kind": "job",
    "count": 1,
    "script": [["Running", 86400.0]],
    "outcome": "Completed",
}


def _arm_job(stack: Stack, name: str) -> dict[str, Any]:
    """The job as ARM shows it (``Jobs_Get``), not as the app last saw it."""
    resp = requests.get(
        f"{stack.emulator_url}{EMULATOR_WORKSPACE_ID}/jobs/{name}",
        params={"api-version": ARM_JOBS_API_VERSION},
        headers={"Authorization": "Bearer local-dev"},
        timeout=5,
    )
    resp.raise_for_status()
    return dict(resp.json())


def _terminated_with_running_job(stack: Stack) -> tuple[str, str]:
    """A run terminated through the management API while its job runs: ``(run id, job)``."""
    requests.post(
        f"{stack.emulator_url}/admin/faults", json=NEVER_ENDS, timeout=5
    ).raise_for_status()
    run_id = _start(stack, COMPLETING)
    view: dict[str, Any] = {}

    def running() -> bool:
        view.update(stack.run_view(run_id))
        return view.get("job_status") == "Running"

    wait_until(running, timeout=30, interval=0.2, what="the job to run")
    resp = requests.post(
        f"{stack.devhost_url}/runtime/webhooks/durabletask/instances/{run_id}/terminate",
        params={"reason": "operator", "code": stack.function_key},
        timeout=5,
    )
    assert resp.status_code == 202, resp.text
    assert stack.wait_run(run_id)["runtime_status"] == "Terminated"
    job = str(view["job_name"])
    time.sleep(1.0)  # several emulator phases: nothing stops the job on its own
    assert _arm_job(stack, job)["properties"]["status"] == "Running"
    return run_id, job


def _job_canceled(stack: Stack, job: str) -> None:
    wait_until(
        lambda: _arm_job(stack, job)["properties"]["status"] == "Canceled",
        timeout=30,
        interval=0.2,
        what=f"job {job} to be canceled",
    )


def test_reconcile_cancels_the_job_of_a_terminated_run_and_the_view_shows_it(rc_stack: Stack):
    run_id, job = _terminated_with_running_job(rc_stack)

    # Run the timer now through the host's admin API (the schedule fires every 15 minutes).
    fired = requests.post(
        f"{rc_stack.devhost_url}/admin/functions/reconcile_jobs",
        json={"input": ""},
        headers={"x-functions-key": rc_stack.function_key},
        timeout=5,
    )

    assert fired.status_code == 202
    _job_canceled(rc_stack, job)
    wait_until(
        lambda: "reconciliation" in rc_stack.run_view(run_id),
        timeout=30,
        interval=0.2,
        what="the run view to show the reconciliation",
    )
    view = rc_stack.run_view(run_id)
    assert view["runtime_status"] == "Terminated"
    assert view["reconciliation"]["job_name"] == job
    assert view["reconciliation"]["action"] == "cancelled"
    assert view["reconciliation"]["by"] == "reconcile_jobs"
    assert view["reconciliation"]["job_status"] == "Running"  # as read before the cancel
    assert datetime.fromisoformat(view["reconciliation"]["at"]).tzinfo is not None
    assert rc_stack.devhost is not None
    log = rc_stack.devhost.log_text()
    line = next(ln for ln in log.splitlines() if f"reconcile: run {run_id}" in ln)
    assert f"run_id={run_id}" in line
    assert f"job_name={job}" in line
    assert f"endpoint={rc_stack.endpoint_uri}" in line
    # Records are no runs: the list shows batch runs only.
    assert all(
        v["orchestrator"] == "batch_endpoint_run" for v in _list(rc_stack, top="100")["value"]
    )


def test_cancel_after_terminate_cancels_the_job_and_then_has_nothing_to_cancel(rc_stack: Stack):
    run_id, job = _terminated_with_running_job(rc_stack)

    resp = rc_stack.api("POST", f"runs/{run_id}/cancel")

    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["job_name"] == job
    assert body["reconciliation"]["action"] == "cancelled"
    assert body["reconciliation"]["by"] == "cancel"
    _job_canceled(rc_stack, job)
    assert rc_stack.run_view(run_id)["reconciliation"]["action"] == "cancelled"
    again = rc_stack.api("POST", f"runs/{run_id}/cancel")
    assert again.status_code == 409
    assert "already ended Canceled" in again.json()["error"]["message"]
    # The record of the cancel is kept (an "already ended" answer does not replace it).
    assert rc_stack.run_view(run_id)["reconciliation"]["by"] == "cancel"


def test_cancel_of_a_failed_run_without_a_running_job_is_409(rc_stack: Stack):
    failed = _start(rc_stack, FAILING)
    rc_stack.wait_run(failed)

    resp = rc_stack.api("POST", f"runs/{failed}/cancel")

    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "RunNotActive"


def test_every_job_carries_its_run_trigger_and_caller_tags(rc_stack: Stack):
    tags = {"team": "risk", "cost-center": "cc-42"}
    run_id = _start(rc_stack, {**COMPLETING, "tags": tags})
    view = rc_stack.wait_run(run_id)

    job = _arm_job(rc_stack, view["job_name"])["properties"]

    assert job["tags"]["batch_run_id"] == run_id
    assert job["tags"]["batch_run_trigger"] == "http"
    assert {k: job["tags"][k] for k in tags} == tags
    assert job["tags"]["batch_run_key"] == job["properties"]["batch_run_key"]
    assert rc_stack.devhost is not None
    assert f"run_id={run_id} job_name={view['job_name']}" in rc_stack.devhost.log_text()
    assert "trigger=http" in rc_stack.devhost.log_text()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tags": {"k": 1}}, "tags"),
        ({"tags": {f"k{i}": "v" for i in range(21)}}, "tags"),
        ({"tags": {"batch_run_id": "mine"}}, "tags"),
        ({"tags": "team=risk"}, "tags"),
        ({"trigger": "batch"}, "trigger"),
    ],
)
def test_bad_tags_or_a_trigger_in_the_body_are_400(rc_stack: Stack, body: dict, field: str):
    resp = rc_stack.api("POST", "runs", json={**COMPLETING, **body})

    assert resp.status_code == 400
    assert [d["field"] for d in resp.json()["error"]["details"]] == [field]
