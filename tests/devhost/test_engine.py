"""In-process tests of the durable engine driving the real SDK (sample app, virtual clock)."""

import json
import threading
import time
from datetime import timedelta

import pytest

from devhost.engine import (
    Engine,
    InstanceExistsError,
    InstanceGoneError,
    InstanceNotFoundError,
    OrchestratorNotFoundError,
    VirtualClock,
)
from tests.devhost.conftest import START
from tests.support import wait_until


def _status(engine: Engine, iid: str) -> str:
    status = engine.get_status(iid)
    assert status is not None
    return str(status["runtimeStatus"])


def test_activity_chain_completes_with_outputs(make_engine):
    engine = make_engine()

    iid = engine.start_new("chain", input=1)
    status = engine.wait_for_completion(iid, timeout=10)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == {"a": 2, "b": 3, "c": {"echo": {"b": 3}}}
    assert status["input"] == "1"  # the SDK client's JSON text, as in Azure
    assert status["name"] == "chain"
    assert status["createdTime"].startswith("2026-01-01T00:00:00")


def test_retry_succeeds_after_failures_using_virtual_retry_timers(make_engine, sample_index):
    engine = make_engine()

    iid = engine.start_new("with_retry", input={"key": "retry-ok", "fail_times": 2, "attempts": 3})
    status = engine.wait_for_completion(iid, timeout=10)

    assert status["output"]["result"] == "ok after 3"
    assert status["output"]["after"] == 42
    # Two 5 s retry intervals of virtual time passed before the third attempt.
    assert status["output"]["at"] == (START + timedelta(seconds=10)).isoformat()


def test_retry_exhausts_attempts_and_surfaces_the_activity_error(make_engine):
    engine = make_engine()

    iid = engine.start_new("with_retry", input={"key": "retry-no", "fail_times": 9, "attempts": 3})
    status = engine.wait_for_completion(iid, timeout=10)

    assert status["output"] == {
        "error": "Activity function 'flaky' failed:  RuntimeError: flaky failure 3 "
    }
    events = engine.get_history_events(iid)
    scheduled = [e for e in events if e["EventType"] == 4 and e["Name"] == "flaky"]
    timers = [e for e in events if e["EventType"] == 10]
    assert len(scheduled) == 3  # three attempts
    assert len(timers) == 3  # a retry timer after every failure, the last one included


def test_durable_timer_waits_virtual_time(make_engine):
    engine = make_engine()

    iid = engine.start_new("sleeper", input=3600)
    status = engine.wait_for_completion(iid, timeout=10)

    assert status["output"] == 3600.0
    assert engine.clock.now() >= START + timedelta(hours=1)


def test_manual_clock_fires_timer_only_after_advance(make_engine):
    clock = VirtualClock(start=START, auto_advance=False)
    engine = make_engine(clock=clock)

    iid = engine.start_new("sleeper", input=60)
    wait_until(lambda: _status(engine, iid) == "Running", timeout=5)
    clock.advance(30)
    with pytest.raises(TimeoutError):
        engine.wait_for_completion(iid, timeout=0.5)
    clock.advance(30)
    status = engine.wait_for_completion(iid, timeout=5)

    assert status["output"] == 60.0


def test_sub_orchestrations_with_and_without_retry(make_engine):
    engine = make_engine()

    iid = engine.start_new("parent")
    status = engine.wait_for_completion(iid, timeout=10)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"]["child"] == {"a": 11, "b": 12, "c": {"echo": {"b": 12}}}
    assert status["output"]["failed"] == "Orchestrator function 'boom' failed: kaput "
    assert status["output"]["flaky_child"] == "ok after 1"
    children = engine.list_instances(instance_id_prefix=f"{iid}:")
    assert {c["name"] for c in children} == {"chain", "boom", "with_retry"}


def test_external_event_completes_waiting_instance(make_engine):
    engine = make_engine(clock=VirtualClock(start=START))

    iid = engine.start_new("waiter")
    wait_until(lambda: _status(engine, iid) == "Running", timeout=5)
    engine.raise_event(iid, "Go", {"value": 7})
    status = engine.wait_for_completion(iid, timeout=5)

    assert status["output"] == {"value": 7}


def test_event_raised_before_wait_is_buffered(make_engine):
    engine = make_engine(clock=VirtualClock(start=START))

    iid = engine.start_new("waiter")
    engine.raise_event(iid, "Go", "early")  # may arrive in the very first episode
    status = engine.wait_for_completion(iid, timeout=5)

    assert status["output"] == "early"


def test_task_any_event_wins_and_cancels_the_timer(make_engine):
    clock = VirtualClock(start=START)
    engine = make_engine(clock=clock)

    iid = engine.start_new("approval")
    wait_until(lambda: (engine.get_status(iid) or {}).get("customStatus") == {"phase": "waiting"})
    engine.raise_event(iid, "Approve", "yes")
    status = engine.wait_for_completion(iid, timeout=5)

    assert status["output"] == {"approved": "yes"}
    assert status["customStatus"] == {"phase": "approved"}
    assert clock.now() == START  # completed without the one-hour timer firing


def test_task_any_timer_wins_when_no_event(make_engine):
    engine = make_engine()

    iid = engine.start_new("approval")
    status = engine.wait_for_completion(iid, timeout=10)

    assert status["output"] == {"approved": None}
    assert status["customStatus"] == {"phase": "timed out"}


def test_concurrent_with_retry_calls_allocate_ids_as_the_sdk_does(make_engine):
    engine = make_engine()

    iid = engine.start_new("retry_fan_out")
    status = engine.wait_for_completion(iid, timeout=10)

    # i=3 fails 3 times with 3 attempts: the task_all fails fast once its retries are exhausted.
    assert status["runtimeStatus"] == "Completed", status
    assert status["output"]["first"] == (
        "Activity function 'flaky' failed:  RuntimeError: flaky failure 3 "
    )
    assert status["output"]["second"] == ["ok after 2", "ok after 2"]


def test_task_all_fan_out(make_engine):
    engine = make_engine()

    iid = engine.start_new("fan_out", input=20)
    status = engine.wait_for_completion(iid, timeout=10)

    assert status["output"] == sum(i * i for i in range(20))


def test_continue_as_new_keeps_id_and_truncates_history(make_engine):
    engine = make_engine()

    iid = engine.start_new("counter")
    status = engine.wait_for_completion(iid, timeout=10)

    assert status["output"] == 3
    assert status["customStatus"] == {"n": 3}
    assert json.loads(status["input"]) == {"n": 2}  # the last execution's input, as text
    started = [e for e in engine.get_history_events(iid) if e["EventType"] == 0]
    assert len(started) == 1


def test_orchestrator_exception_marks_failed_with_message(make_engine):
    engine = make_engine()

    iid = engine.start_new("boom")
    status = engine.wait_for_completion(iid, timeout=10)

    assert status["runtimeStatus"] == "Failed"
    assert status["output"] == "Orchestrator function 'boom' failed: kaput"


def test_terminate_suspend_resume_and_purge(make_engine):
    engine = make_engine(clock=VirtualClock(start=START))
    a = engine.start_new("waiter", instance_id="a")
    b = engine.start_new("waiter", instance_id="b")
    wait_until(lambda: _status(engine, a) == "Running" and _status(engine, b) == "Running")

    engine.terminate(a, "stop it")
    engine.suspend(b, "pause")
    engine.raise_event(b, "Go", 1)
    suspended = _status(engine, b)
    engine.resume(b, "go on")
    done_b = engine.wait_for_completion(b, timeout=5)
    done_a = engine.wait_for_completion(a, timeout=5)

    assert suspended == "Suspended"
    assert done_b["output"] == 1
    assert done_a["runtimeStatus"] == "Terminated"
    assert done_a["output"] == "stop it"
    with pytest.raises(InstanceGoneError):
        engine.terminate(a, "again")
    assert engine.purge(a) is True
    assert engine.get_status(a) is None
    assert engine.purge(a) is False
    with pytest.raises(InstanceNotFoundError):
        engine.raise_event("nope", "Go")


def test_instance_id_reuse_follows_non_running_states(make_engine):
    engine = make_engine(clock=VirtualClock(start=START))
    engine.start_new("waiter", instance_id="same")

    with pytest.raises(InstanceExistsError):
        engine.start_new("waiter", instance_id="same")
    engine.raise_event("same", "Go", "first")
    engine.wait_for_completion("same", timeout=5)
    engine.start_new("chain", instance_id="same", input=0)
    status = engine.wait_for_completion("same", timeout=5)

    assert status["name"] == "chain"
    assert status["output"]["a"] == 1
    with pytest.raises(OrchestratorNotFoundError):
        engine.start_new("no_such_orchestrator")


def test_status_with_history_and_list_filters(make_engine):
    engine = make_engine()
    iid = engine.start_new("chain", input=1)
    engine.wait_for_completion(iid, timeout=10)
    failed = engine.start_new("boom")
    engine.wait_for_completion(failed, timeout=10)

    status = engine.get_status(iid, show_history=True, show_history_output=True)
    completed = engine.list_instances(runtime_status=["Completed"])

    assert status is not None
    kinds = [h["EventType"] for h in status["history"]]
    assert kinds[0] == "ExecutionStarted"
    assert kinds[-1] == "ExecutionCompleted"
    assert kinds.count("TaskCompleted") == 3
    results = [h.get("Result") for h in status["history"] if h["EventType"] == "TaskCompleted"]
    assert results[0] == 2
    assert [s["instanceId"] for s in completed] == [iid]
    assert len(engine.list_instances(top=1)) == 1


def test_substituted_activities_are_used(make_engine):
    calls: list[int] = []

    def fake_add_one(value):
        calls.append(value)
        return value + 100

    engine = make_engine(activities={"add_one": fake_add_one, "async_echo": lambda v: v})
    iid = engine.start_new("chain", input=1)
    status = engine.wait_for_completion(iid, timeout=10)

    assert status["output"] == {"a": 101, "b": 201, "c": {"b": 201}}
    assert calls == [1, 101]


def test_missing_activity_fails_the_task_not_the_engine(make_engine):
    engine = make_engine(activities={})

    iid = engine.start_new("boom")
    status = engine.wait_for_completion(iid, timeout=10)

    assert status["runtimeStatus"] == "Failed"
    assert "add_one" in status["output"]


@pytest.mark.parametrize(
    ("name", "input_"),
    [
        ("chain", 3),
        ("with_retry", {"key": "replay", "fail_times": 1, "attempts": 3}),
        ("parent", None),
        ("fan_out", 5),
        ("approval", None),
        ("retry_fan_out", None),
    ],
)
def test_recorded_history_replays_through_the_sdk_to_the_same_result(
    make_engine, sample_index, name, input_
):
    """The engine's history is one the SDK replays deterministically to the same output."""
    engine = make_engine()
    iid = engine.start_new(name, input=input_)
    status = engine.wait_for_completion(iid, timeout=10)
    history = [e for e in engine.get_history_events(iid) if e["EventType"] not in (1, 2, 3)]
    context = {
        "history": [
            *history,
            {
                "EventType": 12,
                "EventId": -1,
                "IsPlayed": False,
                "Timestamp": "2030-01-01T00:00:00.000000Z",
            },
        ],
        "instanceId": iid,
        "isReplaying": False,
        "parentInstanceId": None,
        "input": json.dumps(input_) if input_ is not None else None,
        "upperSchemaVersion": 1,
        "upperSchemaVersionNew": 2,
    }

    state = json.loads(sample_index.orchestrators[name](json.dumps(context)))

    assert state["isDone"] is True
    assert state.get("output") == status["output"]


def test_state_survives_engine_restart(make_engine, tmp_path):
    state = tmp_path / "restart.sqlite"
    clock = VirtualClock(start=START)
    first = make_engine(clock=clock, state=state)
    iid = first.start_new("sleeper", input=600)
    wait_until(lambda: _status(first, iid) == "Running")
    first.stop()

    clock.advance(600)
    second = make_engine(clock=clock, state=state)
    status = second.wait_for_completion(iid, timeout=10)

    assert status["output"] == 600.0


def test_throughput_hundreds_of_concurrent_instances(make_engine, capsys):
    engine = make_engine(max_concurrent_activities=8)
    count = 300
    started = time.monotonic()

    ids = [
        engine.start_new(
            "with_retry" if i % 3 == 0 else "chain",
            input={"key": f"tp-{i}", "fail_times": 1, "attempts": 2} if i % 3 == 0 else i,
        )
        for i in range(count)
    ]
    statuses = [engine.wait_for_completion(i, timeout=120) for i in ids]
    elapsed = time.monotonic() - started

    assert all(s["runtimeStatus"] == "Completed" for s in statuses)
    with capsys.disabled():
        print(
            f"\n[devhost throughput] {count} instances in {elapsed:.1f}s "
            f"({count / elapsed:.0f} instances/s)"
        )


def test_engine_rejects_bad_configuration(tmp_path):
    with pytest.raises(ValueError, match="max_concurrent_activities"):
        Engine(tmp_path / "x.sqlite", {}, {}, max_concurrent_activities=0)


def test_wait_for_completion_times_out_for_running_instance(make_engine):
    engine = make_engine(clock=VirtualClock(start=START))
    iid = engine.start_new("waiter")

    with pytest.raises(TimeoutError, match=iid):
        engine.wait_for_completion(iid, timeout=0.3)


def test_concurrent_raise_events_all_delivered(make_engine):
    engine = make_engine(clock=VirtualClock(start=START))
    ids = [engine.start_new("waiter") for _ in range(20)]
    threads = [
        threading.Thread(target=engine.raise_event, args=(i, "Go", n)) for n, i in enumerate(ids)
    ]

    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [engine.wait_for_completion(i, timeout=10)["output"] for i in ids] == list(range(20))


def test_any_state_policy_replaces_a_running_instance(make_engine):
    engine = make_engine(clock=VirtualClock(start=START), replace_running=True)
    engine.start_new("waiter", instance_id="any")
    wait_until(lambda: _status(engine, "any") == "Running")

    engine.start_new("chain", instance_id="any", input=5)
    status = engine.wait_for_completion("any", timeout=5)

    assert status["name"] == "chain"
    assert status["output"]["a"] == 6
