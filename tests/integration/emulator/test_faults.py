"""Fault injection (admin routes) and request counters."""

from __future__ import annotations

import time

import pytest
from azure.storage.blob import ContainerClient

from tests.integration.emulator.helpers import (
    EmulatorApi,
    body,
    csv_text,
    ds,
    put_blobs,
    read_lines,
    uid,
)

pytestmark = pytest.mark.integration

INVOKE = "POST /endpoints/{endpoint}/jobs"
GET = "GET /endpoints/{endpoint}/jobs/{name}"
CANCEL = (
    "POST /subscriptions/{subscription}/resourceGroups/{resource_group}/providers/"
    "Microsoft.MachineLearningServices/workspaces/{workspace}/jobs/{name}/cancel"
)


@pytest.fixture
def folder(container: ContainerClient) -> str:
    prefix = uid("in")
    put_blobs(container, {f"{prefix}/a.csv": csv_text(2)})
    return prefix


def _fault(api: EmulatorApi, **fault: object) -> None:
    response = api.admin("POST", "faults", fault)
    assert response.status_code == 200, response.text


def test_429_with_retry_after_on_the_next_n_invokes(api: EmulatorApi, folder: str) -> None:
    _fault(api, route="invoke", kind="http_error", status=429, retry_after=2, count=2)
    before = api.admin("GET", "counters").json()["jobs_created"]
    for _ in range(2):
        response = api.invoke(body(ds(folder), ds(f"{uid('o')}/p.csv")))
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "2"
        assert "error" in response.json()
    assert api.admin("GET", "counters").json()["jobs_created"] == before
    assert api.invoke(body(ds(folder), ds(f"{uid('o')}/p.csv"))).status_code == 200
    assert api.admin("GET", "faults").json() == {"faults": []}


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_on_get(api: EmulatorApi, folder: str, status: int) -> None:
    name = api.submit(body(ds(folder), ds(f"{uid('o')}/p.csv")))["name"]
    _fault(api, route="get", kind="http_error", status=status, count=1)
    failed = api.get(name)
    assert failed.status_code == status
    assert failed.json()["error"]["message"]
    assert "Retry-After" not in failed.headers
    assert api.get(name).status_code == 200


def test_fault_on_cancel_route(api: EmulatorApi, folder: str) -> None:
    _fault(api, kind="job", count=1, script=[["Running", 30]])
    name = api.submit(body(ds(folder), ds(f"{uid('o')}/p.csv")))["name"]
    _fault(api, route="cancel", kind="http_error", status=503, retry_after=1, count=1)
    assert api.cancel(name).status_code == 503
    assert api.cancel(name).status_code == 202
    assert api.wait_status(name)["properties"]["status"] == "Canceled"


def test_fault_scoped_to_another_endpoint_does_not_apply(api: EmulatorApi, folder: str) -> None:
    _fault(api, endpoint="multi", route="any", kind="http_error", status=500, count=1)
    assert api.invoke(body(ds(folder), ds(f"{uid('o')}/p.csv"))).status_code == 200
    assert (
        api.invoke(body(ds(folder), ds(f"{uid('o')}/p.csv")), endpoint="multi").status_code == 500
    )


def test_slow_responses(api: EmulatorApi, folder: str) -> None:
    name = api.submit(body(ds(folder), ds(f"{uid('o')}/p.csv")))["name"]
    _fault(api, route="get", kind="slow", seconds=0.6, count=1)
    started = time.monotonic()
    slow = api.get(name)
    slow_elapsed = time.monotonic() - started
    started = time.monotonic()
    fast = api.get(name)
    fast_elapsed = time.monotonic() - started
    assert slow.status_code == fast.status_code == 200
    assert slow_elapsed >= 0.6
    assert fast_elapsed < 0.5


def test_job_stuck_in_queued_then_released_by_admin_script(
    api: EmulatorApi, folder: str, container: ContainerClient
) -> None:
    out = f"{uid('o')}/p.csv"
    _fault(api, kind="job", count=1, script=[["Queued", 3600]])
    name = api.submit(body(ds(folder), ds(out)))["name"]
    assert api.job(name)["properties"]["status"] == "Queued"
    # Much longer than the default phases: still Queued.
    api.wait_status(name, ("Queued",))
    other = api.submit(body(ds(folder), ds(f"{uid('o')}/p.csv")))["name"]
    assert api.wait_status(other)["properties"]["status"] == "Completed"
    assert api.job(name)["properties"]["status"] == "Queued"
    released = api.admin(
        "POST", f"jobs/{name}/script", {"script": [["Running", 0.05], ["Finalizing", 0.05]]}
    )
    assert released.status_code == 200
    assert released.json()["properties"]["status"] == "Running"
    assert api.wait_status(name)["properties"]["status"] == "Completed"
    assert len(read_lines(container, out)) == 2


def test_not_responding_then_completes_and_really_scores(
    api: EmulatorApi, folder: str, container: ContainerClient
) -> None:
    out = f"{uid('o')}/p.csv"
    _fault(
        api,
        kind="job",
        count=1,
        outcome="Completed",
        script=[["Queued", 0.4], ["Running", 0.4], ["NotResponding", 0.4], ["Running", 0.4]],
    )
    name = api.submit(body(ds(folder), ds(out)))["name"]
    seen = api.statuses_until_final(name)
    assert seen == ["Queued", "Running", "NotResponding", "Running", "Completed"]
    assert read_lines(container, out) == ["0,0,a.csv", "1,0,a.csv"]


def test_paused_then_failed_with_message(api: EmulatorApi, folder: str) -> None:
    _fault(
        api,
        kind="job",
        count=1,
        outcome="Failed",
        message="injected: out of quota",
        script=[["Paused", 0.2]],
    )
    name = api.submit(body(ds(folder), ds(f"{uid('o')}/p.csv")))["name"]
    job = api.wait_status(name)
    assert job["properties"]["status"] == "Failed"
    assert job["properties"]["errorMessage"] == "injected: out of quota"


def test_job_fault_ends_canceled(api: EmulatorApi, folder: str, container: ContainerClient) -> None:
    out = f"{uid('o')}/p.csv"
    _fault(api, kind="job", count=1, outcome="Canceled", script=[["Running", 0.1]])
    name = api.submit(body(ds(folder), ds(out)))["name"]
    assert api.wait_status(name)["properties"]["status"] == "Canceled"
    assert not container.get_blob_client(out).exists()


def test_job_faults_apply_to_the_next_n_jobs_only(api: EmulatorApi, folder: str) -> None:
    _fault(api, kind="job", count=2, outcome="Failed", script=[["Queued", 0.05]])
    names = [api.submit(body(ds(folder), ds(f"{uid('o')}/p.csv")))["name"] for _ in range(3)]
    outcomes = [api.wait_status(n)["properties"]["status"] for n in names]
    assert outcomes == ["Failed", "Failed", "Completed"]


def test_admin_script_errors(api: EmulatorApi, folder: str) -> None:
    missing = api.admin("POST", "jobs/no-such-job/script", {"script": [["Queued", 1]]})
    assert missing.status_code == 404
    name = api.submit(body(ds(folder), ds(f"{uid('o')}/p.csv")))["name"]
    bad = api.admin("POST", f"jobs/{name}/script", {"script": [["Exploding", 1]]})
    assert bad.status_code == 400
    assert "body.script[0]" in bad.json()["error"]["message"]
    api.wait_status(name)
    done = api.admin("POST", f"jobs/{name}/script", {"script": [["Queued", 1]]})
    assert done.status_code == 409


@pytest.mark.parametrize(
    ("fault", "field"),
    [
        ({"kind": "boom"}, "body.kind"),
        ({"route": "get"}, "body.kind"),
        ({"kind": "http_error", "status": 418}, "body.status"),
        ({"kind": "http_error", "status": 500, "route": "everywhere"}, "body.route"),
        ({"kind": "http_error", "status": 500, "count": 0}, "body.count"),
        ({"kind": "slow"}, "body.seconds"),
        ({"kind": "job", "script": [["Completed", 1]]}, "body.script[0]"),
        ({"kind": "job", "outcome": "Exploded"}, "body.outcome"),
        ({"kind": "http_error", "status": 500, "endpoint": "nope"}, "body.endpoint"),
        ({"kind": "slow", "seconds": 1, "extra": 1}, "body.extra"),
    ],
)
def test_bad_fault_bodies_are_400_naming_the_field(
    api: EmulatorApi, fault: dict[str, object], field: str
) -> None:
    response = api.admin("POST", "faults", fault)
    assert response.status_code == 400
    assert field in response.json()["error"]["message"]
    assert api.admin("GET", "faults").json() == {"faults": []}


def test_list_and_clear_faults(api: EmulatorApi) -> None:
    _fault(api, route="get", kind="http_error", status=503, count=3)
    _fault(api, kind="job", count=1, script=[["Queued", 1]])
    listed = api.admin("GET", "faults").json()["faults"]
    assert [f["kind"] for f in listed] == ["http_error", "job"]
    assert listed[0]["count"] == 3
    assert api.admin("DELETE", "faults").status_code == 200
    assert api.admin("GET", "faults").json() == {"faults": []}


def test_counters_count_every_request_including_faulted_ones(api: EmulatorApi, folder: str) -> None:
    assert api.admin("POST", "reset-counters").status_code == 200
    _fault(api, route="invoke", kind="http_error", status=429, count=1)
    assert api.invoke(body(ds(folder), ds(f"{uid('o')}/p.csv"))).status_code == 429
    name = api.submit(body(ds(folder), ds(f"{uid('o')}/p.csv")))["name"]
    for _ in range(3):
        api.get(name)
    api.cancel(name)
    api.get("unknown-job")
    counters = api.admin("GET", "counters").json()
    assert counters["routes"][INVOKE] == 2
    assert counters["routes"][GET] == 4
    assert counters["routes"][CANCEL] == 1
    assert counters["jobs"][name] == {"get": 3, "cancel": 1}
    assert counters["jobs"]["unknown-job"] == {"get": 1, "cancel": 0}
    assert counters["jobs_created"] == 1
    assert api.admin("POST", "reset-counters").json() == {
        "routes": {},
        "jobs": {},
        "jobs_created": 0,
    }
