"""An activity's exception as the Durable extension reports it to the orchestration.

The Python worker sends ``RpcException(message=f"{type(exc).__name__}: {exc}", stack_trace)``
(Azure/azure-functions-python-worker ``azure_functions_worker/dispatcher.py``,
``Dispatcher._serialize_exception``); the host wraps it as ``"Result: Failure\\nException:
{message}\\nStack: {stack}"`` (Azure/azure-functions-host
``src/WebJobs.Script/Workers/Rpc/MessageExtensions/RpcException.cs``); the extension cuts the
text between ``"\\nException:"`` and ``"\\nStack:"`` (leading space included), so the reason has
two spaces after ``failed:``, and serializes the new exception with its error data converter
(``TypeNameHandling.Objects``) as the details (Azure/azure-functions-durable-extension v2.13.7
``src/WebJobs.Extensions.DurableTask/OutOfProcExceptionHelpers.cs`` lines 10-14, 82-95 and
``Listener/TaskActivityShim.cs`` lines 100-124). The details here have the fields of .NET's
``Exception`` serialization; the host-side .NET stack traces are left null.
"""

import json
import traceback
from typing import Any

__all__ = ["activity_failure"]

_RPC_TYPE = "Microsoft.Azure.WebJobs.Script.Workers.Rpc.RpcException"
_COR_E_EXCEPTION = -2146233088  # System.Exception's HResult


def _dotnet_exception(type_name: str, assembly: str, message: str, inner: Any) -> dict[str, Any]:
    return {
        "$type": f"{type_name}, {assembly}",
        "ClassName": type_name,
        "Message": message,
        "Data": None,
        "InnerException": inner,
        "HelpURL": None,
        "StackTraceString": None,
        "RemoteStackTraceString": None,
        "RemoteStackIndex": 0,
        "ExceptionMethod": None,
        "HResult": _COR_E_EXCEPTION,
        "Source": None,
        "WatsonBuckets": None,
    }


def activity_failure(name: str, exc: BaseException) -> tuple[str, str]:
    """``(Reason, Details)`` of the ``TaskFailed`` event for activity ``name`` raising ``exc``."""
    message = f"{type(exc).__name__}: {exc}"
    stack = "".join(traceback.format_tb(exc.__traceback__))
    rpc = _dotnet_exception(
        _RPC_TYPE,
        "Microsoft.Azure.WebJobs.Script",
        f"Result: Failure\nException: {message}\nStack: {stack}",
        None,
    )
    rpc.update({"IsUserException": True, "RemoteStackTrace": stack, "RemoteMessage": message})
    friendly = " " + message  # the text after "\nException:", its space included
    details = _dotnet_exception("System.Exception", "System.Private.CoreLib", friendly, rpc)
    return f"Activity function '{name}' failed: {friendly}", json.dumps(details)
