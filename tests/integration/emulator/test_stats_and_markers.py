"""``GET /admin/stats`` (active and peak active jobs) and marker files in folder inputs."""

from __future__ import annotations

import pytest
from azure.storage.blob import ContainerClient

from tests.integration.emulator.helpers import EmulatorApi, body, csv_text, ds, put_blobs, uid

pytestmark = pytest.mark.integration


def _stats(api: EmulatorApi) -> dict[str, int]:
    return dict(api.admin("GET", "stats").json())


def test_stats_count_active_jobs_and_keep_the_peak(
    api: EmulatorApi, container: ContainerClient
) -> None:
    prefix = uid("stats")
    put_blobs(container, {f"{prefix}/a.csv": csv_text(2)})
    # The next 3 jobs stay Running for 3 s, so all three are active at once.
    api.admin("POST", "faults", {"kind": "job", "count": 3, "script": [["Running", 3.0]]})
    before = _stats(api)
    names = [
        api.submit(body(ds(prefix + "/"), ds(f"{uid('out')}/p.csv")))["name"] for _ in range(3)
    ]
    during = _stats(api)
    assert during["active_jobs"] == before["active_jobs"] + 3
    assert during["peak_active_jobs"] >= before["active_jobs"] + 3
    for name in names:
        api.wait_status(name)
    after = _stats(api)
    assert after["active_jobs"] == before["active_jobs"]
    assert after["peak_active_jobs"] >= during["peak_active_jobs"]
    assert set(after) == {"active_jobs", "peak_active_jobs"}


def test_marker_and_dot_files_in_a_folder_are_not_scored(
    api: EmulatorApi, container: ContainerClient
) -> None:
    prefix = uid("marker")
    put_blobs(
        container,
        {f"{prefix}/a.csv": csv_text(3), f"{prefix}/_READY": b"", f"{prefix}/.keep": b"x"},
    )
    job = api.submit(body(ds(prefix + "/"), ds(f"{uid('out')}/p.csv")))
    done = api.wait_status(job["name"])
    assert done["properties"]["status"] == "Completed"
    assert done["properties"]["properties"] == {"rowsScored": "3", "filesScored": "1"}
