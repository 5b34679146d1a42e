"""Admission control end to end: ``MAX_ACTIVE_JOBS_PER_ENDPOINT`` on devhost + emulator + Azurite.

The emulator counts the jobs that are not final and keeps their peak (``GET /admin/active-jobs``,
sampled at every job creation); the endpoint's ``endpoint_slots`` entity is read through
devhost's management API.
"""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from batch_runs.admission import slot_key
from scripts.devstack import Stack, wait_until
from tests.e2e.conftest import INPUT_FOLDER, make_stack
from tests.support import Azurite

pytestmark = pytest.mark.e2e

ENDED = ("Completed", "Failed", "Terminated", "Canceled")


def _active_jobs(stack: Stack) -> dict[str, int]:
    return dict(requests.get(f"{stack.emulator_url}/admin/active-jobs", timeout=5).json())


def _slots(stack: Stack) -> dict[str, Any] | None:
    resp = requests.get(
        f"{stack.devhost_url}/runtime/webhooks/durabletask/entities/endpoint_slots/"
        f"{slot_key(stack.endpoint_uri)}",
        params={"code": stack.function_key},
        timeout=5,
    )
    return None if resp.status_code == 404 else dict(resp.json())


def _no_slot_held(stack: Stack) -> Callable[[], bool]:
    def check() -> bool:
        slots = _slots(stack)
        return slots is not None and slots["holders"] == [] and slots["queue"] == []

    return check


def _stack(tmp: Path, azurite: Azurite, limit: int, path: str, phase: float) -> Stack:
    return make_stack(
        tmp,
        azurite,
        phase_seconds=phase,
        settings={
            "SCHEDULED_INPUT_URI": "",
            "POLL_INTERVAL_SECONDS": "1",
            "MAX_ACTIVE_JOBS_PER_ENDPOINT": str(limit),
            "SCORING_BLOB_PATH": f"{path}/{{name}}",
            "OUTPUT_URI_TEMPLATE": (
                f"azureml://datastores/workspaceblobstore/paths/{path}/{{run_id}}/predictions.csv"
            ),
        },
    )


def test_100_blob_uploads_never_exceed_8_active_jobs(
    azurite: Azurite, sample_data: list[Path], tmp_path: Path
) -> None:
    stack = _stack(tmp_path, azurite, 8, "admission-input", 0.3)
    try:
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        container = service.get_container_client("admission-input")
        if not container.exists():
            container.create_container()
        data = sample_data[0].read_bytes()
        for i in range(100):
            container.upload_blob(f"adm-{i:03d}.csv", data, overwrite=True)

        seen_waiting: list[str] = []

        def all_done() -> bool:
            runs = stack.list_instances("blob-")
            for run in runs:
                custom = run.get("customStatus") or {}
                if isinstance(custom, dict) and custom.get("queue_position"):
                    seen_waiting.append(run["instanceId"])
            return len(runs) == 100 and all(r["runtimeStatus"] in ENDED for r in runs)

        wait_until(all_done, timeout=600, interval=1.0, what="100 blob runs to end")

        runs = stack.list_instances("blob-")
        assert [r["runtimeStatus"] for r in runs] == ["Completed"] * 100
        active = _active_jobs(stack)
        assert 2 <= active["peak"] <= 8, active
        assert active["active"] == 0
        assert stack.emulator_counters()["jobs_created"] == 100
        assert seen_waiting  # runs did queue behind the cap
        wait_until(_no_slot_held(stack), timeout=10, what="every slot released")
    finally:
        stack.stop()


def test_run_view_says_waiting_for_capacity_and_kill9_loses_nothing(
    azurite: Azurite, sample_data: list[Path], tmp_path: Path
) -> None:
    stack = _stack(tmp_path, azurite, 2, "admission-kill9", 1.0)
    try:
        body = {"endpoint_input_uri": INPUT_FOLDER, "poll_interval": 1}
        ids = [stack.api("POST", "runs", json=body).json()["id"] for _ in range(6)]

        def queued_view() -> dict[str, Any] | None:
            for run_id in ids:
                view = stack.run_view(run_id)
                if view.get("queue_position"):
                    return view
            return None

        wait_until(lambda: queued_view() is not None, timeout=60, what="a queued run")
        view = queued_view()
        assert view is not None
        assert view["phase"] == "waiting"
        assert view["status_message"] == f"waiting for capacity (position {view['queue_position']})"
        wait_until(
            lambda: len((_slots(stack) or {}).get("holders", [])) == 2,
            timeout=60,
            what="two slots held",
        )

        assert stack.devhost is not None
        stack.devhost.kill9()
        stack.start_devhost()
        views = [stack.wait_run(run_id, timeout=180) for run_id in ids]

        assert [v["runtime_status"] for v in views] == ["Completed"] * 6
        assert _active_jobs(stack)["peak"] <= 2
        assert stack.emulator_counters()["jobs_created"] == 6
        wait_until(_no_slot_held(stack), timeout=10, what="every slot released")
    finally:
        stack.stop()


def test_a_terminated_slot_holder_is_reconciled(
    azurite: Azurite, sample_data: list[Path], tmp_path: Path
) -> None:
    stack = _stack(tmp_path, azurite, 1, "admission-leak", 2.0)
    try:
        body = {"endpoint_input_uri": INPUT_FOLDER, "poll_interval": 1}
        holder = stack.api("POST", "runs", json=body).json()["id"]
        wait_until(lambda: stack.run_view(holder).get("polls", 0) >= 1, timeout=60, what="polls")
        waiter = stack.api("POST", "runs", json=body).json()["id"]
        wait_until(
            lambda: stack.run_view(waiter).get("queue_position") == 1,
            timeout=30,
            what="the second run to wait",
        )
        # Terminated through the management API: the run never releases its slot itself.
        requests.post(
            f"{stack.devhost_url}/runtime/webhooks/durabletask/instances/{holder}/terminate",
            params={"code": stack.function_key, "reason": "test"},
            timeout=5,
        ).raise_for_status()
        started = time.monotonic()
        view = stack.wait_run(waiter, timeout=120)

        assert view["runtime_status"] == "Completed"
        assert time.monotonic() - started < 90
        assert stack.run_view(holder)["runtime_status"] == "Terminated"
        wait_until(_no_slot_held(stack), timeout=10, what="every slot released")
    finally:
        stack.stop()
