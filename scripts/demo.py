"""``make demo``: the main job end to end on the offline stack.

Starts Azurite, the batch endpoint emulator and devhost (serving this repository's
``function_app.py``), uploads the sample heart-disease data, then starts one run in each of
the three ways the app supports: an HTTP call, a blob upload and the schedule. It follows the
three runs to the end with a live progress line, prints a summary per run (job, final status,
rows scored, positive rate, output location), then runs a batch of 20 files with at most 4 jobs
at a time under a live progress bar (``scripts/demo_batch.py``), and stops everything it
started. Exit code 1 if any run or batch input did not complete.

Timings are shortened for the demo: 2 s poll interval, 1 s emulator job phases, a schedule
firing every 20 seconds. Production defaults are a 120 s poll interval and real job times.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

from scripts.demo_batch import run_batch_demo
from scripts.demo_notify import NotificationReceiver
from scripts.devstack import PYTHON, REPO_ROOT, Stack, read_predictions, wait_until

INPUT_URI = "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/"
TRIGGER_CONTAINER = "scoring-input"
TERMINAL = {"Completed", "Failed", "Terminated", "Canceled"}


@dataclass
class Run:
    how: str
    instance_id: str | None = None
    view: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        return (self.view or {}).get("runtime_status") or "Starting"

    def line(self) -> str:
        v = self.view or {}
        job = v.get("job_status") or "-"
        return f"{self.how}: {self.status}/{job} polls={v.get('polls', 0)}"


def _say(text: str = "") -> None:
    print(text, flush=True)


def _upload_samples(stack: Stack, out_dir: Path) -> list[Path]:
    subprocess.run(
        [
            PYTHON,
            "-m",
            "aml_emulator",
            "sample-data",
            "--out",
            str(out_dir),
            "--upload",
            "--storage-connection-string",
            stack.connection_string,
        ],
        check=True,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
    )
    return sorted(out_dir.glob("*.csv"))


def _start_http_run(stack: Stack) -> str:
    body = {"endpoint_input_uri": INPUT_URI, "endpoint_input_type": "UriFolder", "poll_interval": 2}
    resp = stack.api("POST", "runs", json=body)
    if resp.status_code != 202:
        raise RuntimeError(f"POST /api/runs answered {resp.status_code}: {resp.text}")
    return str(resp.json()["id"])


def _upload_trigger_blob(stack: Stack, sample: Path) -> None:
    service = BlobServiceClient.from_connection_string(stack.connection_string)
    container = service.get_container_client(TRIGGER_CONTAINER)
    if not container.exists():
        container.create_container()
    container.upload_blob(f"demo-{sample.name}", sample.read_bytes(), overwrite=True)


def _wait_for_instance(stack: Stack, prefix: str, timeout: float) -> str:
    found: list[str] = []

    def probe() -> bool:
        found[:] = [i["instanceId"] for i in stack.list_instances(prefix)]
        return bool(found)

    wait_until(probe, timeout=timeout, interval=0.5, what=f"a run with id prefix {prefix!r}")
    return sorted(found)[0]


def _follow(stack: Stack, runs: list[Run], timeout: float) -> None:
    started = time.monotonic()
    live = sys.stdout.isatty()  # one rewritten line on a terminal; a line per change otherwise
    last = ""
    while True:
        for run in runs:
            if run.instance_id and run.status not in TERMINAL:
                resp = stack.api("GET", f"runs/{run.instance_id}")
                if resp.status_code == 200:
                    run.view = resp.json()
        elapsed = time.monotonic() - started
        state = " | ".join(r.line() for r in runs)
        if live:
            sys.stdout.write("\r" + f"{state} | {elapsed:4.0f}s".ljust(120))
        elif state != last:
            sys.stdout.write(f"  [{elapsed:4.0f}s] {state}\n")
        last = state
        sys.stdout.flush()
        if all(r.status in TERMINAL for r in runs):
            if live:
                sys.stdout.write("\n")
            return
        if elapsed > timeout:
            if live:
                sys.stdout.write("\n")
            raise TimeoutError(f"runs did not finish within {timeout:.0f}s")
        time.sleep(0.5)


def _predictions(stack: Stack, output_uri: str) -> tuple[int, float]:
    rows = read_predictions(stack.connection_string, output_uri)
    positives = sum(1 for r in rows if len(r) >= 2 and r[1].strip() == "1")
    return len(rows), (positives / len(rows) if rows else 0.0)


def _summary(stack: Stack, runs: list[Run]) -> bool:
    ok = True
    _say("\nSummary")
    for run in runs:
        v = run.view or {}
        _say(f"  {run.how} run {run.instance_id}")
        _say(f"    job          {v.get('job_name')}  ({v.get('studio_url')})")
        _say(
            f"    final status {run.status} / job {v.get('job_status')} "
            f"after {v.get('polls')} polls"
        )
        if run.status == "Completed":
            output_uri = (v.get("output") or {}).get("output_uri", "")
            rows, rate = _predictions(stack, output_uri)
            _say(f"    rows scored  {rows}   positive rate {rate:.1%}")
            _say(f"    output       {output_uri}")
        else:
            ok = False
            _say(f"    error        {v.get('error')}")
    return ok


def _run_list(stack: Stack) -> None:
    """``GET /api/runs``: every run the app knows, as a user would list them."""
    resp = stack.api("GET", "runs", params={"top": "20"})
    resp.raise_for_status()
    _say("\nGET /api/runs")
    for view in resp.json().get("value", []):
        _say(
            f"  {view['id'][:40]:<40} {view.get('runtime_status') or '':<10} "
            f"job {view.get('job_status') or '-':<10} polls {view.get('polls')}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=REPO_ROOT / ".run" / "demo")
    parser.add_argument("--timeout", type=float, default=150.0)
    args = parser.parse_args(argv)

    shutil.rmtree(args.run_dir, ignore_errors=True)
    receiver = NotificationReceiver().start()
    stack = Stack(
        run_dir=args.run_dir,
        settings={
            "SCORING_SCHEDULE": "*/20 * * * * *",
            "POLL_INTERVAL_SECONDS": "2",
            **receiver.settings(),
        },
        phase_seconds=1.0,
        azurite_port=int(os.environ.get("DEMO_AZURITE_PORT", "10000")),
        emulator_port=int(os.environ.get("DEMO_EMULATOR_PORT", "5100")),
        devhost_port=int(os.environ.get("DEMO_DEVHOST_PORT", "7071")),
    )
    # Stop every child on Ctrl-C / SIGTERM too, not only on a normal exit.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    _say(
        "Demo timings are shortened: poll interval 2 s, emulator job phases 1 s, "
        "schedule every 20 s (production default poll interval: 120 s)."
    )
    try:
        _say("Starting Azurite, the batch endpoint emulator and devhost ...")
        stack.start()
        _say(f"  Azurite   http://127.0.0.1:{stack.azurite_port}   (logs in {args.run_dir})")
        _say(f"  emulator  {stack.endpoint_uri}")
        _say(f"  devhost   {stack.devhost_url}/api/runs")
        samples = _upload_samples(stack, args.run_dir / "sample-data")
        _say(f"Uploaded {len(samples)} sample files to {INPUT_URI}")

        runs = [Run("HTTP"), Run("blob"), Run("schedule")]
        runs[0].instance_id = _start_http_run(stack)
        _say(f"1. HTTP      POST /api/runs -> run {runs[0].instance_id}")
        _upload_trigger_blob(stack, samples[0])
        runs[1].instance_id = _wait_for_instance(stack, "blob-", timeout=30)
        _say(
            f"2. blob      uploaded {TRIGGER_CONTAINER}/demo-{samples[0].name} -> run "
            f"{runs[1].instance_id}"
        )
        runs[2].instance_id = _wait_for_instance(stack, "schedule-", timeout=45)
        _say(f"3. schedule  '*/20 * * * * *' fired -> run {runs[2].instance_id}")

        _follow(stack, runs, timeout=args.timeout)
        ok = _summary(stack, runs)
        _run_list(stack)
        _say("")
        ok = run_batch_demo(stack, samples, receiver, timeout=args.timeout) and ok
    except KeyboardInterrupt:
        _say("\ninterrupted")
        ok = False
    except Exception as exc:
        _say(f"\ndemo failed: {exc}")
        ok = False
    finally:
        stack.stop()
        receiver.stop()
        _say("Stopped Azurite, the emulator and devhost.")
    _say("All runs and the batch completed." if ok else "Not everything completed (see above).")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
