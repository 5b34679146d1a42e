"""Replay CPU per poll: the product vs. a naive loop, and the ``POLLS_PER_EXECUTION`` sweep.

The Durable SDK replays the whole current execution on every episode, so a poll costs more the
more polls the execution already holds; ``continue_as_new`` resets it. Two tables:

1. CPU per poll of a run of 10, 100, 1,000 and 3,000 polls: the product (its
   ``POLLS_PER_EXECUTION``) and the naive loop (the same orchestrator, never
   ``continue_as_new``). "engine" figures are the whole process's CPU (all threads: SDK, app,
   devhost engine, in-memory SQLite, the scripted endpoint) over a real run on devhost's engine
   in virtual time, divided by the polls. A naive run of N polls costs O(N^2) in total (3,000
   polls would take about 35 minutes), so its 1,000 and 3,000 figures are "synthetic": the
   orchestrator's SDK handle timed on the two episodes of a poll over a history of k polls
   (cloned from a real run, ids and times shifted), at k = N/4 and 3N/4 (the cost is linear in
   k, so their mean is the run's mean per poll); the 10 and 100 rows show both for calibration.
2. The sweep: CPU per poll of a 1,000-poll run on the engine for each value of the constant.

    python -m bench.bench_replay [--shim on|off|both] [--sweep-shim on|off|both] [--quick]
"""

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from batch_runs import state
from bench._common import (
    INPUT,
    cpu_seconds,
    engine_with,
    machine,
    sdk_shim,
    shim_label,
    shim_states,
)
from devhost.history import format_time, parse_time
from orchestrators import batch_run

SIZES = (10, 100, 1_000, 3_000)
SWEEP = (1, 2, 3, 5, 10, 20, 40)
SWEEP_POLLS = 1_000
NAIVE = 10**9  # polls per execution that never ends one
ENGINE_NAIVE_MAX = 100  # naive runs longer than this are measured synthetically
INTERVAL = timedelta(seconds=INPUT["poll_interval"])  # type: ignore[arg-type]


def engine_ms_per_poll(polls: int, polls_per_execution: int) -> float:
    """Process CPU per poll of one ``polls``-poll run on devhost's engine (virtual time)."""
    original = state.POLLS_PER_EXECUTION
    state.POLLS_PER_EXECUTION = polls_per_execution
    engine, _ = engine_with(["Running"] * (polls - 1) + ["Completed"])
    try:
        result: dict[str, Any] = {}

        def run() -> None:
            iid = engine.start_new(batch_run.ORCHESTRATOR_NAME, input=INPUT)
            result.update(engine.wait_for_completion(iid, timeout=3600))

        cpu = cpu_seconds(run)
        assert result["runtimeStatus"] == "Completed", result
        assert result["output"]["polls"] == polls
        return cpu * 1000 / polls
    finally:
        engine.stop()
        state.POLLS_PER_EXECUTION = original


class NaiveHistory:
    """Histories of a naive run at any number of polls, cloned from a real 3-poll run."""

    def __init__(self) -> None:
        original = state.POLLS_PER_EXECUTION
        state.POLLS_PER_EXECUTION = NAIVE
        engine, _ = engine_with(["Running"] * 3 + ["Completed"])
        self.handle: Callable[[str], str] = engine.orchestrators[batch_run.ORCHESTRATOR_NAME]
        contexts: list[str] = []

        def recording(context: str) -> str:
            contexts.append(context)
            return self.handle(context)

        engine.orchestrators[batch_run.ORCHESTRATOR_NAME] = recording
        try:
            iid = engine.start_new(batch_run.ORCHESTRATOR_NAME, input=INPUT)
            assert engine.wait_for_completion(iid, timeout=60)["runtimeStatus"] == "Completed"
        finally:
            engine.stop()
            state.POLLS_PER_EXECUTION = original
        self.context = json.loads(max(contexts, key=lambda c: len(json.loads(c)["history"])))
        events = self.context["history"]
        self.head, self.block = events[:8], events[8:16]
        kinds = [e["EventType"] for e in self.block]
        assert kinds == [12, 11, 4, 13, 12, 5, 10, 13], kinds  # one poll: timer + activity

    def _block(self, i: int, played: bool = True) -> list[dict[str, Any]]:
        out = []
        for event in copy.deepcopy(self.block):
            for key in ("EventId", "TimerId", "TaskScheduledId"):
                if isinstance(event.get(key), int) and event[key] >= 0:
                    event[key] += 2 * i
            for key in ("Timestamp", "FireAt"):
                if key in event:
                    event[key] = format_time(parse_time(event[key]) + i * INTERVAL)
            event["IsPlayed"] = played
            out.append(event)
        return out

    def episodes(self, k: int) -> list[tuple[str, int]]:
        """The two episodes of poll ``k + 1`` after ``k`` polls, with their action counts."""
        past = self.head + [e for i in range(k) for e in self._block(i)]
        nxt, fresh = self._block(k), self._block(k, played=False)
        timer_fired = {**self.context, "history": past + fresh[:2], "isReplaying": False}
        completed = {
            **self.context,
            "history": past + nxt[:4] + fresh[4:6],
            "isReplaying": False,
        }
        return [(json.dumps(timer_fired), 2 * k + 3), (json.dumps(completed), 2 * k + 4)]

    def ms_per_poll(self, k: int, repeats: int) -> float:
        """SDK + app CPU of the poll after ``k`` polls (both its episodes), median."""
        original = state.POLLS_PER_EXECUTION
        state.POLLS_PER_EXECUTION = NAIVE
        try:
            total = 0.0
            for context, actions in self.episodes(k):
                times = []
                for _ in range(repeats):
                    start = time.process_time()
                    result = json.loads(self.handle(context))
                    times.append(time.process_time() - start)
                flat = [a for group in result["actions"] for a in group]
                assert len(flat) == actions, result.get("error")
                assert not result.get("isDone"), result
                total += statistics.median(times)
            return total * 1000
        finally:
            state.POLLS_PER_EXECUTION = original

    def run_mean_ms_per_poll(self, polls: int) -> float:
        """Mean CPU per poll of a naive ``polls``-poll run (linear in k: two samples)."""
        repeats = 3 if polls <= 100 else 1
        samples = [self.ms_per_poll(k, repeats) for k in (polls // 4, 3 * polls // 4)]
        return statistics.mean(samples)


def sizes_table(shim: bool, sizes: tuple[int, ...], naive: NaiveHistory) -> None:
    product = state.POLLS_PER_EXECUTION
    print(
        f"\nReplay CPU per poll, ms ({shim_label(shim)}; {machine()}; product: "
        f"POLLS_PER_EXECUTION={product})"
    )
    print(f"  {'polls':>6} {'product':>9} {'naive':>9} {'naive':>11} {'naive/':>8} {'N/10':>6}")
    print(f"  {'':>6} {'engine':>9} {'engine':>9} {'synthetic':>11} {'product':>8} {'prod.':>6}")
    first = None
    for polls in sizes:
        prod = engine_ms_per_poll(polls, product)
        first = first or prod
        eng = engine_ms_per_poll(polls, NAIVE) if polls <= ENGINE_NAIVE_MAX else None
        syn = naive.run_mean_ms_per_poll(polls)
        best_naive = eng if eng is not None else syn
        eng_s = f"{eng:9.2f}" if eng is not None else f"{'-':>9}"
        print(
            f"  {polls:>6} {prod:9.2f} {eng_s} {syn:11.2f} "
            f"x{best_naive / prod:7.1f} x{prod / first:5.2f}"
        )


def sweep_table(shim: bool, polls: int, values: tuple[int, ...]) -> None:
    print(f"\nPOLLS_PER_EXECUTION sweep, {polls}-poll run, ms CPU per poll ({shim_label(shim)})")
    rows = [(n, engine_ms_per_poll(polls, n)) for n in values]
    best = min(v for _, v in rows)
    for n, value in rows:
        mark = "  <- product" if n == state.POLLS_PER_EXECUTION else ""
        print(f"  {n:>4} {value:9.2f}  x{value / best:5.2f} of the best{mark}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shim", choices=("on", "off", "both"), default="both")
    parser.add_argument(
        "--sweep-shim", choices=("on", "off", "both"), help="the sweep's (default: --shim)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs (a smoke test)")
    args = parser.parse_args(argv)
    sizes = (10, 100) if args.quick else SIZES
    sweep_polls = 60 if args.quick else SWEEP_POLLS
    naive = NaiveHistory()
    for shim in shim_states(args.shim):
        with sdk_shim(shim):
            sizes_table(shim, sizes, naive)
    for shim in shim_states(args.sweep_shim or args.shim):
        with sdk_shim(shim):
            sweep_table(shim, sweep_polls, SWEEP)


if __name__ == "__main__":
    main()
