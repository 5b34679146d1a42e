"""The predictive policy's estimate: how long recent runs on the same endpoint and deployment
took, read from the app's own finished runs, and the check plan made from them.

Where the durations come from, and why there:

- **Not from Azure ML.** Neither the batch job resource (data-plane swagger
  ``2020-09-01-dataplanepreview`` ``#/definitions/BatchJob``: no start or end time,
  ``additionalProperties: false``) nor the ARM ``JobBase`` (azure-rest-api-specs
  ``stable/2024-04-01/examples/Job/PipelineJob/get.json``: ``systemData.createdAt`` and
  ``lastModifiedAt`` only) documents when a job ended. ``lastModifiedAt`` is any modification
  (a tag edit counts), so reading it as the end would be an assumption.
- **From the app's own runs.** Every completed run's output records when it started
  (``started``), the last check that saw its job running (``job_ended_after``) and the check
  that saw it end (``finished``): the job ended inside that interval, measured by the app
  itself. The runs are listed through the Durable management HTTP API (``GET .../instances``
  with ``runtimeStatus``, ``createdTimeFrom``, ``showInput``, ``top`` and the
  ``x-ms-continuation-token`` header; azure-functions-durable-extension
  ``src/WebJobs.Extensions.DurableTask/HttpApiHandler.cs``), the same reader as ``GET
  /api/runs`` (``batch_runs.run_control``). An activity may hold the durable client binding
  like any other function ("The binding can be paired with existing function triggers",
  Learn, "Bindings for Durable Functions").

Bounded: completed runs created in the last :data:`WINDOW_DAYS` days, at most
:data:`MAX_PAGES` pages of 100, the newest :data:`~batch_runs.predictive.MAX_SAMPLES` kept.
Read in an activity, so the orchestrator replays the recorded answer. Any failure means no plan:
the run polls as the fixed policy does, and the reason is logged and shown in the outcome.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from batch_runs.contracts import json_object, required_text
from batch_runs.predictive import MAX_SAMPLES, PollPlan, fit_intervals, plan_checks
from batch_runs.run_control import (
    InstancesApi,
    ManagementApiError,
    endpoint_of,
    run_parameters_of,
)
from batch_runs.settings import Settings

logger = logging.getLogger(__name__)

#: Completed runs created this many days back are read at most.
WINDOW_DAYS = 14
#: Management API pages (of :data:`PAGE_SIZE`) read at most.
MAX_PAGES = 3
PAGE_SIZE = 100
_END_TOKENS = frozenset({"", "null", "bnVsbA=="})

__all__ = [
    "EstimateInput",
    "EstimateOutcome",
    "estimate_plan",
    "read_estimate_outcome",
    "recent_intervals",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class EstimateInput:
    """Input of ``estimate_job_duration``: whose history, and the run's polling parameters."""

    endpoint_uri: str
    deployment_name: str | None
    run_id: str
    now: str
    poll_interval: int
    poll_max_interval: int | None = None

    @classmethod
    def from_dict(cls, data: object) -> "EstimateInput":
        """Raises: ValueError naming the bad field."""
        data = json_object(data, "EstimateInput")
        texts = {
            k: required_text(data, k, "EstimateInput") for k in ("endpoint_uri", "run_id", "now")
        }
        datetime.fromisoformat(texts["now"])
        interval, cap = data.get("poll_interval"), data.get("poll_max_interval")
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise ValueError("EstimateInput.poll_interval must be a positive integer")
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
            raise ValueError("EstimateInput.poll_max_interval must be a positive integer")
        deployment = data.get("deployment_name")
        return cls(
            endpoint_uri=texts["endpoint_uri"],
            deployment_name=deployment if isinstance(deployment, str) and deployment else None,
            run_id=texts["run_id"],
            now=texts["now"],
            poll_interval=interval,
            poll_max_interval=cap,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint_uri": self.endpoint_uri,
            "deployment_name": self.deployment_name,
            "run_id": self.run_id,
            "now": self.now,
            "poll_interval": self.poll_interval,
            "poll_max_interval": self.poll_max_interval,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class EstimateOutcome:
    """What ``estimate_job_duration`` answers: the plan (None: poll as fixed), how many past
    runs it rests on, and why there is no plan when there is none."""

    plan: PollPlan | None
    samples: int = 0
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "plan": self.plan.to_dict() if self.plan else None,
            "samples": self.samples,
            "note": self.note,
        }


def read_estimate_outcome(data: object) -> EstimateOutcome:
    """Read the activity's answer; anything malformed reads as "no plan" (never fails a run)."""
    if not isinstance(data, Mapping):
        return EstimateOutcome(plan=None, note="the estimate answered no object")
    try:
        plan = PollPlan.from_dict(data.get("plan"))
    except ValueError as exc:
        return EstimateOutcome(plan=None, note=str(exc))
    samples = data.get("samples")
    note = data.get("note")
    return EstimateOutcome(
        plan=plan,
        samples=samples if isinstance(samples, int) else 0,
        note=note if isinstance(note, str) else None,
    )


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _interval(output: object) -> tuple[datetime, float, float] | None:
    """``(started, ended after, ended by)`` in seconds since ``started``, from a completed
    run's output; None for outputs without ``job_ended_after`` (written before it existed)."""
    if not isinstance(output, Mapping) or output.get("status") != "Completed":
        return None
    started, after, finished = (
        _time(output.get(k)) for k in ("started", "job_ended_after", "finished")
    )
    if started is None or after is None or finished is None:
        return None
    low = (after - started).total_seconds()
    high = (finished - started).total_seconds()
    if not 0 <= low <= high or high <= 0:
        return None
    return started, low, high


def _same_target(
    params: Mapping[str, Any] | None, endpoint: str, deployment: str | None, default: str | None
) -> bool:
    if params is None or endpoint_of(params, default) != endpoint:
        return False
    raw = params.get("deployment_name")
    return (raw if isinstance(raw, str) and raw else None) == deployment


def recent_intervals(
    api: InstancesApi,
    inp: EstimateInput,
    *,
    orchestrator: str,
    default_endpoint: str | None,
) -> list[tuple[float, float]]:
    """The end intervals of the newest completed runs on the run's endpoint and deployment.

    Raises:
        ManagementApiError: The management API failed.
    """
    now = datetime.fromisoformat(inp.now)
    params = {
        "top": str(PAGE_SIZE),
        "showInput": "true",
        "runtimeStatus": "Completed",
        "createdTimeFrom": (now - timedelta(days=WINDOW_DAYS))
        .astimezone(UTC)
        .strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    found: list[tuple[datetime, float, float]] = []
    token: str | None = None
    for _ in range(MAX_PAGES):
        statuses, next_token = api.list_instances(params, token)
        for status in statuses:
            if status.get("name") != orchestrator or status.get("instanceId") == inp.run_id:
                continue
            run = run_parameters_of(status.get("input"))
            if not _same_target(run, inp.endpoint_uri, inp.deployment_name, default_endpoint):
                continue
            interval = _interval(status.get("output"))
            if interval is not None:
                found.append(interval)
        if next_token is None or next_token in _END_TOKENS or next_token == token:
            break
        token = next_token
    found.sort(key=lambda item: item[0], reverse=True)
    return [(low, high) for _, low, high in found[:MAX_SAMPLES]]


def estimate_plan(
    inp: EstimateInput,
    *,
    api_factory: Callable[[], InstancesApi],
    settings: Settings,
    orchestrator: str,
) -> EstimateOutcome:
    """Read the history and make the plan; no plan (fixed polling) on any failure."""
    try:
        intervals = recent_intervals(
            api_factory(),
            inp,
            orchestrator=orchestrator,
            default_endpoint=settings.batch_endpoint_uri,
        )
    except (ManagementApiError, ValueError) as exc:
        logger.warning("run %s: no run history, polling as fixed: %s", inp.run_id, exc)
        return EstimateOutcome(plan=None, note=f"run history unavailable: {exc}")
    plan = plan_checks(
        fit_intervals(intervals),
        poll_interval=inp.poll_interval,
        min_interval=settings.poll_interval_min,
        max_interval=inp.poll_max_interval,
        seed=inp.run_id,
    )
    note = None if plan is not None else f"{len(intervals)} past run(s): polling as fixed"
    logger.info(
        "run %s: poll plan from %d past run(s): %s",
        inp.run_id,
        len(intervals),
        plan.checks if plan else "none",
    )
    return EstimateOutcome(plan=plan, samples=len(intervals), note=note)
