"""Activity payloads and blob dispatch as the Python worker and the host handle them."""

import json
import threading
from typing import Any

import azure.functions as func
import pytest
from azure.storage.blob import BlobServiceClient

from devhost.activity import invoke_activity
from devhost.app_loader import BlobTriggerSpec
from devhost.engine import Engine, VirtualClock
from devhost.episode import invoke_orchestrator
from devhost.history import TASK_COMPLETED
from devhost.triggers import BlobPoller


class Point:
    """A custom object the Durable SDK serializes with ``to_json``/``from_json``."""

    def __init__(self, x: int) -> None:
        self.x = x

    @staticmethod
    def to_json(obj: "Point") -> dict[str, int]:
        return {"x": obj.x}

    @staticmethod
    def from_json(data: dict[str, int]) -> "Point":
        return Point(data["x"])


def _no_loop() -> Any:
    raise AssertionError("no coroutine expected")


def test_activity_payloads_go_through_the_activity_trigger_converter() -> None:
    """Input decoded and result encoded by ``azure.functions.durable_functions``
    ``ActivityTriggerConverter`` (``df_loads`` with its fallback to the raw text for a string
    that is not JSON; ``df_dumps``, which serializes custom objects), as the worker does for an
    ``activityTrigger`` binding (azure-functions 1.26 ``durable_functions.py``)."""
    kind, fields = invoke_activity("mk", lambda value: Point(value["x"] + 1), '{"x": 1}', _no_loop)
    raw_kind, raw = invoke_activity("raw", lambda value: value, "not json", _no_loop)

    assert kind == TASK_COMPLETED
    result = json.loads(fields["Result"])
    assert result["__data__"] == {"x": 2}
    assert result["__class__"] == "Point"
    assert (raw_kind, json.loads(raw["Result"])) == (TASK_COMPLETED, "not json")


def test_an_orchestrator_gets_the_workers_orchestration_context() -> None:
    """The handle is called with ``OrchestrationTriggerConverter.decode``'s
    ``func.OrchestrationContext`` (its ``body`` is the context JSON), as the worker calls a
    ``DFApp`` orchestrator (azure-functions 1.26 ``durable_functions.py``)."""
    seen: list[Any] = []

    def handle(context: Any) -> str:
        seen.append(context)
        return json.dumps({"isDone": True, "actions": [], "output": 1})

    state = invoke_orchestrator("o", handle, '{"history": [], "input": null}')

    assert isinstance(seen[0], func.OrchestrationContext)
    assert json.loads(seen[0].body) == {"history": [], "input": None}
    assert state["output"] == 1


@pytest.mark.integration
def test_polled_blobs_are_invoked_concurrently(azurite: Any, tmp_path: Any) -> None:
    """Three new blobs run at the same time (each waits for the other two), as the host
    dispatches each blob trigger message on its own (``BlobPoller`` docstring: the blob-trigger
    queue and ``QueuesOptions.BatchSize``); one at a time, the barrier would time out."""
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client("concurrent")
    container.create_container()
    for name in ("a.csv", "b.csv", "c.csv"):
        container.upload_blob(name, b"1")
    engine = Engine(tmp_path / "s.sqlite", {}, {}, clock=VirtualClock())
    barrier = threading.Barrier(3, timeout=10)
    seen: list[str] = []

    def invoke(spec: Any, reason: str, provided: dict[str, Any]) -> None:
        seen.append(provided["blob"].name)
        barrier.wait()

    spec = BlobTriggerSpec(
        function_name="on_blob",
        path="concurrent/{name}",
        connection="S",
        arg_name="blob",
        function=None,
    )
    poller = BlobPoller(engine, [], invoke, interval=60)
    try:
        futures = poller.scan(spec, "concurrent/{name}", azurite.connection_string)
        for future in futures:
            future.result(timeout=20)  # a broken barrier raises here
        again = poller.scan(spec, "concurrent/{name}", azurite.connection_string)
    finally:
        poller.stop()
        engine.stop()
        container.delete_container()
        service.close()

    assert sorted(seen) == ["concurrent/a.csv", "concurrent/b.csv", "concurrent/c.csv"]
    assert again == []  # receipts: each version once
