"""Admission control in the product orchestrator: the real bindings, the ``endpoint_slots``
entity run by devhost's engine, a scripted endpoint, virtual time."""

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from activities import admission as admission_activities
from batch_runs import admission
from devhost.engine import Engine, VirtualClock
from orchestrators import batch_run, endpoint_slots
from tests.orchestration.conftest import (
    ACTIVITIES,
    T0,
    FakeEndpoint,
    _binding,
    clear_app_caches,
    handle,
    settings_for,
)
from tests.orchestration.scripted_endpoint import ScriptedEndpoint
from tests.support import wait_until

PARAMS = {
    "endpoint_input_uri": "azureml://datastores/workspaceblobstore/paths/in/",
    "poll_interval": 60,
}
SLOTS = endpoint_slots.endpoint_slots.build().get_user_function()


@pytest.fixture
def make(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[..., tuple[Engine, FakeEndpoint, str]]]:
    started: list[tuple[Engine, ScriptedEndpoint]] = []

    def build(script: list[Any], limit: str = "1") -> tuple[Engine, FakeEndpoint, str]:
        fake = FakeEndpoint(script=list(script), per_job=True)
        endpoint = ScriptedEndpoint(fake).start()
        for name, value in {
            **settings_for(endpoint),
            "MAX_ACTIVE_JOBS_PER_ENDPOINT": limit,
        }.items():
            monkeypatch.setenv(name, value)
        clear_app_caches()
        engines: list[Engine] = []

        def find_ended(run_ids: list[str]) -> list[str]:
            # What find_ended_runs answers, asked of this engine instead of a Durable client.
            statuses = {i: (engines[0].get_status(i) or {}).get("runtimeStatus") for i in run_ids}
            return [i for i, s in statuses.items() if s not in ("Pending", "Running")]

        engine = Engine(
            ":memory:",
            {batch_run.ORCHESTRATOR_NAME: handle(batch_run.batch_endpoint_run)},
            {
                **ACTIVITIES,
                admission_activities.PLAN_ACTIVITY: _binding(admission_activities.plan_admission),
                admission_activities.FIND_ENDED_ACTIVITY: find_ended,
            },
            clock=VirtualClock(start=T0, auto_advance=True),
            entities={endpoint_slots.ENTITY_NAME: SLOTS},
        )
        engines.append(engine)
        engine.start()
        started.append((engine, endpoint))
        target = f"@endpoint_slots@{admission.slot_key(f'{endpoint.base_url}/jobs')}"
        return engine, fake, target

    yield build
    for engine, endpoint in started:
        engine.stop()
        endpoint.stop()
    clear_app_caches()


def _custom(engine: Engine, iid: str) -> dict[str, Any]:
    status = engine.get_status(iid)
    return dict((status or {}).get("customStatus") or {})


def _empty(engine: Engine, target: str) -> bool:
    exists, state = engine.entities.read(target)
    return exists and state["holders"] == [] and state["queue"] == []


def test_the_second_run_waits_for_the_first_then_both_complete(make) -> None:
    engine, fake, target = make(["Running", "Running", "Completed"])

    first = engine.start_new(batch_run.ORCHESTRATOR_NAME, input=PARAMS)
    wait_until(lambda: _custom(engine, first).get("phase") in ("waiting", "polling"), timeout=20)
    second = engine.start_new(batch_run.ORCHESTRATOR_NAME, input=PARAMS)
    wait_until(lambda: bool(_custom(engine, second).get("queue_position")), timeout=20)
    waiting = _custom(engine, second)

    assert waiting["status_message"] == "waiting for capacity (position 1)"
    assert engine.wait_for_completion(first, timeout=30)["runtimeStatus"] == "Completed"
    done = engine.wait_for_completion(second, timeout=30)
    assert done["runtimeStatus"] == "Completed", done["output"]
    assert len(fake.invokes) == 2
    wait_until(lambda: _empty(engine, target), timeout=10)


def test_a_failed_run_releases_its_slot(make) -> None:
    engine, fake, target = make(["Failed"])

    ids = [engine.start_new(batch_run.ORCHESTRATOR_NAME, input=PARAMS) for _ in range(3)]

    assert [engine.wait_for_completion(i, timeout=30)["runtimeStatus"] for i in ids] == [
        "Failed"
    ] * 3
    assert len(fake.invokes) == 3
    wait_until(lambda: _empty(engine, target), timeout=10)


def test_cancel_while_waiting_ends_the_run_without_a_job(make) -> None:
    engine, fake, target = make(["Running"] * 5 + ["Completed"])
    first = engine.start_new(batch_run.ORCHESTRATOR_NAME, input=PARAMS)
    wait_until(lambda: _custom(engine, first).get("phase") in ("waiting", "polling"), timeout=20)
    second = engine.start_new(batch_run.ORCHESTRATOR_NAME, input=PARAMS)
    wait_until(lambda: _custom(engine, second).get("queue_position") == 1, timeout=20)

    engine.raise_event(second, "cancel", {"requested_at": T0.isoformat()})
    status = engine.wait_for_completion(second, timeout=30)

    assert status["runtimeStatus"] == "Failed"
    assert "cancelled while it waited for capacity" in json.dumps(status["output"])
    assert engine.wait_for_completion(first, timeout=30)["runtimeStatus"] == "Completed"
    assert len(fake.invokes) == 1
    wait_until(lambda: _empty(engine, target), timeout=10)


def test_without_the_setting_no_entity_is_used(make) -> None:
    engine, fake, target = make(["Completed"], limit="")

    iid = engine.start_new(batch_run.ORCHESTRATOR_NAME, input=PARAMS)

    assert engine.wait_for_completion(iid, timeout=30)["runtimeStatus"] == "Completed"
    assert len(fake.invokes) == 1
    assert engine.entities.read(target) == (False, None)
    assert engine.entities.pending() == 0


def test_a_terminated_holder_is_released_by_the_head_of_the_queue(make) -> None:
    engine, fake, target = make(["Running"])  # the first job never ends
    first = engine.start_new(batch_run.ORCHESTRATOR_NAME, input=PARAMS)
    wait_until(lambda: _custom(engine, first).get("phase") in ("waiting", "polling"), timeout=20)
    second = engine.start_new(batch_run.ORCHESTRATOR_NAME, input=PARAMS)
    wait_until(lambda: _custom(engine, second).get("queue_position") == 1, timeout=20)

    engine.terminate(first, "operator")  # never sends its release: a leak until reconciled
    wait_until(lambda: _custom(engine, second).get("phase") == "polling", timeout=30)

    exists, state = engine.entities.read(target)
    assert exists
    assert state["holders"] == [second]
    assert len(fake.invokes) == 2
