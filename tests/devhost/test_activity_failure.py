"""An activity's exception in the form the Durable extension gives the orchestration."""

import json
import threading
from datetime import timedelta
from typing import Any

from devhost.activity import invoke_activity
from devhost.function_settings import function_timeout
from devhost.history import TASK_COMPLETED, TASK_FAILED


def _boom(_payload: Any) -> None:
    raise ValueError("bad input")


def test_activity_failure_reason_has_the_extensions_two_spaces_and_dotnet_details() -> None:
    """``Activity function 'X' failed:  ValueError: bad input`` with .NET exception JSON.

    Reproduces Azure/azure-functions-durable-extension v2.13.7
    ``src/WebJobs.Extensions.DurableTask/OutOfProcExceptionHelpers.cs`` lines 10-14 and 82-95
    (the message is cut after ``"\\nException:"``, its leading space kept) and
    ``Listener/TaskActivityShim.cs`` lines 100-124 (``TaskFailureException($"Activity function
    '{name}' failed: {message}", Utils.SerializeCause(...))``), fed by the Python worker's
    ``Dispatcher._serialize_exception`` (``f"{type(exc).__name__}: {exc}"``) and the host's
    ``RpcException`` (``"Result: {result}\\nException: {message}\\nStack: {stack}"``).
    """
    kind, fields = invoke_activity("check_job", _boom, "null", run=lambda: lambda c: c)

    details = json.loads(fields["Details"])

    assert kind == TASK_FAILED
    assert fields["Reason"] == "Activity function 'check_job' failed:  ValueError: bad input"
    assert details["$type"] == "System.Exception, System.Private.CoreLib"
    assert details["Message"] == " ValueError: bad input"
    assert details["InnerException"]["RemoteMessage"] == "ValueError: bad input"
    assert details["InnerException"]["Message"].startswith(
        "Result: Failure\nException: ValueError: bad input\nStack: "
    )


def test_an_activity_past_function_timeout_fails_with_the_hosts_message() -> None:
    """Past host.json ``functionTimeout`` the activity fails; within it, it completes.

    Reproduces Azure/azure-webjobs-sdk ``src/Microsoft.Azure.WebJobs.Host/Executors/
    FunctionExecutor.cs`` (``TryHandleTimeoutAsync``: ``FunctionTimeoutException("Timeout value
    of {timeout} was exceeded by function: {ShortName}")``), reported by
    Azure/azure-functions-durable-extension ``Listener/TaskActivityShim.cs`` lines 100-124
    (v2.13.7, ``FunctionTimeoutError`` → ``Activity function '{name}' failed: {message}``).
    """
    release = threading.Event()

    def slow(_payload: Any) -> str:
        release.wait(5)
        return "late"

    try:
        kind, fields = invoke_activity(
            "slow", slow, "null", run=lambda: lambda c: c, timeout=timedelta(seconds=0.2)
        )
    finally:
        release.set()
    fast = invoke_activity("fast", lambda _p: 1, "null", lambda: lambda c: c, timeout=timedelta(1))

    assert kind == TASK_FAILED
    assert fields["Reason"] == (
        "Activity function 'slow' failed: Timeout value of 00:00:00.2000000 was exceeded by "
        "function: Functions.slow"
    )
    assert fast == (TASK_COMPLETED, {"Result": "1"})
    assert function_timeout("00:10:00") == timedelta(minutes=10)
    assert function_timeout("1.02:00:00") == timedelta(days=1, hours=2)
    assert function_timeout("-1") is None
    assert function_timeout(None) is None
