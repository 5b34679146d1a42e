"""The start step the blob, folder-marker and schedule starters share: parse the parameters the
starter made (a bad one is the deployment's fault, so it raises, naming the parameters) and start
the run under its deterministic id, where a concurrent delivery of the same event may win."""

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from batch_runs import InvalidRunRequest, RunRequest, Settings, parse_run_request
from batch_runs.starts import describe_problems
from orchestrators.batch_run import ORCHESTRATOR_NAME

logger = logging.getLogger(__name__)


def starter_request(
    params: Mapping[str, Any],
    settings: Settings,
    *,
    run_id: str,
    now: datetime,
    source_name: str,
    what: str,
) -> RunRequest:
    """``parse_run_request`` for a starter's own parameters.

    Raises:
        ValueError: ``cannot start <what>: <the problems>`` (the invocation fails, logged).
    """
    try:
        return parse_run_request(
            dict(params), settings, run_id=run_id, now=now, source_name=source_name
        )
    except InvalidRunRequest as exc:
        problems = describe_problems(exc.details)
        raise ValueError(f"cannot start {what}: {problems}") from exc


async def start_once(client: Any, instance_id: str, request: RunRequest, label: str) -> bool:
    """Start the run; False when a concurrent delivery of the same event started it first."""
    try:
        await client.start_new(ORCHESTRATOR_NAME, instance_id, request.to_dict())
    except Exception:
        if await client.get_status(instance_id):  # a concurrent delivery won the race
            logger.info("%s: run %s was started concurrently", label, instance_id)
            return False
        raise
    return True
