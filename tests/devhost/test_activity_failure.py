"""An activity's exception in the form the Durable extension gives the orchestration."""

import json
from typing import Any

from devhost.activity import invoke_activity
from devhost.history import TASK_FAILED


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
