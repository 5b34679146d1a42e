"""Notifications and output hand-off end to end: devhost + emulator + Azurite + a real receiver.

The receiver is a real HTTP server in the test process. Each run with ``notify_url`` must
deliver exactly one accepted, correctly signed notification, also when the receiver answered
500 first (retried by the delivery orchestration). ``copy_output_to`` copies the predictions
file inside Azurite, server-side; the copy must hold the same bytes.
"""

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from batch_runs.notify import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from scripts.devstack import Stack, free_port, wait_until
from tests.e2e.conftest import INPUT_FOLDER, make_stack
from tests.support import Azurite

pytestmark = pytest.mark.e2e

SECRET = "e2e-notify-signing-secret-" + uuid.uuid4().hex
SOURCE_CONTAINER = "azureml-blobstore"
DEST_CONTAINER = "handoff-e2e"


class Receiver:
    """A webhook receiver: records every request; answers 500 to the first N per run id."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_first: dict[str, int] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                run_id = json.loads(body).get("run_id", "")
                with receiver.lock:
                    left = receiver.fail_first.get(run_id, 0)
                    receiver.fail_first[run_id] = max(left - 1, 0)
                    code = 500 if left > 0 else 204
                    receiver.requests.append(
                        {
                            "headers": dict(self.headers),
                            "body": body,
                            "run_id": run_id,
                            "answered": code,
                        }
                    )
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hooks/batch"

    def of(self, run_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["run_id"] == run_id]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def outsider() -> Iterator[Receiver]:
    """A receiver on a host:port that is not in NOTIFY_ALLOWED_HOSTS."""
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(scope="module")
def hstack(
    azurite: Azurite,
    sample_data: list[Path],
    receiver: Receiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    if not service.get_container_client(DEST_CONTAINER).exists():
        service.create_container(DEST_CONTAINER)
    s = make_stack(
        tmp_path_factory.mktemp("handoff"),
        azurite,
        phase_seconds=0.3,
        settings={
            "SCHEDULED_INPUT_URI": "",
            "POLL_INTERVAL_SECONDS": "1",
            "SCORING_BLOB_PATH": "scoring-input-handoff/{name}",
            "OUTPUT_URI_TEMPLATE": (
                "azureml://datastores/workspaceblobstore/paths/e2e-handoff/{run_id}/predictions.csv"
            ),
            "NOTIFY_ALLOWED_HOSTS": f"127.0.0.1:{receiver.server.server_port}",
            "NOTIFY_SIGNING_SECRET": SECRET,
            "COPY_ALLOWED_HOSTS": f"127.0.0.1:{azurite.port}",
            "OUTPUT_DATASTORE_URLS": (
                f"workspaceblobstore={azurite.blob_endpoint}/{SOURCE_CONTAINER}"
            ),
        },
    )
    try:
        yield s
    finally:
        s.stop()


def _start(stack: Stack, body: dict[str, Any]) -> str:
    resp = stack.api("POST", "runs", json={"endpoint_input_uri": INPUT_FOLDER, **body})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def _delivered(stack: Stack, run_id: str, timeout: float = 90) -> dict[str, Any]:
    view: dict[str, Any] = {}

    def done() -> bool:
        view.update(stack.run_view(run_id))
        return (view.get("notification") or {}).get("status") in ("delivered", "failed")

    wait_until(done, timeout=timeout, interval=0.3, what=f"notification of {run_id}")
    return view


def _assert_signed(request: dict[str, Any]) -> dict[str, Any]:
    headers = {k.title(): v for k, v in request["headers"].items()}
    assert "Authorization" not in headers  # no bearer token ever goes to a receiver
    assert verify(
        SECRET,
        request["body"],
        {TIMESTAMP_HEADER: headers[TIMESTAMP_HEADER], SIGNATURE_HEADER: headers[SIGNATURE_HEADER]},
        now=int(time.time()),
    )
    return dict(json.loads(request["body"]))


def _blob_bytes(azurite: Azurite, container: str, name: str) -> bytes:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    return bytes(service.get_blob_client(container, name).download_blob().readall())


def test_completed_run_copies_its_output_and_notifies_once(
    hstack: Stack, azurite: Azurite, receiver: Receiver
):
    dest = f"{azurite.blob_endpoint}/{DEST_CONTAINER}/runs/{uuid.uuid4().hex}/predictions.csv"
    run_id = _start(hstack, {"notify_url": receiver.url, "copy_output_to": dest})
    view = hstack.wait_run(run_id)
    assert view["runtime_status"] == "Completed", view
    output = view["output"]
    assert output["copied_to"] == dest
    source_path = output["output_uri"].split("/paths/", 1)[1]
    copied = _blob_bytes(azurite, DEST_CONTAINER, dest.split(f"/{DEST_CONTAINER}/", 1)[1])
    original = _blob_bytes(azurite, SOURCE_CONTAINER, source_path)
    assert copied == original
    assert len(original.splitlines()) >= 303

    view = _delivered(hstack, run_id)
    assert view["notification"] == {"status": "delivered", "attempts": 1, "last_error": None}
    time.sleep(1.0)  # nothing else arrives later
    [request] = receiver.of(run_id)
    summary = _assert_signed(request)
    assert summary["status"] == "Completed"
    assert summary["job_name"] == view["job_name"]
    assert summary["output_uri"] == output["output_uri"]
    assert summary["copied_to"] == dest
    assert summary["polls"] == output["polls"]
    assert summary["studio_url"] == output["studio_url"]
    assert summary["trigger"]
    assert summary["duration_seconds"] >= 0


def test_notification_is_retried_after_a_500_and_delivered_once(hstack: Stack, receiver: Receiver):
    run_id = f"retry-{uuid.uuid4().hex}"
    receiver.fail_first[run_id] = 1
    resp = hstack.api(
        "POST",
        "runs",
        json={"endpoint_input_uri": INPUT_FOLDER, "notify_url": receiver.url},
        headers={"Idempotency-Key": run_id},
    )
    assert resp.status_code == 202
    run = resp.json()["id"]
    receiver.fail_first[run] = 1
    assert hstack.wait_run(run)["runtime_status"] == "Completed"
    view = _delivered(hstack, run)
    assert view["notification"]["status"] == "delivered"
    assert view["notification"]["attempts"] == 2
    got = receiver.of(run)
    assert [r["answered"] for r in got] == [500, 204]
    assert got[0]["body"] == got[1]["body"]  # the same bytes, signed again per attempt
    for request in got:
        _assert_signed(request)


def test_failed_run_notifies_its_reason(hstack: Stack, azurite: Azurite, receiver: Receiver):
    existing = "e2e-handoff/existing/predictions.csv"
    BlobServiceClient.from_connection_string(azurite.connection_string).get_blob_client(
        SOURCE_CONTAINER, existing
    ).upload_blob(b"already here\n", overwrite=True)
    run_id = _start(
        hstack,
        {
            "notify_url": receiver.url,
            "endpoint_output_uri": f"azureml://datastores/workspaceblobstore/paths/{existing}",
        },
    )
    assert hstack.wait_run(run_id)["runtime_status"] == "Failed"
    view = _delivered(hstack, run_id)
    assert view["notification"]["status"] == "delivered"
    [request] = receiver.of(run_id)
    summary = _assert_signed(request)
    assert summary["status"] == "Failed"
    assert summary["job_status"] == "Failed"
    assert summary["reason"].startswith(f"Batch job {view['job_name']} ended Failed")
    # The run's own message, without the host's "Orchestrator function ... failed:" prefix.
    assert view["error"].endswith(summary["reason"])


def test_copy_failure_fails_the_run_naming_the_destination(hstack: Stack, azurite: Azurite):
    dest = f"{azurite.blob_endpoint}/no-such-container-e2e/predictions.csv"
    run_id = _start(hstack, {"copy_output_to": dest})
    view = hstack.wait_run(run_id, timeout=120)
    assert view["runtime_status"] == "Failed"
    assert "completed, but copying its output" in view["error"]
    assert dest in view["error"]
    assert "sig=" not in view["error"]  # the source SAS never shows


def test_receiver_outside_the_allowlist_gets_nothing(hstack: Stack, outsider: Receiver):
    before = len(hstack.list_instances())
    resp = hstack.api(
        "POST", "runs", json={"endpoint_input_uri": INPUT_FOLDER, "notify_url": outsider.url}
    )
    assert resp.status_code == 400
    [detail] = resp.json()["error"]["details"]
    assert detail["field"] == "notify_url"
    assert "NOTIFY_ALLOWED_HOSTS" in detail["message"]
    assert len(hstack.list_instances()) == before
    time.sleep(1.0)
    assert outsider.requests == []


def test_raw_input_with_an_outside_receiver_sends_nothing_and_says_so(
    hstack: Stack, outsider: Receiver
):
    """A parent orchestrator passes raw parameters (no HTTP validation): the run fails on its
    invalid notify_url, and the delivery instance ends failed without sending anything."""
    run_id = f"raw-{uuid.uuid4().hex}"
    resp = requests.post(
        f"{hstack.devhost_url}/runtime/webhooks/durabletask/orchestrators/batch_endpoint_run/"
        f"{run_id}",
        params={"code": hstack.function_key},
        json={"endpoint_input_uri": INPUT_FOLDER, "notify_url": outsider.url},
        timeout=10,
    )
    assert resp.status_code == 202, resp.text
    view = hstack.wait_run(run_id)
    assert view["runtime_status"] == "Failed"
    assert "notify_url" in view["error"]
    view = _delivered(hstack, run_id)
    assert view["notification"]["status"] == "failed"
    assert view["notification"]["attempts"] == 1
    assert "nothing sent" in view["notification"]["last_error"]
    assert "NOTIFY_ALLOWED_HOSTS" in view["notification"]["last_error"]
    assert outsider.requests == []


def _start_raw(stack: Stack, run_id: str, body: dict[str, Any]) -> None:
    """Start ``batch_endpoint_run`` as a parent orchestrator would: raw parameters."""
    resp = requests.post(
        f"{stack.devhost_url}/runtime/webhooks/durabletask/orchestrators/batch_endpoint_run/"
        f"{run_id}",
        params={"code": stack.function_key},
        json=body,
        timeout=10,
    )
    assert resp.status_code == 202, resp.text


def test_a_new_run_reusing_an_ended_runs_id_is_notified_again(hstack: Stack, receiver: Receiver):
    run_id = f"reuse-{uuid.uuid4().hex}"
    body = {"endpoint_input_uri": INPUT_FOLDER, "notify_url": receiver.url, "poll_interval": 1}
    _start_raw(hstack, run_id, body)
    assert hstack.wait_run(run_id)["runtime_status"] == "Completed"
    _delivered(hstack, run_id)
    wait_until(lambda: len(receiver.of(run_id)) == 1, timeout=10, what="first notification")

    _start_raw(hstack, run_id, body)  # an ended instance id may be reused by a new run

    def second() -> bool:
        return len(receiver.of(run_id)) == 2

    wait_until(second, timeout=90, interval=0.3, what="the second run's notification")
    first, again = (_assert_signed(r) for r in receiver.of(run_id))
    assert first["finished"] != again["finished"]
    assert first["job_name"] != again["job_name"]
    time.sleep(1.0)
    assert len(receiver.of(run_id)) == 2


def test_no_secret_reaches_history_status_logs_or_the_store(
    hstack: Stack, azurite: Azurite, receiver: Receiver
):
    """Security pass 3: after a copied and notified run, NOTIFY_SIGNING_SECRET and the copy's
    source SAS (``sig=``) are nowhere but the settings file: not in either instance's input,
    status, output or history (management API with history and inputs), not in devhost's
    SQLite store (with its WAL), not in any process log of the stack."""
    dest = f"{azurite.blob_endpoint}/{DEST_CONTAINER}/runs/{uuid.uuid4().hex}/predictions.csv"
    run_id = _start(hstack, {"notify_url": receiver.url, "copy_output_to": dest})
    assert hstack.wait_run(run_id)["runtime_status"] == "Completed"
    assert _delivered(hstack, run_id)["notification"]["status"] == "delivered"
    shown = []
    for instance in (run_id, f"notify:{run_id}"):
        resp = requests.get(
            f"{hstack.devhost_url}/runtime/webhooks/durabletask/instances/{instance}",
            params={
                "code": hstack.function_key,
                "showHistory": "true",
                "showHistoryOutput": "true",
                "showInput": "true",
            },
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        assert "history" in resp.json() or "historyEvents" in resp.json(), resp.text[:300]
        shown.append(resp.text)
    shown.append(json.dumps(hstack.run_view(run_id)))
    for text in shown:
        assert SECRET not in text
        assert "sig=" not in text
    holding_inputs = 0
    for path in hstack.run_dir.rglob("*"):
        if not path.is_file() or path.name == "local.settings.json":
            continue
        data = path.read_bytes()
        holding_inputs += run_id.encode() in data
        assert SECRET.encode() not in data, path
        assert b"sig=" not in data, path
    assert holding_inputs >= 1  # the scan did read where the run's history is stored
