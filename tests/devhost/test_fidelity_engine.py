"""The engine against DTFx and the Azure Storage tracking store, in process.

Each test cites the source (Azure/durabletask, DurableTask.AzureStorage 1.17.5 and
DurableTask.Core 2.17.1, the versions Azure/azure-functions-durable-extension v2.13.7 pins)
whose behaviour it reproduces.
"""

from collections.abc import Callable
from datetime import timedelta

from devhost.clock import VirtualClock
from devhost.engine import Engine
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
    wait_until(lambda: (engine.get_status(iid) or {}).get("input") == {"n": 1})
    wait_until(lambda: len(engine.get_history_events(iid)) > 2)
    status = engine.get_status(iid) or {}

    assert status["customStatus"] is None
