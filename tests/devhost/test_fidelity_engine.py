"""The engine against DTFx and the Azure Storage tracking store, in process.

Each test cites the source (Azure/durabletask, DurableTask.AzureStorage 1.17.5 and
DurableTask.Core 2.17.1, the versions Azure/azure-functions-durable-extension v2.13.7 pins)
whose behaviour it reproduces.
"""

import json
from collections.abc import Callable, Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df

from devhost.clock import VirtualClock
from devhost.engine import Engine
from devhost.history import TASK_SCHEDULED, TIMER_CREATED, TIMER_FIRED
from tests.devhost.conftest import START
from tests.support import wait_until


def test_created_time_is_the_current_executions_start_after_continue_as_new(
    make_engine: Callable[..., Engine],
) -> None:
    """``createdTime`` moves to each new execution's ``ExecutionStarted``.

    Reproduces ``src/DurableTask.AzureStorage/Tracking/AzureTableTrackingStore.cs`` lines
    1042-1047 (tag durabletask.azurestorage-v1.17.5): every ``ExecutionStarted`` written to
    the instances table sets ``CreatedTime`` to its timestamp, continue_as_new included.
    """
    engine = make_engine()

    iid = engine.start_new("counter")  # three executions, one 10 s timer each
    status = engine.wait_for_completion(iid, timeout=10)

    assert status["output"] == 3
    assert status["createdTime"] == (START + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_custom_status_is_cleared_when_an_execution_has_not_set_one_yet(
    make_engine: Callable[..., Engine],
) -> None:
    """An episode whose SDK answer has no custom status stores null, not the previous value.

    Reproduces ``src/DurableTask.AzureStorage/Tracking/AzureTableTrackingStore.cs`` line 1002
    (v1.17.5: ``CustomStatus = newRuntimeState.Status ?? "null"`` on every update) with the
    extension setting it only when the SDK sends one (Azure/azure-functions-durable-extension
    ``src/WebJobs.Extensions.DurableTask/Listener/OutOfProcOrchestrationShim.cs`` lines 76-81,
    v2.13.7, on a fresh context per episode).
    """
    clock = VirtualClock(start=START)
    engine = make_engine(clock=clock)
    iid = engine.start_new("counter")  # sets {"n": n} after each 10 s timer, then continues
    wait_until(lambda: (engine.get_status(iid) or {}).get("runtimeStatus") == "Running")

    clock.advance(10)  # execution 1 sets {"n": 1}; execution 2 starts and sets nothing yet
    wait_until(lambda: (engine.get_status(iid) or {}).get("input") == json.dumps({"n": 1}))
    wait_until(lambda: len(engine.get_history_events(iid)) > 2)
    status = engine.get_status(iid) or {}

    assert status["customStatus"] is None


def _timer_app() -> dict[str, Callable[[str], str]]:
    app = df.DFApp()

    @app.orchestration_trigger(context_name="context")
    def cancel_then_wait(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
        timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=60))
        yield context.task_any([timer, context.wait_for_external_event("Go")])
        timer.cancel()
        yield context.wait_for_external_event("Done")
        return "done"

    @app.orchestration_trigger(context_name="context")
    def leave_timer_open(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
        timer = context.create_timer(context.current_utc_datetime + timedelta(seconds=60))
        yield context.task_any([timer, context.wait_for_external_event("Go")])
        return "returned"  # the timer is neither awaited nor canceled

    return {f.get_function_name(): f.get_user_function() for f in app.get_functions()}


def test_a_canceled_timer_still_fires_and_an_open_one_keeps_the_instance_running(
    tmp_path: Path,
) -> None:
    """A canceled timer fires anyway (one more replay); an uncanceled one holds completion.

    Reproduces Azure/durabletask (tag durabletask.core-v2.17.1)
    ``src/DurableTask.Core/TaskOrchestrationExecutor.cs`` lines 150-153 (the result is applied
    only when ``!this.context.HasOpenTasks``) and ``TaskOrchestrationContext.cs`` lines 258-268
    (canceling removes the timer from ``openTasks``; its message was already sent), with the
    extension creating then canceling the timer (Azure/azure-functions-durable-extension
    ``src/WebJobs.Extensions.DurableTask/Listener/OutOfProcOrchestrationShim.cs`` lines
    118-133, v2.13.7).
    """
    clock = VirtualClock(start=START)
    engine = Engine(
        state_path=tmp_path / "state.sqlite",
        orchestrators=_timer_app(),
        activities={},
        clock=clock,
    )
    engine.start()
    try:
        canceled = engine.start_new("cancel_then_wait")
        held = engine.start_new("leave_timer_open")
        wait_until(lambda: all(_created_timer(engine, i) for i in (canceled, held)))
        engine.raise_event(canceled, "Go")
        engine.raise_event(held, "Go")
        wait_until(lambda: all(_event_played(engine, i, 15) for i in (canceled, held)))
        held_before = (engine.get_status(held) or {}).get("runtimeStatus")
        clock.advance(60)
        wait_until(lambda: _event_played(engine, canceled, TIMER_FIRED))
        engine.raise_event(canceled, "Done")
        canceled_status = engine.wait_for_completion(canceled, timeout=10)
        held_status = engine.wait_for_completion(held, timeout=10)
    finally:
        engine.stop()

    assert held_before == "Running"
    assert held_status["output"] == "returned"
    assert canceled_status["output"] == "done"


def _created_timer(engine: Engine, iid: str) -> bool:
    return _event_played(engine, iid, TIMER_CREATED)


def _event_played(engine: Engine, iid: str, event_type: int) -> bool:
    return any(
        e["EventType"] == event_type and e.get("IsPlayed", True)
        for e in engine.get_history_events(iid)
    )


def test_terminate_is_a_message_the_next_episode_applies(sample_index: Any, tmp_path: Path) -> None:
    """The terminate call only queues the request; the instance ends on its next episode, and the
    orchestrator does not run in it.

    Reproduces Azure/durabletask v2.17.1 ``src/DurableTask.Core/TaskHubClient.cs`` lines
    762-771 (``TerminateInstanceAsync`` sends an ``ExecutionTerminatedEvent`` message),
    ``TaskOrchestrationExecutor.cs`` lines 213-215 and ``TaskOrchestrationContext.cs`` lines
    553-556 (that event completes the orchestration as Terminated with the reason).
    """
    engine = Engine(
        tmp_path / "t.sqlite",
        sample_index.orchestrators,
        sample_index.activities,
        clock=VirtualClock(start=START, auto_advance=True),
    )
    try:
        iid = engine.start_new("chain", "term-1", 1)
        engine.terminate(iid, "stop please")
        before = (engine.get_status(iid) or {})["runtimeStatus"]
        engine.start()  # the scheduler plays the queued events
        after = engine.wait_for_completion(iid, timeout=10)
        kinds = [e["EventType"] for e in engine.get_history_events(iid)]
    finally:
        engine.stop()

    assert before == "Pending"  # not Terminated until an episode applies the request
    assert after["runtimeStatus"] == "Terminated"
    assert after["output"] == "stop please"
    assert TASK_SCHEDULED not in kinds  # the orchestrator never ran
