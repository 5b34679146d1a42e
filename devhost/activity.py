"""Running one activity function: decoded input in, a ``TaskCompleted``/``TaskFailed`` out."""

import inspect
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from devhost.failures import activity_failure
from devhost.history import TASK_COMPLETED, TASK_FAILED, decode
from devhost.logs import function_invocation

__all__ = ["invoke_activity"]

logger = logging.getLogger(__name__)

#: How an awaitable result is run to completion (``LoopThread.run``).
RunCoroutine = Callable[[Coroutine[Any, Any, Any]], Any]


def invoke_activity(
    name: str,
    fn: Callable[[Any], Any] | None,
    input_json: str | None,
    run: Callable[[], RunCoroutine],
) -> tuple[int, dict[str, Any]]:
    """Run the activity ``fn`` on ``input_json``; return the event type and its fields.

    Args:
        name: the activity's function name (for logs and the failure reason).
        fn: the activity (None: the app has none of that name, a ``TaskFailed``).
        input_json: the serialized input.
        run: gives the runner for an ``async def`` activity's coroutine.

    Returns:
        ``(TASK_COMPLETED, {"Result": ...})`` or ``(TASK_FAILED, {"Reason", "Details"})``.
    """
    if fn is None:
        reason = f"The function '{name}' doesn't exist, is disabled, or is not an activity"
        return TASK_FAILED, {"Reason": reason, "Details": ""}
    try:
        with function_invocation(name, "(null)"):
            result = fn(decode(input_json))
            if inspect.isawaitable(result):
                result = run()(_await(result))
            result_json = json.dumps(result)
    except Exception as exc:
        reason, details = activity_failure(name, exc)
        logger.warning("Activity %s failed: %s", name, exc)
        return TASK_FAILED, {"Reason": reason, "Details": details}
    return TASK_COMPLETED, {"Result": result_json}


async def _await(awaitable: Any) -> Any:
    return await awaitable
