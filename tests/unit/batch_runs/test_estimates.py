"""The estimate core: which past runs it reads, what it makes of them, and that any failure
leaves the run polling as fixed."""

import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from batch_runs import load_settings
from batch_runs.estimates import (
    EstimateInput,
    estimate_plan,
    read_estimate_outcome,
    recent_intervals,
)
from batch_runs.run_control import ManagementApiError

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
EP = "https://heart.westeurope.inference.ml.azure.com/jobs"
OTHER = "https://other.westeurope.inference.ml.azure.com/jobs"
SETTINGS = load_settings({"POLL_INTERVAL_MIN": "10"})


def run(
    i: int,
    seconds: float,
    *,
    endpoint: str = EP,
    deployment: str | None = None,
    resumed: bool = False,
    status: str = "Completed",
    name: str = "batch_endpoint_run",
    window: float = 10.0,
) -> dict[str, Any]:
    started = NOW - timedelta(hours=1 + i)
    params: dict[str, Any] = {"endpoint_uri": endpoint, "endpoint_input_uri": "x"}
    if deployment:
        params["deployment_name"] = deployment
    return {
        "name": name,
        "instanceId": f"run-{i}",
        "input": {"resume": {"run_parameters": params}} if resumed else params,
        "output": {
            "status": status,
            "started": started.isoformat(),
            "job_ended_after": (started + timedelta(seconds=seconds - window)).isoformat(),
            "finished": (started + timedelta(seconds=seconds)).isoformat(),
        },
    }


class Pages:
    """The management API's pages, as ``InstancesApi``; records every query."""

    def __init__(self, *pages: list[dict[str, Any]], fail: bool = False) -> None:
        self.pages = list(pages)
        self.fail = fail
        self.calls: list[tuple[dict[str, str], str | None]] = []

    def list_instances(
        self, params: Mapping[str, str], continuation: str | None
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        self.calls.append((dict(params), continuation))
        if self.fail:
            raise ManagementApiError("listing instances answered HTTP 503", 503)
        index = int(continuation or 0)
        token = str(index + 1) if index + 1 < len(self.pages) else None
        return list(self.pages[index]), token


def inp(deployment: str | None = None) -> EstimateInput:
    return EstimateInput(
        endpoint_uri=EP,
        deployment_name=deployment,
        run_id="run-new",
        now=NOW.isoformat(),
        poll_interval=120,
    )


def test_only_completed_runs_on_the_same_endpoint_and_deployment_count() -> None:
    api = Pages(
        [
            run(1, 600),
            run(2, 610, resumed=True),  # after continue_as_new: the parameters are in the state
            run(3, 620, endpoint=OTHER),
            run(4, 630, deployment="blue"),
            run(5, 640, status="Failed"),
            run(6, 650, name="another_orchestrator"),
            {**run(7, 660), "output": {"status": "Completed"}},  # written before job_ended_after
            {**run(8, 670), "instanceId": "run-new"},  # the run itself
        ]
    )

    got = recent_intervals(api, inp(), orchestrator="batch_endpoint_run", default_endpoint=None)

    assert got == [(590.0, 600.0), (600.0, 610.0)]
    params = api.calls[0][0]
    assert params["runtimeStatus"] == "Completed"
    assert params["showInput"] == "true"
    assert params["createdTimeFrom"] == "2026-11-16T12:00:00.000000Z"
    blue = recent_intervals(
        Pages([run(4, 630, deployment="blue")]),
        inp("blue"),
        orchestrator="batch_endpoint_run",
        default_endpoint=None,
    )
    assert blue == [(620.0, 630.0)]


def test_runs_without_an_endpoint_count_for_the_default_endpoint() -> None:
    past = run(1, 600)
    past["input"] = {"endpoint_input_uri": "x"}

    got = recent_intervals(
        Pages([past]), inp(), orchestrator="batch_endpoint_run", default_endpoint=EP
    )
    assert got == [(590.0, 600.0)]


def test_the_newest_twenty_runs_are_kept_and_paging_is_bounded() -> None:
    pages = [[run(p * 10 + i, 600 + p * 10 + i) for i in range(10)] for p in range(5)]
    api = Pages(*pages)

    got = recent_intervals(api, inp(), orchestrator="batch_endpoint_run", default_endpoint=None)

    assert len(api.calls) == 3  # MAX_PAGES, although the store has more
    assert [c for _, c in api.calls] == [None, "1", "2"]
    assert len(got) == 20
    assert got[0] == (590.0, 600.0)  # run 0 started last: the newest first


def test_a_history_gives_a_plan_and_a_failure_gives_none() -> None:
    rng = random.Random(1)
    api = Pages([run(i, 600 * math.exp(rng.gauss(0, 0.1))) for i in range(20)])

    outcome = estimate_plan(
        inp(), api_factory=lambda: api, settings=SETTINGS, orchestrator="batch_endpoint_run"
    )
    assert outcome.plan is not None
    assert outcome.samples == 20
    assert read_estimate_outcome(outcome.to_dict()) == outcome

    failed = estimate_plan(
        inp(),
        api_factory=lambda: Pages(fail=True),
        settings=SETTINGS,
        orchestrator="batch_endpoint_run",
    )
    assert failed.plan is None
    assert failed.note is not None
    assert "HTTP 503" in failed.note
    cold = estimate_plan(
        inp(),
        api_factory=lambda: Pages([run(1, 600)]),
        settings=SETTINGS,
        orchestrator="batch_endpoint_run",
    )
    assert (cold.plan, cold.samples, cold.note) == (None, 1, "1 past run(s): polling as fixed")


def test_a_damaged_answer_reads_as_no_plan() -> None:
    assert read_estimate_outcome("x").plan is None
    damaged = read_estimate_outcome({"ok": True, "plan": {"checks": [3, 1]}})
    assert damaged.plan is None
    assert damaged.note
