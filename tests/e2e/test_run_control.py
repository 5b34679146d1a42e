"""Run control end to end through devhost: find runs (paging), rerun, retention purge."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.devstack import Stack, wait_until
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
