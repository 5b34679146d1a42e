"""How many concurrent runs devhost's engine drives through the real SDK (virtual time).

Each run is the product orchestrator with a scripted endpoint (submit + 5 polls). The baseline
is one run alone; the figure is runs per second of wall time for N concurrent runs, and its
ratio to the single-run rate (how well concurrent instances share the engine).

    python -m bench.bench_throughput [--runs 200]
"""

import argparse
import time

from bench._common import INPUT, engine_with, table
from orchestrators import batch_run

SCRIPT = ["Queued", "Running", "Running", "Finalizing", "Completed"]


def runs_per_second(n: int) -> float:
    engine, _ = engine_with(SCRIPT, per_job=True, max_concurrent_activities=10)
    try:
        start = time.perf_counter()
        ids = [engine.start_new(batch_run.ORCHESTRATOR_NAME, input=INPUT) for _ in range(n)]
        for iid in ids:
            status = engine.wait_for_completion(iid, timeout=600)
            assert status["runtimeStatus"] == "Completed", status
        return n / (time.perf_counter() - start)
    finally:
        engine.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)
    rows = [
        ("1 run", runs_per_second(1), "runs/s"),
        (f"{args.runs} concurrent runs", runs_per_second(args.runs), "runs/s"),
    ]
    table(
        "Engine throughput, product orchestrator, 5 polls per run (higher is better)",
        rows,
        baseline="1 run",
    )


if __name__ == "__main__":
    main()
