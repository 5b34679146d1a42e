"""Names the Durable extension refuses: instance ids (at start) and task hub names (at start-up).

Instance ids: ``DurableClient.StartNewAsync`` (Azure/azure-functions-durable-extension v2.13.7
``src/WebJobs.Extensions.DurableTask/ContextImplementations/DurableClient.cs`` lines 33,
189-201, 225-228) throws ``ArgumentException`` for an id that starts with ``@``, contains
``/``, ``\\``, ``#``, ``?`` or a control character, or is longer than 256 characters; note that
the first two pass the message as ``paramName`` (``new ArgumentException(nameof(instanceId),
"...")``), so .NET's message reads ``instanceId (Parameter '...')``. ``HttpApiHandler.cs``
lines 442-444 answer 400 "One or more of the arguments submitted is incorrect".

Task hub names: ``AzureStorageOptions.ValidateHubName`` (``Options/AzureStorageOptions.cs``
lines 199-222): the Azure Storage table-name rule (a letter, then letters or digits, 3-63
characters) and at most 50 characters; the message says 3 to 45.
"""

import re
import unicodedata

__all__ = ["instance_id_error", "task_hub_error"]

MAX_INSTANCE_ID_LENGTH = 256
_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")


def _dotnet_argument_message(message: str, param_name: str) -> str:
    return f"{message} (Parameter '{param_name}')"


def _is_control(ch: str) -> bool:
    # .NET char.IsControl: Unicode category Cc.
    return unicodedata.category(ch) == "Cc"


def instance_id_error(instance_id: str) -> str | None:
    """The ``ArgumentException`` message ``StartNewAsync`` throws for this id, else None."""
    if instance_id.startswith("@"):
        return _dotnet_argument_message(
            "instanceId", "Orchestration instance ids must not start with @."
        )
    if any(ch in "/\\?#" or _is_control(ch) for ch in instance_id):
        return _dotnet_argument_message(
            "instanceId",
            "Orchestration instance ids must not contain /, \\, #, ?, or control characters.",
        )
    if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
        return f"Instance ID lengths must not exceed {MAX_INSTANCE_ID_LENGTH} characters."
    return None


def task_hub_error(name: str) -> str | None:
    """The extension's start-up error for this task hub name, else None."""
    if _TABLE_NAME.fullmatch(name) and len(name) <= 50:
        return None
    return (
        f"Task hub name '{name}' should contain only alphanumeric characters, start with a "
        "letter, and have length between 3 and 45."
    )
