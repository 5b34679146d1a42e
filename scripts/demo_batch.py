"""The batch part of ``make demo``: 20 files, at most 4 jobs at a time, a live progress bar.

Uploads 20 CSV files, starts ``POST /api/batches`` with ``max_parallel_jobs: 4`` and redraws a
text progress bar from the counts of ``GET /api/batches/{id}`` until the batch has ended, with
the most children seen running at once beside it. Every child notifies the demo's loopback
receiver (``notify_url``); the demo shows what arrived and checks each signature. (The
emulator's ``GET /admin/stats`` peak would also count the demo's scheduled runs, which keep
firing every 20 s.)
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

from scripts.demo_notify import NotificationReceiver
from scripts.devstack import DATASTORE_CONTAINER, Stack

BATCH_SIZE = 20
BATCH_CAP = 4
BATCH_PREFIX = "demo-batch"
DATASTORE_PATHS = "azureml://datastores/workspaceblobstore/paths/"
ENDED = {"Completed", "Failed", "Terminated", "Canceled"}


def progress_bar(counts: Mapping[str, int], total: int, *, width: int = 30) -> str:
    """``[#####+++.....] 7/20 done | running 4 | pending 9 | failed 0 | cancelled 0``.

    ``#`` = ended (completed, failed or cancelled), ``+`` = running, ``.`` = pending.
    """
    done = sum(counts.get(k, 0) for k in ("completed", "failed", "cancelled"))
    running = counts.get("running", 0)
    total = max(total, 1)
    full = round(width * done / total)
    busy = min(width - full, round(width * running / total))
    bar = "#" * full + "+" * busy + "." * (width - full - busy)
    return (
        f"[{bar}] {done}/{total} done | running {running} | pending {counts.get('pending', 0)}"
        f" | failed {counts.get('failed', 0)} | cancelled {counts.get('cancelled', 0)}"
    )


def upload_batch_files(stack: Stack, samples: list[Path]) -> list[str]:
    """20 small CSV files (slices of the samples) → their datastore URIs."""
    rows: list[str] = []
    header = ""
    for sample in samples:
        lines = sample.read_text().splitlines()
        header, rows = lines[0], rows + lines[1:]
    service = BlobServiceClient.from_connection_string(stack.connection_string)
    container = service.get_container_client(DATASTORE_CONTAINER)
    per_file = max(1, len(rows) // BATCH_SIZE)
    uris = []
    for i in range(BATCH_SIZE):
        chunk = rows[i * per_file : (i + 1) * per_file] or rows[:1]
        name = f"{BATCH_PREFIX}/part-{i:02d}.csv"
        container.upload_blob(name, "\n".join([header, *chunk]) + "\n", overwrite=True)
        uris.append(DATASTORE_PATHS + name)
    return uris


def start_batch(stack: Stack, inputs: list[str], notify_url: str | None = None) -> str:
    body: dict[str, Any] = {"inputs": inputs, "max_parallel_jobs": BATCH_CAP, "poll_interval": 2}
    if notify_url:
        body["notify_url"] = notify_url
    resp = stack.api("POST", "batches", json=body)
    if resp.status_code != 202:
        raise RuntimeError(f"POST /api/batches answered {resp.status_code}: {resp.text}")
    return str(resp.json()["id"])


def follow_batch(stack: Stack, batch_id: str, *, timeout: float) -> dict[str, Any]:
    """Redraw the progress bar until the batch has ended; return its last view."""
    started = time.monotonic()
    live = sys.stdout.isatty()
    last = ""
    view: dict[str, Any] = {}
    most = 0
    while True:
        resp = stack.api("GET", f"batches/{batch_id}", params={"children_top": "1"})
        if resp.status_code == 200:
            view = resp.json()
        counts = view.get("counts") or {}
        most = max(most, counts.get("running", 0))
        line = progress_bar(counts, view.get("total") or BATCH_SIZE)
        line += f" | most running at once {most} (cap {BATCH_CAP})"
        if live:
            sys.stdout.write("\r" + line.ljust(120))
        elif line != last:
            sys.stdout.write(f"  [{time.monotonic() - started:4.0f}s] {line}\n")
        last = line
        sys.stdout.flush()
        ended = view.get("runtime_status") in ENDED
        if ended or time.monotonic() - started > timeout:
            if live:
                sys.stdout.write("\n")
            if not ended:
                raise TimeoutError(f"batch {batch_id} did not finish within {timeout:.0f}s")
            return view
        time.sleep(0.5)


def print_notifications(notifications: list[dict[str, Any]], expected: int) -> bool:
    """Show what the receiver got: how many, signatures, and the first summary in full.

    True when every child's notification arrived once, each with a valid signature."""
    valid = sum(1 for n in notifications if n["signature_ok"])
    runs = {n["summary"].get("run_id") for n in notifications}
    print(
        f"    notifications received: {len(notifications)} for {len(runs)} runs "
        f"(expected {expected}), valid HMAC-SHA256 signatures: {valid}",
        flush=True,
    )
    if notifications:
        first = json.dumps(notifications[0]["summary"], indent=2, sort_keys=True)
        print("    the first one:\n" + "\n".join("      " + line for line in first.splitlines()))
    return len(notifications) == expected == len(runs) == valid


def batch_summary(view: Mapping[str, Any]) -> bool:
    """Print the batch's outcome; True when every input completed."""
    outcomes = (view.get("output") or {}).get("outcomes") or []
    counts = view.get("counts") or {}
    print(f"  batch {view.get('id')}: {view.get('runtime_status')}", flush=True)
    print(
        f"    {counts.get('completed', 0)} completed, {counts.get('failed', 0)} failed, "
        f"{counts.get('cancelled', 0)} cancelled of {len(outcomes)} inputs",
        flush=True,
    )
    for outcome in outcomes:
        if outcome.get("state") != "completed":
            print(f"    input {outcome.get('index')}: {outcome.get('error')}", flush=True)
    return view.get("runtime_status") == "Completed" and counts.get("completed") == BATCH_SIZE


def run_batch_demo(
    stack: Stack, samples: list[Path], receiver: NotificationReceiver, *, timeout: float
) -> bool:
    """Upload, start, follow, summarise, and show the notifications the receiver got."""
    inputs = upload_batch_files(stack, samples)
    batch_id = start_batch(stack, inputs, receiver.url)
    print(
        f"4. batch     POST /api/batches ({len(inputs)} files, max_parallel_jobs "
        f"{BATCH_CAP}) -> batch {batch_id}",
        flush=True,
    )
    view = follow_batch(stack, batch_id, timeout=timeout)
    ok = batch_summary(view)
    notes = receiver.wait_for(f"{batch_id}:", len(inputs), timeout=30)
    return print_notifications(notes, len(inputs)) and ok
