"""The product end to end: devhost runs function_app.py; the emulator scores files in Azurite."""

import time

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from scripts.devstack import Stack, read_predictions, wait_until
from tests.e2e.conftest import INPUT_FOLDER, make_stack
from tests.support import Azurite

pytestmark = pytest.mark.e2e


def _start(stack: Stack, body: dict, **headers: str) -> requests.Response:
    return stack.api("POST", "runs", json=body, headers=headers)


def test_http_run_scores_the_folder_and_reports_its_output(stack: Stack, azurite: Azurite):
    resp = _start(
        stack,
        {
            "endpoint_input_uri": INPUT_FOLDER,
            "endpoint_input_type": "UriFolder",
            "poll_interval": 1,
        },
    )
    assert resp.status_code == 202
    body = resp.json()
    assert resp.headers["Location"] == body["runStatusUri"]
    assert "code=" not in resp.text  # no management URL with the system key is handed out

    # The Location is the run view; it is followed with the caller's own function key.
    def run_done() -> bool:
        view = requests.get(
            resp.headers["Location"], headers={"x-functions-key": stack.function_key}, timeout=5
        ).json()
        return view["runtime_status"] in ("Completed", "Failed")

    wait_until(run_done, timeout=60, interval=0.2, what="run Completed")
    [durable] = [i for i in stack.list_instances(body["id"]) if i["instanceId"] == body["id"]]
    assert durable["runtimeStatus"] == "Completed"

    view = stack.run_view(body["id"])
    assert view["runtime_status"] == "Completed"
    assert view["job_status"] == "Completed"
    assert view["polls"] >= 1
    output = view["output"]
    assert output == durable["output"]
    assert body["id"] in output["output_uri"]
    rows = read_predictions(azurite.connection_string, output["output_uri"])
    assert len(rows) == 303
    assert {r[2] for r in rows} == {f"heart-unlabeled-{i}.csv" for i in range(4)}
    assert {r[1] for r in rows} == {"0", "1"}


def test_bad_request_is_400_naming_fields_and_starts_nothing(stack: Stack):
    before = len(stack.list_instances())
    jobs_before = stack.emulator_counters()["jobs_created"]
    resp = _start(
        stack,
        {
            "endpoint_input_uri": "file:///etc/passwd",
            "poll_interval": "soon",
            "endpoint_uri": "https://evil.example.com/jobs",
        },
    )
    assert resp.status_code == 400
    fields = {d["field"] for d in resp.json()["error"]["details"]}
    assert fields == {"endpoint_input_uri", "poll_interval", "endpoint_uri"}
    assert len(stack.list_instances()) == before
    assert stack.emulator_counters()["jobs_created"] == jobs_before


def test_missing_function_key_is_401(stack: Stack):
    resp = requests.post(f"{stack.devhost_url}/api/runs", json={}, timeout=5)
    assert resp.status_code == 401


def test_failed_job_fails_the_run_with_the_service_message(stack: Stack, azurite: Azurite):
    existing = "azureml://datastores/workspaceblobstore/paths/e2e/existing/predictions.csv"
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.get_blob_client("azureml-blobstore", "e2e/existing/predictions.csv").upload_blob(
        b"already here\n", overwrite=True
    )

    resp = _start(
        stack,
        {"endpoint_input_uri": INPUT_FOLDER, "endpoint_output_uri": existing, "poll_interval": 1},
    )
    assert resp.status_code == 202
    view = stack.wait_run(resp.json()["id"])

    assert view["runtime_status"] == "Failed"
    assert view["job_status"] == "Failed"
    if stack.contract == "lenient":
        assert "already exists" in view["error"]  # the service's text, where it sends one
    else:  # the documented BatchJob has no error field: say where the reason is
        assert "the service reported no error detail" in view["error"]
        assert "user_logs" in view["error"]
    assert f"Batch job {view['job_name']} ended Failed" in view["error"]
    assert "Studio: https://ml.azure.com/runs/" in view["error"]


def test_idempotency_key_starts_one_run_and_one_job(stack: Stack):
    body = {"endpoint_input_uri": INPUT_FOLDER, "poll_interval": 1}
    first = _start(stack, body, **{"Idempotency-Key": "e2e-idem-1"})
    second = _start(stack, body, **{"Idempotency-Key": "e2e-idem-1"})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    view = stack.wait_run(first.json()["id"])
    assert view["runtime_status"] == "Completed"
    counters = stack.emulator_counters()
    assert view["job_name"] in counters["jobs"]
    assert len([i for i in stack.list_instances("run-")]) == 1


def test_cancel_cancels_the_azure_ml_job(stack: Stack):
    requests.post(
        f"{stack.emulator_url}/admin/faults",
        timeout=5,
        json={
            "endpoint": "heart-classifier",
            "kind": "job",
            "count": 1,
            "script": [["Queued", 600.0]],
            "outcome": "Completed",
        },
    ).raise_for_status()
    resp = _start(stack, {"endpoint_input_uri": INPUT_FOLDER, "poll_interval": 1})
    run_id = resp.json()["id"]
    wait_until(
        lambda: stack.run_view(run_id).get("job_status") == "Queued",
        timeout=30,
        what="the job to be Queued",
    )

    cancel = stack.api("POST", f"runs/{run_id}/cancel")
    assert cancel.status_code == 202
    view = stack.wait_run(run_id)

    assert view["runtime_status"] == "Failed"
    assert view["job_status"] == "Canceled"
    assert "canceled on request" in view["error"]
    assert stack.emulator_counters()["jobs"][view["job_name"]]["cancel"] == 1
    assert stack.api("POST", f"runs/{run_id}/cancel").status_code == 409


def test_blob_upload_starts_exactly_one_run(stack: Stack, azurite: Azurite, sample_data):
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container_name = stack.app_settings()["SCORING_BLOB_PATH"].split("/", 1)[0]
    container = service.get_container_client(container_name)
    if not container.exists():
        container.create_container()
    container.upload_blob("e2e-one.csv", sample_data[1].read_bytes(), overwrite=True)
    container.upload_blob("e2e-empty.csv", b"", overwrite=True)

    wait_until(
        lambda: len(stack.list_instances("blob-")) >= 1, timeout=30, what="a blob-triggered run"
    )
    (instance,) = stack.list_instances("blob-")
    view = stack.wait_run(instance["instanceId"])
    assert view["runtime_status"] == "Completed"
    rows = read_predictions(azurite.connection_string, view["output"]["output_uri"])
    assert len(rows) == 100
    assert {r[2] for r in rows} == {"e2e-one.csv"}
    # Observation window (not synchronisation): the trigger polls every second; a few more
    # scans must neither start a second run for the same blob version nor one for the 0-byte blob.
    time.sleep(3)
    assert len(stack.list_instances("blob-")) == 1


def test_schedule_fires_and_runs_never_overlap(azurite: Azurite, sample_data, tmp_path):
    stack = make_stack(
        tmp_path,
        azurite,
        phase_seconds=0.5,
        settings={
            "SCORING_SCHEDULE": "*/2 * * * * *",
            "POLL_INTERVAL_SECONDS": "1",
            "SCORING_BLOB_PATH": "schedule-test-input/{name}",
            "SCHEDULED_INPUT_URI": INPUT_FOLDER,
        },
    )
    try:
        wait_until(
            lambda: len(stack.list_instances("schedule-")) >= 1, timeout=30, what="a scheduled run"
        )
        first = sorted(i["instanceId"] for i in stack.list_instances("schedule-"))[0]
        view = stack.wait_run(first, timeout=60)
        assert view["runtime_status"] == "Completed"
        runs = stack.list_instances("schedule-")
        active = [r for r in runs if r["runtimeStatus"] in ("Running", "Pending")]
        assert len(active) <= 1
        assert stack.devhost is not None
        assert "still" in stack.devhost.log_text()  # a slot was skipped while the run was active
    finally:
        stack.stop()


def test_kill9_during_polling_resumes_with_exactly_one_job(azurite: Azurite, sample_data, tmp_path):
    stack = make_stack(
        tmp_path,
        azurite,
        phase_seconds=1.5,
        settings={
            "SCHEDULED_INPUT_URI": "",
            "POLL_INTERVAL_SECONDS": "1",
            "SCORING_BLOB_PATH": "kill9-test-input/{name}",
        },
    )
    try:
        body = {"endpoint_input_uri": INPUT_FOLDER, "poll_interval": 1}
        run_id = _start(stack, body).json()["id"]
        wait_until(
            lambda: stack.run_view(run_id).get("polls", 0) >= 2,
            timeout=30,
            what="the run to be polling",
        )
        assert stack.devhost is not None
        stack.devhost.kill9()
        stack.start_devhost()
        view = stack.wait_run(run_id, timeout=90)

        assert view["runtime_status"] == "Completed"
        counters = stack.emulator_counters()
        assert counters["jobs_created"] == 1  # the documented profile ignores client names
        assert view["job_name"] in counters["jobs"]
    finally:
        stack.stop()
