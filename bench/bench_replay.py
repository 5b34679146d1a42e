"""Replay cost of a poll vs. polls per orchestration execution (``POLLS_PER_EXECUTION``).

The Durable SDK replays the whole history of the current execution on every episode and
re-parses each event's timestamp, so a poll's CPU cost grows with the polls already in the
execution. ``continue_as_new`` resets it. This runs the product orchestrator through the real
SDK on devhost's engine (virtual time, a scripted endpoint) for the same number of polls with
different values of the constant, and prints ms per poll, as a ratio to the chosen value (20).

    python -m bench.bench_replay [--polls 200]
"""

import argparse
import time

from bench._common import INPUT, engine_with, table
from orchestrators import batch_run

CHOSEN = 20


def ms_per_poll(polls_per_execution: int, polls: int) -> float:
    # The orchestrator reads the module constant at run time; set it for this measurement only.
    original = getattr(batch_run, "POLLS_PER_EXECUTION")  # noqa: B009 - not re-exported
    setattr(batch_run, "POLLS_PER_EXECUTION", polls_per_execution)  # noqa: B010
    engine, _ = engine_with(["Running"] * (polls - 1) + ["Completed"])
    try:
        start = time.perf_counter()
        iid = engine.start_new(batch_run.ORCHESTRATOR_NAME, input=INPUT)
        status = engine.wait_for_completion(iid, timeout=600)
        elapsed = time.perf_counter() - start
        assert status["runtimeStatus"] == "Completed", status
        assert status["output"]["polls"] == polls
        return elapsed * 1000 / polls
    finally:
        engine.stop()
        setattr(batch_run, "POLLS_PER_EXECUTION", original)  # noqa: B010


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=200)
    args = parser.parse_args(argv)
    rows = [
        (f"POLLS_PER_EXECUTION={n}", ms_per_poll(n, args.polls), "ms/poll")
        for n in (10, CHOSEN, 50, 100)
    ]
    table(
        f"Replay cost per poll over a {args.polls}-poll run (lower is better)",
        rows,
        baseline=f"POLLS_PER_EXECUTION={CHOSEN}",
    )


if __name__ == "__main__":
    main()
