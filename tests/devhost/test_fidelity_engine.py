"""The engine against DTFx and the Azure Storage tracking store, in process.

Each test cites the source (Azure/durabletask, DurableTask.AzureStorage 1.17.5 and
DurableTask.Core 2.17.1, the versions Azure/azure-functions-durable-extension v2.13.7 pins)
whose behaviour it reproduces.
"""

from collections.abc import Callable
from datetime import timedelta

from devhost.engine import Engine
from tests.devhost.conftest import START


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
