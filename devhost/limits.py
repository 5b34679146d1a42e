"""Payload limits the Durable extension enforces on what an orchestrator returns.

Custom status: the extension serializes it compactly and refuses more than 16 KB of UTF-16
(``DurableOrchestrationContext.SetCustomStatus``, Azure/azure-functions-durable-extension
``src/WebJobs.Extensions.DurableTask/ContextImplementations/DurableOrchestrationContext.cs``
lines 221-230, and ``MessagePayloadDataConverter.Serialize``, same tag v2.13.7, lines 41-75:
``(int)(Encoding.Unicode.GetByteCount(json) / 1024.0) > 16`` throws ``ArgumentException``).
The out-of-process shim calls it before anything else (``OutOfProcOrchestrationShim.cs``
lines 76-81), and ``TaskOrchestrationShim.cs`` lines 195-196 fail the instance with
"Orchestrator function '<name>' failed: <message>".
"""

import json
from typing import Any

__all__ = ["MAX_CUSTOM_STATUS_KB", "custom_status_error"]

MAX_CUSTOM_STATUS_KB = 16


def custom_status_error(value: Any) -> str | None:
    """The extension's message when ``value`` is too large a custom status, else None."""
    if value is None:
        return None
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    size_kb = len(text.encode("utf-16-le")) // 1024
    if size_kb <= MAX_CUSTOM_STATUS_KB:
        return None
    return (
        "The UTF-16 size of the JSON-serialized payload must not exceed "
        f"{MAX_CUSTOM_STATUS_KB:,} KB. The current payload size is {size_kb:,} KB."
    )
