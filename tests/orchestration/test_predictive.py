"""``poll_policy=predictive`` through the real SDK replay on devhost's engine, in virtual time.

The estimate activity is the product's binding (``activities/estimates.py``) with a durable
client binding that points at a small management API served over HTTP on 127.0.0.1, which
lists scripted past runs; the job endpoint is the scripted endpoint of the other tests.
"""

import json
import math
import random
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from activities import estimates
from batch_runs import get_settings
from batch_runs.predictive import fit_intervals, plan_checks
from tests.orchestration import conftest
from tests.orchestration.conftest import T0

INPUT = "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/"


def past_runs(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Completed runs on the default endpoint that took about ten minutes (log-normal)."""
    rng = random.Random(seed)
    runs = []
    for i in range(count):
        started = T0 - timedelta(hours=2 + i)
        seconds = 600 * math.exp(rng.gauss(0, 0.1))
        runs.append(
            {
                "name": "batch_endpoint_run",
                "instanceId": f"past-{i}",
                "input": {"endpoint_input_uri": INPUT},
                "output": {
                    "status": "Completed",
                    "started": started.isoformat(),
                    "job_ended_after": (started + timedelta(seconds=seconds - 15)).isoformat(),
                    "finished": (started + timedelta(seconds=seconds)).isoformat(),
                },
            }
        )
    return runs


class Management:
    """``GET /instances/`` of the Durable management API, answering scripted statuses."""

    def __init__(self, statuses: list[dict[str, Any]], status_code: int = 200) -> None:
        self.statuses = statuses
        self.status_code = status_code
        self.queries: list[dict[str, list[str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                outer.queries.append(parse_qs(url.query))
                body = json.dumps(outer.statuses).encode()
                self.send_response(outer.status_code if url.path == "/instances/" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def binding(self) -> str:
        return json.dumps({"rpcBaseUrl": f"http://127.0.0.1:{self.server.server_port}/"})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def management(monkeypatch: pytest.MonkeyPatch) -> Iterator[Management]:
    api = Management(past_runs(20))
    binding = estimates.estimate_job_duration.build().get_user_function()
    monkeypatch.setitem(
        conftest.ACTIVITIES,
        estimates.ESTIMATE_ACTIVITY,
        lambda payload: binding(payload=payload, client=api.binding),
    )
    yield api
    api.stop()


def _predictive_harness(make_harness, monkeypatch, script: list[str]):
    h = make_harness(script)
    monkeypatch.setenv("POLL_INTERVAL_MIN", "10")
    get_settings.cache_clear()
    seen: list[datetime] = []
    h.fake.on_get = lambda _count: seen.append(h.clock.now())
    return h, seen


def expected_plan(management: Management, seed: str):
    """The plan the product makes from the scripted history (what the activity must return)."""
    intervals = []
    for r in management.statuses:
        started = datetime.fromisoformat(r["output"]["started"])
        after = datetime.fromisoformat(r["output"]["job_ended_after"])
        by = datetime.fromisoformat(r["output"]["finished"])
        intervals.append(((after - started).total_seconds(), (by - started).total_seconds()))
    return plan_checks(fit_intervals(intervals), poll_interval=120, min_interval=10, seed=seed)


def test_a_predictive_run_polls_at_its_planned_checks(make_harness, management, monkeypatch):
    h, seen = _predictive_harness(make_harness, monkeypatch, ["Running"] * 5 + ["Completed"])
    status = h.run(
        {"endpoint_input_uri": INPUT, "poll_interval": 120, "poll_policy": "predictive"},
        instance_id="predictive-1",
    )

    assert status["runtimeStatus"] == "Completed", status
    intervals = [
        (
            (datetime.fromisoformat(r["output"]["job_ended_after"]) - started).total_seconds(),
            (datetime.fromisoformat(r["output"]["finished"]) - started).total_seconds(),
        )
        for r in management.statuses
        for started in [datetime.fromisoformat(r["output"]["started"])]
    ]
    plan = plan_checks(
        fit_intervals(intervals), poll_interval=120, min_interval=10, seed="predictive-1"
    )
    assert plan is not None
    assert len(plan.checks) >= 6
    out = status["output"]
    started = datetime.fromisoformat(out["started"])
    offsets = [round((t - started).total_seconds()) for t in seen]
    assert offsets == list(plan.checks[:6])  # each check exactly where the plan put it
    assert out["polls"] == 6
    assert datetime.fromisoformat(out["finished"]) - started == timedelta(seconds=plan.checks[5])
    assert out["job_ended_after"] == (started + timedelta(seconds=plan.checks[4])).isoformat()
    assert management.queries[0]["runtimeStatus"] == ["Completed"]
    assert h.fake.gets == 6


def test_without_a_history_a_predictive_run_polls_as_fixed(make_harness, management, monkeypatch):
    management.status_code = 503
    h, seen = _predictive_harness(make_harness, monkeypatch, ["Running"] * 2 + ["Completed"])
    status = h.run({"endpoint_input_uri": INPUT, "poll_interval": 120, "poll_policy": "predictive"})

    assert status["runtimeStatus"] == "Completed", status
    started = datetime.fromisoformat(status["output"]["started"])
    assert [round((t - started).total_seconds()) for t in seen] == [120, 240, 360]


def test_a_fixed_run_never_asks_for_an_estimate(make_harness, management, monkeypatch):
    h, _ = _predictive_harness(make_harness, monkeypatch, ["Running", "Completed"])
    status = h.run({"endpoint_input_uri": INPUT, "poll_interval": 120})

    assert status["runtimeStatus"] == "Completed"
    assert management.queries == []


def test_the_plan_survives_continue_as_new(make_harness, management, monkeypatch):
    """Past the plan the run polls every interval; the plan rides in the state across the
    ``continue_as_new`` that every ``POLLS_PER_EXECUTION`` polls start."""
    from batch_runs.state import POLLS_PER_EXECUTION

    polls = max(POLLS_PER_EXECUTION, 2) * 3 + 12  # more than the plan has checks (about 10)
    h, seen = _predictive_harness(
        make_harness, monkeypatch, ["Running"] * (polls - 1) + ["Completed"]
    )
    status = h.run(
        {"endpoint_input_uri": INPUT, "poll_interval": 120, "poll_policy": "predictive"},
        instance_id="predictive-2",
    )

    assert status["runtimeStatus"] == "Completed", status
    started = datetime.fromisoformat(status["output"]["started"])
    offsets = [round((t - started).total_seconds()) for t in seen]
    assert len(offsets) == polls
    plan = expected_plan(management, "predictive-2")
    assert plan is not None
    after = [plan.checks[-1] + 120 * k for k in range(1, polls - len(plan.checks) + 1)]
    assert len(plan.checks) < polls  # the run went past its plan
    assert offsets == [*plan.checks, *after]
