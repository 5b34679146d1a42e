"""The run-ending queue (``NOTIFY_QUEUE``) end to end: devhost + emulator + Azurite's queue
service. A completed run and a failed run (neither with ``notify_url``) each put exactly one
message on the queue: Base64 (the queue extension's default encoding) of the run's JSON summary.
The test reads the queue with the Queue service REST API (peek, Shared Key)."""

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devhost.queue_output import parse_connection_string, signed_request
from scripts.devstack import Stack, wait_until
from tests.e2e.conftest import INPUT_FOLDER, make_stack
from tests.support import Azurite

pytestmark = pytest.mark.e2e

QUEUE = "batch-run-endings-e2e"


@pytest.fixture(scope="module")
def qstack(
    azurite: Azurite, sample_data: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    s = make_stack(
        tmp_path_factory.mktemp("notify-queue"),
        azurite,
        phase_seconds=0.3,
        settings={
            "SCHEDULED_INPUT_URI": "",
            "POLL_INTERVAL_SECONDS": "1",
            "SCORING_BLOB_PATH": "scoring-input-queue/{name}",
            "OUTPUT_URI_TEMPLATE": (
                "azureml://datastores/workspaceblobstore/paths/e2e-queue/{run_id}/predictions.csv"
            ),
            "NOTIFY_QUEUE": QUEUE,
        },
    )
    try:
        yield s
    finally:
        s.stop()


def _messages(azurite: Azurite) -> list[dict[str, Any]]:
    """Every message on the queue (peeked: they stay), decoded from Base64 and parsed."""
    conn = parse_connection_string(azurite.connection_string)
    url = f"{conn['QueueEndpoint']}/{QUEUE}/messages?peekonly=true&numofmessages=32"
    response = signed_request(requests.Session(), "GET", url, conn, b"")
    if response.status_code == 404:  # nothing queued yet: the binding creates the queue
        return []
    assert response.status_code == 200, response.text
    texts = re.findall(r"<MessageText>(.*?)</MessageText>", response.text, re.S)
    return [json.loads(base64.b64decode(t, validate=True)) for t in texts]


def _of(azurite: Azurite, run_id: str, timeout: float = 90) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        found[:] = [m for m in _messages(azurite) if m.get("run_id") == run_id]
        return bool(found)

    wait_until(arrived, timeout=timeout, interval=0.3, what=f"queue message of {run_id}")
    time.sleep(1.5)  # nothing else arrives later
    return [m for m in _messages(azurite) if m.get("run_id") == run_id]


def _start(stack: Stack, body: dict[str, Any]) -> str:
    resp = stack.api("POST", "runs", json={"endpoint_input_uri": INPUT_FOLDER, **body})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def test_completed_and_failed_runs_each_queue_one_summary(qstack: Stack, azurite: Azurite):
    existing = "e2e-queue/existing/predictions.csv"
    BlobServiceClient.from_connection_string(azurite.connection_string).get_blob_client(
        "azureml-blobstore", existing
    ).upload_blob(b"already here\n", overwrite=True)
    ok = _start(qstack, {})
    bad = _start(
        qstack, {"endpoint_output_uri": f"azureml://datastores/workspaceblobstore/paths/{existing}"}
    )
    done = qstack.wait_run(ok)
    failed = qstack.wait_run(bad)
    assert done["runtime_status"] == "Completed", done
    assert failed["runtime_status"] == "Failed", failed

    [summary] = _of(azurite, ok)
    assert summary["status"] == "Completed"
    assert summary["job_name"] == done["job_name"]
    assert summary["output_uri"] == done["output"]["output_uri"]
    assert summary["polls"] == done["output"]["polls"]
    assert summary["reason"] is None
    assert summary["version"] == 1

    [summary] = _of(azurite, bad)
    assert summary["status"] == "Failed"
    assert summary["reason"].startswith(f"Batch job {failed['job_name']} ended Failed")
    assert "notification" not in failed or failed["notification"] is None  # no notify_url
