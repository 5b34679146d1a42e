"""Reading a run's structured failure back: in the run view, and in a parent orchestration.

A failed run's orchestrator raises ``RunFailed`` whose text is a JSON document
(``batch_runs.state.failure_details``: ``error``, ``reason``, ``job_name``, ``job_status``,
``studio_url``). The Durable extension records the failure as ``Orchestrator function
'<name>' failed: <that text>``, which is both the failed instance's output (the run view's
``error``) and the ``Reason`` of the parent's ``SubOrchestrationInstanceFailed`` event; the
Python SDK raises ``Exception(f"{event.Reason} \\n {event.Details}")`` in the parent
(azure-functions-durable 1.x ``models/TaskOrchestrationExecutor.py``, the failed-task branch
of ``set_task_value``). :func:`read_run_failure` finds the document in any of these texts.
"""

import json
from typing import Any

_DECODER = json.JSONDecoder()


def read_run_failure(text: object) -> dict[str, Any] | None:
    """The structured failure inside ``text`` (an exception, a failure reason or an output).

    Returns:
        The JSON object with at least a string ``error`` and ``reason``, or None when ``text``
        holds none (e.g. a failure written before failures were structured).
    """
    raw = str(text) if text is not None else ""
    start = raw.find('{"error"')
    while start != -1:
        try:
            value, _ = _DECODER.raw_decode(raw, start)
        except ValueError:
            value = None
        if (
            isinstance(value, dict)
            and isinstance(value.get("error"), str)
            and isinstance(value.get("reason"), str)
        ):
            return value
        start = raw.find('{"error"', start + 1)
    return None


def readable_error(output: object) -> tuple[str, dict[str, Any] | None]:
    """``(the human message, the structured failure or None)`` of a failed run's output."""
    failure = read_run_failure(output)
    if failure is None:
        return (output if isinstance(output, str) else str(output)), None
    return str(failure["error"]), failure
