"""The run-ending message for downstream pipelines (``NOTIFY_QUEUE``): pure code.

Every ending run puts its summary (``batch_runs.notify.build_summary``, the same document the
``notify_url`` receiver gets) on the Storage queue named by ``NOTIFY_QUEUE``, through the
Functions queue output binding of the activity ``enqueue_run_summary``. The message is the
summary's JSON text, not signed (the queue is the app's own storage account; who can read it is
decided by Azure RBAC, not by a shared secret). The queue extension Base64-encodes it.
"""

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["queue_message", "queue_name"]

# Storage queue naming rules (https://learn.microsoft.com/rest/api/storageservices/naming-queues-and-metadata,
# "Queue names"): 3-63 characters; lowercase letters, digits and hyphens; starts and ends with a
# letter or digit; no two consecutive hyphens.
_QUEUE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]")


def queue_name(raw: str) -> str:
    """``raw`` as a valid Storage queue name.

    Raises:
        ValueError: the name breaks a naming rule (the message says which).
    """
    value = raw.strip()
    if not 3 <= len(value) <= 63:
        raise ValueError(f"must be 3-63 characters long (got {len(value)})")
    if not _QUEUE_NAME.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid queue name: use lowercase letters, digits and single "
            "hyphens, starting and ending with a letter or digit"
        )
    return value


def queue_message(summary: Mapping[str, Any]) -> str:
    """The queue message: the summary as compact JSON with sorted keys (stable bytes)."""
    return json.dumps(dict(summary), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
