"""Admission control at volume: N blob uploads with ``MAX_ACTIVE_JOBS_PER_ENDPOINT`` = 8.

Starts its own offline stack (Azurite, emulator, devhost), uploads N small CSVs to the blob
trigger's container, waits for every run to end and reports the wall time, the run rate and
the emulator's peak of concurrently active jobs (which must not exceed the limit), and that
every run completed and the endpoint's slots ended empty.

    python -m bench.bench_admission [--runs 1000] [--limit 8] [--phase 0.3]
"""

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

import requests
from azure.storage.blob import BlobServiceClient

from aml_emulator import generate_sample_files
from batch_runs.admission import slot_key
from scripts.devstack import Stack, wait_until

CONTAINER = "bench-admission"
#: One of the emulator's sample files (the 13 heart columns its model scores).
CSV = generate_sample_files()[1].content
ENDED = ("Completed", "Failed", "Terminated", "Canceled")


def run(runs: int, limit: int, phase: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-admission-") as tmp:
        stack = Stack(
            run_dir=Path(tmp),
            phase_seconds=phase,
            settings={
                "SCHEDULED_INPUT_URI": "",
                "POLL_INTERVAL_SECONDS": "1",
                "MAX_ACTIVE_JOBS_PER_ENDPOINT": str(limit),
                "SCORING_BLOB_PATH": f"{CONTAINER}/{{name}}",
                "RUN_TIMEOUT_SECONDS": "7200",
            },
        )
        try:
            stack.start()
            container = BlobServiceClient.from_connection_string(
                stack.connection_string
            ).get_container_client(CONTAINER)
            if not container.exists():
                container.create_container()
            start = time.perf_counter()
            for i in range(runs):
                container.upload_blob(f"bench-{i:05d}.csv", CSV, overwrite=True)

            def done() -> bool:
                listed = stack.list_instances("blob-")
                return len(listed) == runs and all(r["runtimeStatus"] in ENDED for r in listed)

            wait_until(done, timeout=runs * 10, interval=2.0, what=f"{runs} runs to end")
            elapsed = time.perf_counter() - start
            listed = stack.list_instances("blob-")
            completed = sum(r["runtimeStatus"] == "Completed" for r in listed)
            active = requests.get(f"{stack.emulator_url}/admin/active-jobs", timeout=5).json()
            slots = requests.get(
                f"{stack.devhost_url}/runtime/webhooks/durabletask/entities/endpoint_slots/"
                f"{slot_key(stack.endpoint_uri)}",
                params={"code": stack.function_key},
                timeout=5,
            ).json()
            return {
                "runs": runs,
                "completed": completed,
                "seconds": elapsed,
                "runs_per_second": runs / elapsed,
                "peak_active_jobs": active["peak"],
                "jobs_created": stack.emulator_counters()["jobs_created"],
                "slots_left": len(slots["holders"]) + len(slots["queue"]),
            }
        finally:
            stack.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--phase", type=float, default=0.3)
    args = parser.parse_args(argv)
    # A SIGTERM (e.g. ``timeout``) unwinds through ``finally``, so the stack's processes stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    figures = run(args.runs, args.limit, args.phase)
    print(f"Admission control, {args.runs} blob uploads, limit {args.limit}:")
    for name, value in figures.items():
        print(
            f"  {name:>18}: {value:.1f}" if isinstance(value, float) else f"  {name:>18}: {value}"
        )
    ok = (
        figures["completed"] == args.runs
        and figures["peak_active_jobs"] <= args.limit
        and figures["slots_left"] == 0
    )
    print("  result: " + ("OK" if ok else "FAILED"))
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
