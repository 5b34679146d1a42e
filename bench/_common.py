"""Shared pieces of the benchmarks: timing, a ratio table, the engine with a scripted endpoint."""

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from activities import admission, jobs
from batch_runs import load_settings
from batch_runs.admission import plan_slot
from batch_runs.contracts import InvokeInput, JobRef
from batch_runs.operations import cancel_job, fetch_job, invoke_job
from devhost.engine import Engine, VirtualClock
from orchestrators import _sdk_timestamps, batch_run
from tests.orchestration.conftest import FakeEndpoint, handle

T0 = datetime(2026, 1, 1, tzinfo=UTC)
INPUT = {
    "endpoint_input_uri": "azureml://datastores/workspaceblobstore/paths/bench/",
    "endpoint_input_type": "UriFolder",
    "poll_interval": 10,
    "timeout": 30 * 86400,
}


SETTINGS = load_settings(
    {
        "BATCH_ENDPOINT_URI": "https://heart.westeurope.inference.ml.azure.com/jobs",
        "POLL_INTERVAL_SECONDS": "120",
        "POLL_INTERVAL_MIN": "1",
        "RUN_TIMEOUT_SECONDS": "86400",
    }
)


def activities_for(fake: FakeEndpoint) -> dict[str, Callable[[Any], Any]]:
    """The activity cores with the fake as their client: no HTTP, so the engine is measured."""

    def factory(_uri: str) -> FakeEndpoint:
        return fake

    return {
        jobs.INVOKE_ACTIVITY: lambda p: invoke_job(
            InvokeInput.from_dict(p),
            settings=SETTINGS,
            client_factory=factory,
            jobs_client=lambda: fake,
        ).to_dict(),
        jobs.GET_ACTIVITY: lambda p: fetch_job(
            JobRef.from_dict(p), client_factory=factory
        ).to_dict(),
        jobs.CANCEL_ACTIVITY: lambda p: cancel_job(
            JobRef.from_dict(p), client_factory=factory, jobs_client=lambda: fake
        ).to_dict(),
        admission.PLAN_ACTIVITY: lambda p: plan_slot(
            p["run_parameters"],
            SETTINGS,
            run_id=p["run_id"],
            started=datetime.fromisoformat(p["started"]),
        ).to_dict(),
    }


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    """Median wall time of ``repeats`` runs of ``fn`` (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def engine_with(
    script: list[Any], *, per_job: bool = False, **kwargs: Any
) -> tuple[Engine, FakeEndpoint]:
    """The product orchestrator on devhost's engine, virtual time, a scripted endpoint."""
    fake = FakeEndpoint(script=list(script), per_job=per_job)
    engine = Engine(
        ":memory:",
        {batch_run.ORCHESTRATOR_NAME: handle(batch_run.batch_endpoint_run)},
        activities_for(fake),
        clock=VirtualClock(start=T0, auto_advance=True),
        **kwargs,
    )
    engine.start()
    return engine, fake


def table(title: str, rows: list[tuple[str, float, str]], baseline: str) -> None:
    """Print ``label  value  unit  ratio-to-baseline``."""
    base = next(v for label, v, _ in rows if label == baseline)
    print(f"\n{title}")
    for label, value, unit in rows:
        print(f"  {label:<40} {value:>10.3f} {unit:<8} x{value / base:5.2f}")


def machine() -> str:
    """The line every table starts with: cores and load (the machine is shared)."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, load average {load}"


def cpu_seconds(fn: Callable[[], Any]) -> float:
    """Process CPU (all threads) spent in ``fn``."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def median_of(repeats: int, fn: Callable[[], float]) -> float:
    """Median of ``repeats`` results of ``fn``."""
    return statistics.median(fn() for _ in range(repeats))


@contextmanager
def sdk_shim(on: bool) -> Iterator[None]:
    """The app's SDK timestamp shim on or off for a measurement (restored after)."""
    if on:
        assert _sdk_timestamps.apply(), "the shim does not apply to the installed SDK"
    else:
        _sdk_timestamps.remove()
    try:
        yield
    finally:
        _sdk_timestamps.remove()


def shim_states(choice: str) -> list[bool]:
    """``--shim on|off|both`` → the states to measure."""
    return {"on": [True], "off": [False], "both": [False, True]}[choice]


def shim_label(on: bool) -> str:
    return "with shim" if on else "without shim"
