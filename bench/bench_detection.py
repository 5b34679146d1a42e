"""Detection latency and calls per job on the real offline stack, per polling policy vs. ADF.

Azurite + the emulator + devhost serving the app (``scripts.devstack.Stack``), in real but
short time: every job gets a known length ``T`` from a lognormal spread around ``--median``
seconds (fixed seed), set through the emulator's ``job`` faults (its phase script: Queued, then
Running until ``T``, then Completed). All jobs of a policy run at once. Per job:

- detection latency: the run's ``finished`` (orchestration time of the status check that saw
  the job terminal) minus the job's ``endTime`` as the emulator reports it;
- calls: the run's status checks (``polls``) + the submit POST + the idempotency lookup GET.

ADF's Until-loop model for the same job: ``1 + ceil(T / poll_interval)`` calls (one POST, one
GET per wait), detection up to ``poll_interval`` (on average half).

``POLICIES`` is the extension point: a name and the run parameters that select the policy.
A new policy (e.g. predictive polling) is one more entry.

    python -m bench.bench_detection [--jobs 8] [--median 10] [--interval 2]
"""

import argparse
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from bench._common import machine
from scripts.devstack import Stack

INPUT = "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/"
QUEUED_SECONDS = 0.5

#: Polling policies measured: (name, run parameters given ``poll_interval`` seconds). Add a
#: policy here (e.g. ``("predictive", lambda p: {"poll_interval": p, "poll_policy": ...})``).
POLICIES: list[tuple[str, Callable[[int], dict[str, Any]]]] = [
    ("fixed (ADF-like)", lambda p: {"poll_interval": p}),
    (
        "backoff x1.5, cap 4 intervals",
        lambda p: {
            "poll_interval": p,
            "poll_backoff": 1.5,
            "poll_max_interval": 4 * p,
        },
    ),
]


def job_lengths(n: int, median: float, seed: int = 15) -> list[float]:
    """``n`` job lengths (seconds), lognormal around ``median`` (sigma 0.5), fixed seed."""
    rng = random.Random(seed)
    return [max(QUEUED_SECONDS + 0.5, rng.lognormvariate(math.log(median), 0.5)) for _ in range(n)]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def run_policy(
    stack: Stack, params: dict[str, Any], lengths: list[float]
) -> list[dict[str, float]]:
    """Start one run per job length at once; return each job's latency, calls and length."""
    for length in lengths:
        fault = {
            "kind": "job",
            "count": 1,
            "script": [["Queued", QUEUED_SECONDS], ["Running", length - QUEUED_SECONDS]],
            "outcome": "Completed",
        }
        requests.post(
            f"{stack.emulator_url}/admin/faults", json=fault, timeout=5
        ).raise_for_status()
    ids = []
    for _ in lengths:
        resp = stack.api("POST", "runs", json={"endpoint_input_uri": INPUT, **params})
        resp.raise_for_status()
        ids.append(str(resp.json()["id"]))
    with ThreadPoolExecutor(len(ids)) as pool:
        views = list(pool.map(lambda i: stack.wait_run(i, timeout=600), ids))
    out = []
    for view in views:
        assert view["runtime_status"] == "Completed", view
        output = view["output"]
        job = requests.get(
            f"{stack.endpoint_uri}/{output['job_name']}",
            headers={"Authorization": "Bearer local-dev"},
            timeout=5,
        ).json()["properties"]
        ended = _at(job["endTime"])
        started = _at(job.get("startTime") or job.get("creationContext", {}).get("createdAt"))
        out.append(
            {
                "latency": (_at(output["finished"]) - ended).total_seconds(),
                "calls": output["polls"] + 2,
                "length": (ended - started).total_seconds(),
            }
        )
    return out


def upload_sample_data(stack: Stack) -> None:
    out = tempfile.mkdtemp(prefix="bench-detection-data-")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "aml_emulator",
            "sample-data",
            "--out",
            out,
            "--upload",
            "--storage-connection-string",
            stack.connection_string,
        ],
        check=True,
        capture_output=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--median", type=float, default=10.0, help="median job length, s")
    parser.add_argument("--interval", type=int, default=2, help="poll_interval, s")
    args = parser.parse_args(argv)
    lengths = job_lengths(args.jobs, args.median)
    run_dir = Path(tempfile.mkdtemp(prefix="bench-detection-"))
    start = time.perf_counter()
    rows = []
    with Stack(run_dir=run_dir, settings={"SCHEDULED_INPUT_URI": ""}) as stack:
        upload_sample_data(stack)
        for name, params in POLICIES:
            rows.append((name, run_policy(stack, params(args.interval), lengths)))
    p = args.interval
    print(
        f"\nDetection on the offline stack: {args.jobs} jobs, lengths lognormal around "
        f"{args.median:g} s, poll_interval {p} s, real time ({machine()}; "
        f"{time.perf_counter() - start:.0f} s)"
    )
    print(f"  {'policy':<32} {'latency p50 s':>13} {'max s':>7} {'calls/job':>10}")
    for name, results in rows:
        latencies = [r["latency"] for r in results]
        calls = statistics.mean(r["calls"] for r in results)
        print(
            f"  {name:<32} {statistics.median(latencies):13.2f} {max(latencies):7.2f} {calls:10.1f}"
        )
    measured = [r["length"] for r in rows[0][1]]
    adf_calls = statistics.mean(1 + math.ceil(t / p) for t in measured)
    print(f"  {'ADF model (1 + ceil(T/p))':<32} {p / 2:13.2f} {p:7.2f} {adf_calls:10.1f}")
    print("  (ADF latency: uniform in [0, poll_interval]; its median and maximum)")


if __name__ == "__main__":
    main()
