"""Shared pieces of the benchmarks: timing, a ratio table, the engine with a scripted endpoint."""

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devhost.engine import Engine, VirtualClock
from orchestrators import batch_run
from tests.orchestration.conftest import FakeEndpoint, activities_for, handle

T0 = datetime(2026, 1, 1, tzinfo=UTC)
INPUT = {"endpoint_input_uri": "azureml://datastores/workspaceblobstore/paths/bench/",
         "endpoint_input_type": "UriFolder", "poll_interval": 10, "timeout": 30 * 86400}


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    """Median wall time of ``repeats`` runs of ``fn`` (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def engine_with(script: list[Any], *, per_job: bool = False,
                **kwargs: Any) -> tuple[Engine, FakeEndpoint]:
    """The product orchestrator on devhost's engine, virtual time, a scripted endpoint."""
    fake = FakeEndpoint(script=list(script), per_job=per_job)
    engine = Engine(":memory:", {batch_run.ORCHESTRATOR_NAME: handle(batch_run.batch_endpoint_run)},
                    activities_for(fake), clock=VirtualClock(start=T0, auto_advance=True), **kwargs)
    engine.start()
    return engine, fake


def table(title: str, rows: list[tuple[str, float, str]], baseline: str) -> None:
    """Print ``label  value  unit  ratio-to-baseline``."""
    base = next(v for label, v, _ in rows if label == baseline)
    print(f"\n{title}")
    for label, value, unit in rows:
        print(f"  {label:<40} {value:>10.3f} {unit:<8} x{value / base:5.2f}")
