"""Batches and folder-ready markers end to end: devhost + emulator + Azurite processes."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from scripts.devstack import Stack, read_predictions, wait_until
from tests.e2e.conftest import make_stack
from tests.support import Azurite

pytestmark = pytest.mark.e2e

DATASTORE = "azureml://datastores/workspaceblobstore/paths/"
MARKER_CONTAINER = "scoring-input-batches"
ENDED = {"Completed", "Failed", "Terminated", "Canceled"}


@pytest.fixture(scope="module")
def batch_stack(
    azurite: Azurite, sample_data: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One stack for the module, in folder-marker mode (batches do not use the blob trigger)."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    data = service.get_container_client("azureml-blobstore")
    for i in range(20):
        data.upload_blob(f"batch-e2e/file-{i:02d}.csv", sample_data[3].read_bytes(), overwrite=True)
    stack = make_stack(
        tmp_path_factory.mktemp("batches"),
        azurite,
        phase_seconds=0.2,
        settings={
            "SCHEDULED_INPUT_URI": "",
            "POLL_INTERVAL_SECONDS": "1",
            "SCORING_BLOB_PATH": f"{MARKER_CONTAINER}/{{name}}",
            "SCORING_BLOB_MODE": "folder-marker",
            "OUTPUT_DATASTORE_URLS": (
                f"workspaceblobstore={azurite.blob_endpoint}/azureml-blobstore"
            ),
            "OUTPUT_URI_TEMPLATE": (
                "azureml://datastores/workspaceblobstore/paths/e2e-batches/{run_id}/predictions.csv"
            ),
        },
    )
    try:
        yield stack
    finally:
        stack.stop()


def _stats(stack: Stack) -> dict[str, int]:
    return dict(requests.get(f"{stack.emulator_url}/admin/stats", timeout=5).json())


def _start(stack: Stack, body: dict[str, Any]) -> str:
    resp = stack.api("POST", "batches", json=body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def _wait_batch(stack: Stack, batch_id: str, timeout: float = 120) -> dict[str, Any]:
    view: dict[str, Any] = {}

    def ended() -> bool:
        resp = stack.api("GET", f"batches/{batch_id}")
        view.clear()
        view.update(resp.json())
        return view.get("runtime_status") in ENDED

    wait_until(ended, timeout=timeout, interval=0.5, what=f"batch {batch_id} to end")
    return view


def test_batch_of_20_holds_the_cap_and_reports_every_outcome(batch_stack: Stack):
    inputs = [f"{DATASTORE}batch-e2e/file-{i:02d}.csv" for i in range(20)]
    inputs[7] = f"{DATASTORE}batch-e2e/missing.csv"  # the emulator fails this job
    assert _stats(batch_stack)["peak_active_jobs"] == 0
    batch_id = _start(batch_stack, {"inputs": inputs, "max_parallel_jobs": 4, "poll_interval": 1})

    view = _wait_batch(batch_stack, batch_id)

    assert view["runtime_status"] == "Completed", view
    assert view["counts"] == {
        "pending": 0,
        "running": 0,
        "completed": 19,
        "failed": 1,
        "cancelled": 0,
    }
    outcomes = view["output"]["outcomes"]
    assert [o["index"] for o in outcomes] == list(range(20))
    assert [o["id"] for o in outcomes] == [f"{batch_id}:{i}" for i in range(20)]
    failed = [o for o in outcomes if o["state"] == "failed"]
    assert [o["input"] for o in failed] == [inputs[7]]
    assert "ended Failed" in failed[0]["error"]
    assert all(o["output"]["status"] == "Completed" for o in outcomes if o["state"] == "completed")
    stats = _stats(batch_stack)
    assert 2 <= stats["peak_active_jobs"] <= 4, stats  # parallel, and never over the cap
    assert stats["active_jobs"] == 0
    # The children's run views, paged.
    page = batch_stack.api("GET", f"batches/{batch_id}", params={"children_top": "15"}).json()
    assert (len(page["children"]), page["children_next"]) == (15, 15)
    rest = batch_stack.api(
        "GET", f"batches/{batch_id}", params={"children_from": "15", "children_top": "15"}
    ).json()
    assert (len(rest["children"]), rest["children_next"]) == (5, None)
    assert page["children"][0]["id"] == f"{batch_id}:0"
    assert page["children"][0] == batch_stack.run_view(f"{batch_id}:0")


def test_input_folder_batch_scores_each_file(batch_stack: Stack):
    batch_id = _start(
        batch_stack,
        {
            "input_folder": f"{DATASTORE}heart-unlabeled/",
            "max_parallel_jobs": 2,
            "poll_interval": 1,
        },
    )
    view = _wait_batch(batch_stack, batch_id)
    assert view["runtime_status"] == "Completed", view
    assert view["counts"]["completed"] == 4
    assert [o["input"] for o in view["output"]["outcomes"]] == [
        f"{DATASTORE}heart-unlabeled/heart-unlabeled-{i}.csv" for i in range(4)
    ]


def test_bad_batches_are_refused_naming_the_field(batch_stack: Stack):
    cases: list[tuple[dict[str, Any], str]] = [
        ({"max_parallel_jobs": 2}, "input_folder"),
        ({"inputs": ["x"], "input_folder": f"{DATASTORE}a/"}, "inputs"),
        ({"inputs": [f"{DATASTORE}a.csv"], "max_parallel_jobs": 101}, "max_parallel_jobs"),
        ({"inputs": [f"{DATASTORE}a.csv", "file:///etc/passwd"]}, "inputs[1]"),
        ({"inputs": [f"{DATASTORE}a.csv"], "endpoint_output_uri": "x"}, "endpoint_output_uri"),
    ]
    for body, field in cases:
        resp = batch_stack.api("POST", "batches", json=body)
        assert resp.status_code == 400, (body, resp.text)
        assert field in {d["field"] for d in resp.json()["error"]["details"]}, resp.text
    # A datastore that OUTPUT_DATASTORE_URLS does not map: accepted, then listing fails.
    unmapped = {"input_folder": "azureml://datastores/other/paths/a/"}
    view = _wait_batch(batch_stack, _start(batch_stack, unmapped), timeout=30)
    assert view["runtime_status"] == "Failed"
    assert "OUTPUT_DATASTORE_URLS" in view["error"]
    assert batch_stack.api("GET", "batches/no-such-batch").status_code == 404


def test_cancel_of_a_batch_cancels_its_children_jobs(batch_stack: Stack):
    # The next 3 jobs run for 10 minutes: the cancel must stop them.
    for _ in range(3):
        fault = {"kind": "job", "count": 1, "script": [["Running", 600]]}
        requests.post(f"{batch_stack.emulator_url}/admin/faults", json=fault, timeout=5)
    inputs = [f"{DATASTORE}batch-e2e/file-{i:02d}.csv" for i in range(6)]
    batch_id = _start(batch_stack, {"inputs": inputs, "max_parallel_jobs": 3, "poll_interval": 1})
    wait_until(
        lambda: (
            batch_stack.api("GET", f"batches/{batch_id}").json()["counts"]["running"] == 3
            and all(
                c.get("job_status") == "Running"
                for c in batch_stack.api("GET", f"batches/{batch_id}").json()["children"]
            )
        ),
        timeout=30,
        interval=0.3,
        what="3 running children",
    )

    resp = batch_stack.api("POST", f"batches/{batch_id}/cancel")
    assert resp.status_code == 202, resp.text
    view = _wait_batch(batch_stack, batch_id, timeout=60)

    assert view["runtime_status"] == "Completed"
    assert view["counts"] == {
        "pending": 0,
        "running": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 6,
    }
    for child in view["children"]:
        assert child["job_status"] == "Canceled", child
    counters = batch_stack.emulator_counters()["jobs"]
    assert all(counters[c["job_name"]]["cancel"] == 1 for c in view["children"])
    assert batch_stack.api("POST", f"batches/{batch_id}/cancel").status_code == 409


def test_folder_marker_starts_one_run_and_files_start_nothing(
    batch_stack: Stack, azurite: Azurite, sample_data: list[Path]
):
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client(MARKER_CONTAINER)
    if not container.exists():
        container.create_container()
    for path in sample_data[:2]:
        container.upload_blob(f"day1/{path.name}", path.read_bytes(), overwrite=True)
    container.upload_blob("day1/_READY", b"", overwrite=True)
    container.upload_blob("day2/nested/_READY", b"", overwrite=True)
    container.upload_blob("_READY", b"", overwrite=True)

    wait_until(lambda: len(batch_stack.list_instances("folder-")) >= 1, timeout=30)
    (instance,) = batch_stack.list_instances("folder-")
    view = batch_stack.wait_run(instance["instanceId"], timeout=60)
    assert view["runtime_status"] == "Completed", view
    rows = read_predictions(azurite.connection_string, view["output"]["output_uri"])
    assert {r[2] for r in rows} == {p.name for p in sample_data[:2]}  # the marker is not scored
    # Observation window: a few more trigger scans start nothing for the files, the nested
    # marker or the root marker, and nothing twice for the marker.
    time.sleep(3)
    assert len(batch_stack.list_instances("folder-")) == 1
    assert batch_stack.list_instances("blob-") == []
    assert batch_stack.devhost is not None
    log = batch_stack.devhost.log_text()
    assert "nested folder" in log
    assert "container root is refused" in log
