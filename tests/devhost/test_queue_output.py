"""devhost's queue output binding: a value set on ``func.Out`` lands on Azurite's queue service,
Base64-encoded as the Functions queue extension writes it (``devhost.queue_output``)."""

import base64
import contextlib
import re
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devhost.app_loader import load_app
from devhost.queue_output import parse_connection_string, put_message, signed_request
from scripts.devstack import (
    DEV_ACCOUNT,
    DEV_ACCOUNT_KEY,
    REPO_ROOT,
    ManagedProcess,
    free_port,
    http_ready,
)

APP = """
import azure.functions as func
import azure.durable_functions as df

app = df.DFApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.activity_trigger(input_name="payload")
@app.queue_output(arg_name="msg", queue_name="%TEST_QUEUE%", connection="AzureWebJobsStorage")
def enqueue(payload: dict, msg: func.Out[str]) -> str:
    if payload.get("send"):
        msg.set(payload["text"])
    return "ok"


@app.activity_trigger(input_name="payload")
@app.queue_output(arg_name="msg", queue_name="%TEST_QUEUE%", connection="AzureWebJobsStorage")
async def enqueue_async(payload: dict, msg: func.Out[str]) -> str:
    msg.set(payload["text"])
    return "ok"
"""


@contextlib.contextmanager
def _azurite_queue() -> Iterator[str]:
    port = free_port()
    location = Path(tempfile.mkdtemp(prefix="azurite-queue-"))
    proc = ManagedProcess(
        [
            str(REPO_ROOT / "node_modules" / ".bin" / "azurite-queue"),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(port),
            "--location",
            str(location),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ],
        name="azurite-queue",
        log_dir=location,
    ).start()
    try:
        proc.wait_ready(http_ready(f"http://127.0.0.1:{port}/{DEV_ACCOUNT}", ok=lambda s: s > 0))
        yield (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};"
            f"QueueEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT};"
        )
    finally:
        proc.stop()
        shutil.rmtree(location, ignore_errors=True)


@pytest.fixture(scope="module")
def queue_conn() -> Iterator[str]:
    with _azurite_queue() as conn:
        yield conn


def _peek(conn: str, queue: str) -> list[str]:
    """The queue's message texts as stored (peek, up to 32)."""
    endpoint = parse_connection_string(conn)["QueueEndpoint"]
    response = signed_request(
        requests.Session(),
        "GET",
        f"{endpoint}/{queue}/messages?peekonly=true&numofmessages=32",
        parse_connection_string(conn),
        b"",
    )
    assert response.status_code == 200, response.text
    return re.findall(r"<MessageText>(.*?)</MessageText>", response.text, re.S)


def test_value_set_on_out_is_put_base64_encoded(
    queue_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "function_app.py").write_text(textwrap.dedent(APP))
    index = load_app(tmp_path, isolate=True)
    monkeypatch.setenv("AzureWebJobsStorage", queue_conn)
    monkeypatch.setenv("TEST_QUEUE", "devhost-out-1")
    text = '{"run_id": "r1", "status": "Completed", "note": "<&>é"}'
    assert index.activities["enqueue"]({"send": True, "text": text}) == "ok"
    assert index.activities["enqueue"]({"send": False}) == "ok"  # nothing set: nothing queued
    stored = _peek(queue_conn, "devhost-out-1")
    assert stored == [base64.b64encode(text.encode()).decode()]
    assert base64.b64decode(stored[0]).decode() == text


def test_async_activity_output_is_put_after_it_returns(
    queue_conn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    (tmp_path / "function_app.py").write_text(textwrap.dedent(APP))
    index = load_app(tmp_path, isolate=True)
    monkeypatch.setenv("AzureWebJobsStorage", queue_conn)
    monkeypatch.setenv("TEST_QUEUE", "devhost-out-2")
    result = index.activities["enqueue_async"]({"text": "hello"})
    assert asyncio.run(result) == "ok"
    assert [base64.b64decode(t).decode() for t in _peek(queue_conn, "devhost-out-2")] == ["hello"]


def test_wrong_key_is_refused_naming_the_queue(queue_conn: str) -> None:
    bad = queue_conn.replace(DEV_ACCOUNT_KEY, base64.b64encode(b"x" * 64).decode())
    with pytest.raises(RuntimeError, match="devhost-out-3"):
        put_message(bad, "devhost-out-3", "x")
