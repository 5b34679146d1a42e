"""Running one activity function: decoded input in, a ``TaskCompleted``/``TaskFailed`` out."""

import inspect
import logging
import threading
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from devhost.failures import activity_failure
from devhost.history import TASK_COMPLETED, TASK_FAILED
from devhost.logs import function_invocation
from devhost.worker_io import activity_input, activity_output

__all__ = ["invoke_activity"]

logger = logging.getLogger(__name__)

#: How an awaitable result is run to completion (``LoopThread.run``).
RunCoroutine = Callable[[Coroutine[Any, Any, Any]], Any]


def invoke_activity(
    name: str,
    fn: Callable[[Any], Any] | None,
    input_json: str | None,
    run: Callable[[], RunCoroutine],
    *,
    timeout: timedelta | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run the activity ``fn`` on ``input_json``; return the event type and its fields.

    Args:
        name: the activity's function name (for logs and the failure reason).
        fn: the activity (None: the app has none of that name, a ``TaskFailed``).
        input_json: the serialized input (decoded and the result encoded by the worker's
            ``ActivityTriggerConverter``, ``devhost.worker_io``).
        run: gives the runner for an ``async def`` activity's coroutine.
        timeout: host.json ``functionTimeout`` (None: unlimited). Past it the activity fails as
            the host's ``FunctionTimeoutException`` does (Azure/azure-webjobs-sdk
            ``FunctionExecutor.TryHandleTimeoutAsync``: "Timeout value of {timeout} was exceeded
            by function: Functions.{name}"); the extension reports it as a failure (Azure/azure-
            functions-durable-extension ``Listener/TaskActivityShim.cs`` lines 100-124, v2.13.7,
            ``FunctionTimeoutError``). Azure then restarts the worker process; devhost cannot stop
            a thread, so the call runs on in the background and its result is dropped.

    Returns:
        ``(TASK_COMPLETED, {"Result": ...})`` or ``(TASK_FAILED, {"Reason", "Details"})``.
    """
    if fn is None:
        reason = f"The function '{name}' doesn't exist, is disabled, or is not an activity"
        return TASK_FAILED, {"Reason": reason, "Details": ""}
    if timeout is not None:
        return _with_timeout(name, fn, input_json, run, timeout)
    return _invoke(name, fn, input_json, run)


def _invoke(
    name: str, fn: Callable[[Any], Any], input_json: str | None, run: Callable[[], RunCoroutine]
) -> tuple[int, dict[str, Any]]:
    try:
        with function_invocation(name, "(null)"):
            result = fn(activity_input(input_json))
            if inspect.isawaitable(result):
                result = run()(_await(result))
            result_json = activity_output(result)
    except Exception as exc:
        reason, details = activity_failure(name, exc)
        logger.warning("Activity %s failed: %s", name, exc)
        return TASK_FAILED, {"Reason": reason, "Details": details}
    return TASK_COMPLETED, {"Result": result_json}


def _with_timeout(
    name: str,
    fn: Callable[[Any], Any],
    input_json: str | None,
    run: Callable[[], RunCoroutine],
    timeout: timedelta,
) -> tuple[int, dict[str, Any]]:
    outcome: list[tuple[int, dict[str, Any]]] = []
    thread = threading.Thread(
        target=lambda: outcome.append(_invoke(name, fn, input_json, run)),
        name=f"devhost-activity-{name}",
        daemon=True,
    )
    thread.start()
    thread.join(timeout.total_seconds())
    if outcome:
        return outcome[0]
    message = f"Timeout value of {_timespan(timeout)} was exceeded by function: Functions.{name}"
    logger.error("%s", message)
    return TASK_FAILED, {"Reason": f"Activity function '{name}' failed: {message}", "Details": ""}


def _timespan(value: timedelta) -> str:
    """.NET ``TimeSpan.ToString()``: ``[d.]hh:mm:ss[.fffffff]``."""
    seconds = int(value.total_seconds())
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    if value.microseconds:
        text += f".{value.microseconds * 10:07d}"
    return f"{days}.{text}" if days else text


async def _await(awaitable: Any) -> Any:
    return await awaitable
