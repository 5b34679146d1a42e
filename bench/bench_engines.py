"""devhost vs. Microsoft's ``durabletask`` in-memory backend on the same monitor shape.

The shape: N instances started at once, each ``invoke`` + 10 x (a zero-delay durable timer +
``poll``), with instant activities, in real time. The same orchestrator is written once per
SDK: for devhost in the Azure Functions Durable SDK (azure-functions-durable, which devhost
drives over the out-of-process protocol, as Azure's extension does), for the peer in
``durabletask``'s own SDK (its ``TaskHubGrpcWorker`` against
``durabletask.testing.InMemoryOrchestrationBackend`` over gRPC on 127.0.0.1). devhost persists
every step to SQLite **on disk** before acknowledging it; the peer keeps everything in memory.

Each engine runs in a fresh child process (its own peak RSS); the engines alternate over
``--repeats`` rounds and the table shows medians. Per instance, completion latency is the
engine's own record: devhost's last history event minus its first, durabletask's
``last_updated_at`` minus ``created_at``. With ``--shim on`` devhost's process
applies the app's SDK timestamp shim first (as ``function_app`` does in Azure); devhost itself
never applies it.

    python -m bench.bench_engines [--instances 1000] [--repeats 1] [--shim on|off|both]
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench._common import machine, shim_label, shim_states

POLLS = 10
ROOT = Path(__file__).resolve().parents[1]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(wall: float, latencies: list[float], n: int) -> dict[str, float]:
    return {
        "per_s": n / wall,
        "p50": _percentile(latencies, 0.5),
        "p99": _percentile(latencies, 0.99),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_s": time.process_time(),
        "wall_s": wall,
    }


def run_devhost(n: int, shim: bool) -> dict[str, float]:
    import azure.durable_functions as df

    from devhost.engine import Engine
    from orchestrators import _sdk_timestamps

    if shim:
        assert _sdk_timestamps.apply()
    bp = df.Blueprint()

    @bp.orchestration_trigger(context_name="context")
    def monitor(context: df.DurableOrchestrationContext):
        job = yield context.call_activity("invoke", context.instance_id)
        status = None
        for _ in range(POLLS):
            yield context.create_timer(context.current_utc_datetime)
            status = yield context.call_activity("poll", job)
        return status

    handle = monitor.build().get_user_function()
    activities = {"invoke": lambda iid: {"job": f"job-{iid}"}, "poll": lambda job: "Running"}
    state = Path(tempfile.mkdtemp(prefix="bench-engines-")) / "state.sqlite"
    with Engine(state, {"monitor": handle}, activities) as engine:
        start = time.perf_counter()
        ids = [engine.start_new("monitor", input=None) for _ in range(n)]
        statuses = [engine.wait_for_completion(iid, timeout=3600) for iid in ids]
        wall = time.perf_counter() - start
        # The status API has whole seconds; the history's first and last events have micros.
        histories = [engine.get_history_events(iid) for iid in ids]
    assert all(s["runtimeStatus"] == "Completed" for s in statuses)

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    latencies = [
        (at(h[-1]["Timestamp"]) - at(h[0]["Timestamp"])).total_seconds() for h in histories
    ]
    return _summary(wall, latencies, n)


def run_durabletask(n: int) -> dict[str, float]:
    import logging

    from durabletask import client as dt_client
    from durabletask import task
    from durabletask import worker as dt_worker
    from durabletask.testing.in_memory_backend import InMemoryOrchestrationBackend

    quiet = logging.getLogger("bench.durabletask")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False

    def invoke(_ctx: task.ActivityContext, iid: str) -> dict[str, str]:
        return {"job": f"job-{iid}"}

    def poll(_ctx: task.ActivityContext, _job: Any) -> str:
        return "Running"

    def monitor(ctx: task.OrchestrationContext, _input: Any):
        job = yield ctx.call_activity(invoke, input=ctx.instance_id)
        status = None
        for _ in range(POLLS):
            yield ctx.create_timer(timedelta(0))
            status = yield ctx.call_activity(poll, input=job)
        return status

    import socket

    with socket.socket() as probe:  # a free port (the backend binds the port it is given)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = InMemoryOrchestrationBackend(port=port, max_history_size=100_000)
    backend.start()
    address = f"127.0.0.1:{port}"
    client = dt_client.TaskHubGrpcClient(host_address=address, logger=quiet)
    worker = dt_worker.TaskHubGrpcWorker(host_address=address, logger=quiet)
    worker.add_orchestrator(monitor)
    worker.add_activity(invoke)
    worker.add_activity(poll)
    worker.start()
    try:
        start = time.perf_counter()
        ids = [client.schedule_new_orchestration(monitor) for _ in range(n)]
        states = [client.wait_for_orchestration_completion(i, timeout=3600) for i in ids]
        wall = time.perf_counter() - start
    finally:
        worker.stop()
        client.close()
        backend.stop()
    assert all(s is not None and s.runtime_status.name == "COMPLETED" for s in states)
    latencies = [
        (s.last_updated_at - s.created_at).total_seconds() for s in states if s is not None
    ]
    return _summary(wall, latencies, n)


def child(engine: str, n: int, shim: bool) -> dict[str, float]:
    """Run one engine in a fresh interpreter and read back its figures."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_engines", "--child", engine, "--instances", str(n)]
        + (["--shim", "on"] if shim else ["--shim", "off"]),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--shim", choices=("on", "off", "both"), default="on")
    parser.add_argument("--child", choices=("devhost", "durabletask"))
    args = parser.parse_args(argv)
    if args.child == "devhost":
        print(json.dumps(run_devhost(args.instances, args.shim == "on")))
        return
    if args.child == "durabletask":
        print(json.dumps(run_durabletask(args.instances)))
        return

    variants = [
        (f"devhost, SQLite on disk, {shim_label(s)}", "devhost", s) for s in shim_states(args.shim)
    ]
    variants.append(("durabletask 1.12 in-memory backend", "durabletask", False))
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in variants}
    for _ in range(args.repeats):
        for label, engine, shim in variants:
            runs[label].append(child(engine, args.instances, shim))
    peer = statistics.median(r["per_s"] for r in runs[variants[-1][0]])
    print(
        f"\nMonitor shape: {args.instances} instances x (invoke + {POLLS} x (timer + poll)), "
        f"instant activities, real time; median of {args.repeats} ({machine()})"
    )
    print(
        f"  {'engine':<42} {'inst/s':>7} {'vs peer':>8} {'p50 s':>7} {'p99 s':>7} "
        f"{'RSS MB':>7} {'CPU s':>7}"
    )
    for label, _, _ in variants:
        med = {k: statistics.median(r[k] for r in runs[label]) for k in runs[label][0]}
        print(
            f"  {label:<42} {med['per_s']:7.1f} x{med['per_s'] / peer:6.2f} {med['p50']:7.2f} "
            f"{med['p99']:7.2f} {med['rss_mb']:7.0f} {med['cpu_s']:7.1f}"
        )


if __name__ == "__main__":
    main()
