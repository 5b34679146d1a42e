"""Detection latency and status checks per job: fixed vs. backoff vs. predictive polling.

Jobs of known, log-normal length around 10 minutes (median 600 s, spread ``sigma`` in log
space), ``poll_interval`` 120 s, ``POLL_INTERVAL_MIN`` 10 s. Two measurements, printed with
ratios to the fixed policy measured in the same run:

1. **Virtual clock, large sample** (default 400 jobs per spread). Each policy's waits come from
   the product's own decision function (``batch_runs.state.next_check`` on a ``RunState``), so
   the orchestrator's real decisions run on a simulated clock with no activity latency. The
   predictive plan of each job comes from the product's ``plan_checks(fit_intervals(...))``
   over the 20 jobs before it, each known only as the app records it (ended after the last
   check that saw it running, by the check that saw it end), as the estimate activity reads
   it. The first three jobs have no history and poll as fixed.
2. **The emulator over HTTP, smaller sample** (default 30 jobs per policy), time scaled 1:60 (a
   10-minute job takes 10 s). ``aml_emulator`` runs in-process on a free port; each job is
   scripted (``{"kind": "job", "script": [["Running", T]], "outcome": "Failed"}``: a terminal
   status like Completed for the poller, and no storage needed) and polled with the product's
   ``BatchEndpointClient`` at the waits of the same decision function. The calls are the
   emulator's own request counters. The predictive plan comes from 20 earlier jobs polled with
   the fixed policy on the emulator (an endpoint switched from fixed to predictive).

Calls per job count the status GETs (polls); a run adds 1 invoke POST and 1 look-up GET
(before the POST, when ``AML_WORKSPACE_ID`` is set), the predictive policy one management API
list (to the Durable store, not Azure ML). ADF's model: 1 + ceil(T / poll_interval).

Run: ``python -m bench.bench_predictive [--jobs 400] [--emulator-jobs 30] [--no-emulator]``.
"""

import argparse
import functools
import logging
import math
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from aml_emulator import EmulatorConfig, EmulatorServer
from batch_endpoint import (
    DEV_TOKEN,
    BatchEndpointClient,
    BatchJob,
    JobInvocation,
    JobStatus,
    StaticTokenProvider,
)
from batch_runs import RunRequest
from batch_runs.predictive import PollPlan, fit_intervals, plan_checks
from batch_runs.state import RunState, next_check

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MEDIAN = 600.0
POLL_INTERVAL = 120
MIN_INTERVAL = 10
HISTORY = 20
POLICIES = ("fixed", "backoff", "predictive")
SCALE = 60.0  # emulator: virtual seconds per real second


@dataclass(frozen=True)
class Outcome:
    """One job: its length, the checks made, when the end was seen (seconds from submission)."""

    duration: float
    checks: int
    seen: float
    seen_running: float  # the last check that saw the job running (0: the submission)

    @property
    def latency(self) -> float:
        return self.seen - self.duration


def _request(policy: str) -> RunRequest:
    return RunRequest(
        endpoint_uri="https://heart.westeurope.inference.ml.azure.com/jobs",
        input_uri="azureml://datastores/workspaceblobstore/paths/bench/",
        input_type="UriFolder",
        output_uri="azureml://datastores/workspaceblobstore/paths/out/p.csv",
        poll_interval=POLL_INTERVAL,
        timeout=30 * 86400,
        poll_policy=policy,
        poll_backoff=2.0 if policy == "backoff" else 1.0,  # what poll_policy=backoff defaults to
    )


def _state(policy: str, name: str, plan: PollPlan | None) -> RunState:
    job = BatchJob(name=name, id=name, status=JobStatus.RUNNING)
    return RunState.begin(request=_request(policy), job=job, started=T0).with_plan(plan)


def _plan(policy: str, history: Sequence[tuple[float, float]], seed: str) -> PollPlan | None:
    if policy != "predictive":
        return None
    return plan_checks(
        fit_intervals(history[-HISTORY:]),
        poll_interval=POLL_INTERVAL,
        min_interval=MIN_INTERVAL,
        seed=seed,
    )


def simulate(state: RunState, duration: float) -> Outcome:
    """Wake where ``next_check`` says until a check sees the job ended (no latency)."""
    now, last_running, checks = T0, 0.0, 0
    while True:
        now = next_check(state, now)
        checks += 1
        elapsed = (now - T0).total_seconds()
        done = elapsed >= duration
        status = JobStatus.FAILED if done else JobStatus.RUNNING
        state = state.with_job(BatchJob(name=state.job.name, id="", status=status), now)
        if done:
            return Outcome(duration, checks, elapsed, last_running)
        last_running = elapsed


def virtual_stream(policy: str, sigma: float, jobs: int, seed: int = 11) -> list[Outcome]:
    rng = random.Random(seed)
    history: list[tuple[float, float]] = []
    out: list[Outcome] = []
    for i in range(jobs):
        duration = MEDIAN * math.exp(rng.gauss(0, sigma))
        state = _state(policy, f"job-{i}", _plan(policy, history, f"job-{i}"))
        result = simulate(state, duration)
        history.append((result.seen_running, result.seen))
        out.append(result)
    return out


def _p90(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def summary(outcomes: Sequence[Outcome]) -> tuple[float, float, float, float]:
    """``(median latency, p90 latency, mean checks, mean ADF calls)``."""
    return (
        statistics.median(o.latency for o in outcomes),
        _p90([o.latency for o in outcomes]),
        statistics.fmean(o.checks for o in outcomes),
        statistics.fmean(1 + math.ceil(o.duration / POLL_INTERVAL) for o in outcomes),
    )


def print_table(title: str, rows: Mapping[str, Sequence[Outcome]]) -> None:
    print(title)
    print(
        f"  {'policy':<11}{'median lat s':>13}{'p90 lat s':>11}{'checks/job':>12}"
        f"{'lat ratio':>11}{'checks ratio':>14}{'ADF 1+ceil(T/P)':>17}"
    )
    base = summary(rows["fixed"])
    for policy, outcomes in rows.items():
        med, p90, checks, adf = summary(outcomes)
        print(
            f"  {policy:<11}{med:>13.1f}{p90:>11.1f}{checks:>12.2f}"
            f"{med / base[0]:>11.2f}{checks / base[2]:>14.2f}{adf:>17.2f}"
        )


# ------------------------------------------------------------------------- the emulator


class EmulatorBench:
    """Jobs on a real emulator over HTTP, each polled on its own thread at the policy's waits."""

    def __init__(self, server: EmulatorServer) -> None:
        self.base = server.base_url
        self.uri = f"{self.base}/endpoints/heart-classifier/jobs"
        host = self.base.split("://", 1)[1]
        self.client = BatchEndpointClient(
            self.uri, StaticTokenProvider(DEV_TOKEN), allowed_hosts=(host,), auth_mode="none"
        )
        self.submit_lock = threading.Lock()

    def submit(self, duration: float) -> tuple[str, float]:
        """Script and create one job of ``duration`` virtual seconds: (name, real start)."""
        with self.submit_lock:
            fault = {
                "kind": "job",
                "script": [["Running", duration / SCALE]],
                "outcome": "Failed",
                "message": "bench: scripted end",
            }
            requests.post(f"{self.base}/admin/faults", json=fault, timeout=10).raise_for_status()
            invocation = JobInvocation(
                input_name="input_data",
                input_type="UriFolder",
                input_uri="azureml://datastores/workspaceblobstore/paths/bench/",
                output_name="score",
                output_uri="azureml://datastores/workspaceblobstore/paths/bench/p.csv",
            )
            started = time.monotonic()
            job = self.client.invoke(invocation)
        return job.name, started

    def run(self, state: RunState, duration: float) -> Outcome:
        name, started = self.submit(duration)
        now, last_running, checks = T0, 0.0, 0
        while True:
            now = next_check(state, now)
            elapsed = (now - T0).total_seconds()
            time.sleep(max(0.0, started + elapsed / SCALE - time.monotonic()))
            job = self.client.get_job(name)
            checks += 1
            real = (time.monotonic() - started) * SCALE
            state = state.with_job(job, now)
            if job.is_final:
                return Outcome(duration, checks, real, last_running)
            last_running = real

    def gets(self) -> dict[str, int]:
        counters = requests.get(f"{self.base}/admin/counters", timeout=10).json()
        return {name: c.get("get", 0) for name, c in counters.get("jobs", {}).items()}


def _parallel(tasks: Sequence[Callable[[], Outcome]]) -> list[Outcome]:
    results: list[Any] = [None] * len(tasks)

    def work(i: int) -> None:
        results[i] = tasks[i]()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(tasks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def emulator_runs(
    jobs: int, sigma: float, *, wave: int = 10, seed: int = 5
) -> dict[str, list[Outcome]]:
    """``jobs`` per policy, in waves of ``wave`` (each policy's jobs of a wave concurrently);
    the predictive plans of a wave come from the 20 jobs before it, as in the stream above."""
    rng = random.Random(seed)
    warmup = [MEDIAN * math.exp(rng.gauss(0, sigma)) for _ in range(HISTORY)]
    durations = [MEDIAN * math.exp(rng.gauss(0, sigma)) for _ in range(jobs)]
    with tempfile.TemporaryDirectory() as tmp:
        config = EmulatorConfig(port=0, state_path=f"{tmp}/state.sqlite", phase_seconds=0.1)
        with EmulatorServer(config) as server:
            bench = EmulatorBench(server)
            history = _parallel(
                [
                    functools.partial(bench.run, _state("fixed", f"w{i}", None), d)
                    for i, d in enumerate(warmup)
                ]
            )
            intervals = [(o.seen_running, o.seen) for o in history]
            rows: dict[str, list[Outcome]] = {p: [] for p in POLICIES}
            before = sum(bench.gets().values())
            for start in range(0, jobs, wave):
                tasks: list[Callable[[], Outcome]] = []
                for policy in POLICIES:
                    for i in range(start, min(start + wave, jobs)):
                        plan = _plan(policy, intervals, f"e{i}")
                        state = _state(policy, f"{policy}-{i}", plan)
                        tasks.append(functools.partial(bench.run, state, durations[i]))
                done = _parallel(tasks)
                size = len(done) // len(POLICIES)
                for k, policy in enumerate(POLICIES):
                    rows[policy].extend(done[k * size : (k + 1) * size])
                intervals.extend((o.seen_running, o.seen) for o in rows["predictive"][-size:])
            served = sum(bench.gets().values()) - before
    results = [o for p in POLICIES for o in rows[p]]
    made = sum(o.checks for o in results)
    if served != made:
        raise RuntimeError(f"the emulator counted {served} status GETs, the pollers {made}")
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=400, help="virtual-clock jobs per spread")
    parser.add_argument("--emulator-jobs", type=int, default=30, help="emulator jobs per policy")
    parser.add_argument("--no-emulator", action="store_true")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the emulator logs every job transition
    print(
        f"Predictive polling: jobs log-normal, median {MEDIAN:.0f} s; poll_interval "
        f"{POLL_INTERVAL} s, POLL_INTERVAL_MIN {MIN_INTERVAL} s; history {HISTORY} runs."
    )
    for sigma in (0.1, 0.15, 0.2, 0.3):
        rows = {p: virtual_stream(p, sigma, args.jobs) for p in POLICIES}
        print_table(f"[virtual clock] {args.jobs} jobs, sigma {sigma}", rows)
    if not args.no_emulator:
        sigma = 0.1
        started = time.monotonic()
        rows = emulator_runs(args.emulator_jobs, sigma)
        print_table(
            f"[emulator, HTTP, 1:{SCALE:.0f} time] {args.emulator_jobs} jobs per policy, "
            f"sigma {sigma} ({time.monotonic() - started:.0f} s wall)",
            rows,
        )


if __name__ == "__main__":
    main()
