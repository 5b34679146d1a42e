"""devhost runs durable entities through the SDK's out-of-process entity protocol.

The entity batch JSON, the ``EventSent`` + ``EventRaised`` history of a call and the response
message are the Durable extension's (sources cited in ``devhost/entities.py``); the app's entity
and orchestrators are the real SDK's ``Entity.handle`` and ``TaskOrchestrationExecutor``.
"""

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devhost.app_loader import AppIndex, load_app
from devhost.engine import Engine, VirtualClock
from devhost.history import EVENT_RAISED
from tests.devhost.conftest import START
from tests.support import wait_until

ENTITY_APP = Path(__file__).resolve().parent / "entity_app"
EVENT_SENT = 14


@pytest.fixture(scope="module")
def entity_index() -> AppIndex:
    return load_app(ENTITY_APP)


@pytest.fixture
def make(entity_index: AppIndex, tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    engines: list[Engine] = []

    def build(*, start: bool = True) -> Engine:
        engine = Engine(
            tmp_path / "state.sqlite",
            entity_index.orchestrators,
            entity_index.activities,
            clock=VirtualClock(start=START, auto_advance=True),
            entities=entity_index.entities,
        )
        if start:
            engine.start()
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.stop()


def _state(engine: Engine, key: str) -> Any:
    return engine.entities.read(f"@counter@{key}")


def test_entity_name_is_indexed_lower_case(entity_index: AppIndex) -> None:
    assert set(entity_index.entities) == {"counter"}


def test_calls_signals_and_errors_go_through_the_sdk(make: Callable[..., Engine]) -> None:
    engine = make()

    iid = engine.start_new("use_counter", input="k1")
    status = engine.wait_for_completion(iid, timeout=20)

    assert status["runtimeStatus"] == "Completed", status
    # The signal sent before the first call is processed first (FIFO per entity).
    assert status["output"]["first"] == 10
    assert status["output"]["second"] == 15
    assert "counter refuses" in status["output"]["error"]
    assert status["output"]["third"] == 15  # the failed operation left the state alone
    # The signal of the completing episode is delivered too.
    wait_until(lambda: _state(engine, "k1") == (True, 115), timeout=10)


def test_history_holds_event_sent_and_the_response_event(make: Callable[..., Engine]) -> None:
    engine = make()
    iid = engine.start_new("read_counter", input="k2")
    engine.wait_for_completion(iid, timeout=20)

    events = engine.get_history_events(iid)
    sent = [e for e in events if e["EventType"] == EVENT_SENT]
    assert len(sent) == 1
    assert sent[0]["InstanceId"] == "@counter@k2"
    assert sent[0]["Name"] == "op"
    message = json.loads(sent[0]["Input"])
    assert message["op"] == "get"
    assert message["parent"] == iid
    raised = [e for e in events if e["EventType"] == EVENT_RAISED]
    assert [e["Name"] for e in raised] == [message["id"]]
    assert json.loads(raised[0]["Input"]) == {"result": "0"}


def test_state_and_queued_messages_survive_a_restart(make: Callable[..., Engine]) -> None:
    first = make()
    iid = first.start_new("use_counter", input="k3")
    first.wait_for_completion(iid, timeout=20)
    wait_until(lambda: _state(first, "k3") == (True, 115), timeout=10)
    first.stop()

    # A message queued while no engine runs is processed by the next one.
    idle = make(start=False)
    idle.entities.signal("@counter@k3", "add", json.dumps(json.dumps(1)))
    assert idle.entities.pending() == 1
    idle.stop()

    second = make()
    wait_until(lambda: second.entities.pending() == 0, timeout=10)
    iid = second.start_new("read_counter", input="k3")
    status = second.wait_for_completion(iid, timeout=20)
    assert status["output"] == 116
