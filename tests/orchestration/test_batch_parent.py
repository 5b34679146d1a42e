"""``batch_endpoint_batch`` through the real SDK replay on devhost's engine, in virtual time.

Children are the product's ``batch_endpoint_run`` with its real activity bindings against a
scripted endpoint (tests/orchestration/conftest.py).
"""

import json

import pytest

from batch_endpoint import ClientError
from batch_runs import batches
from orchestrators import batch_parent
from tests.orchestration.conftest import handle

DS = "azureml://datastores/workspaceblobstore/paths/"
PARENT = {batch_parent.BATCH_ORCHESTRATOR_NAME: handle(batch_parent.batch_endpoint_batch)}


def _batch(n: int, cap: int) -> dict:
    inputs = [f"{DS}in/{i:03d}.csv" for i in range(n)]
    return {
        "batch": {"inputs": inputs, "parameters": {"poll_interval": 60}, "max_parallel_jobs": cap}
    }


def test_every_input_gets_an_outcome_across_continue_as_new(make_harness, monkeypatch, caplog):
    caplog.set_level("INFO", logger="devhost.store")
    monkeypatch.setattr(batches, "CHILDREN_PER_EXECUTION", 3)  # 10 inputs: 4 executions
    h = make_harness(
        ["Running", "Completed"],
        per_job=True,
        extra_orchestrators=PARENT,
        invoke_errors=[ClientError(400, "UserError", "bad input")],
    )
    status = h.run(_batch(10, 2), name="batch_endpoint_batch", instance_id="batch-t", timeout=120)

    assert status["runtimeStatus"] == "Completed", status
    out = status["output"]
    assert [o["id"] for o in out["outcomes"]] == [f"batch-t:{i}" for i in range(10)]
    assert out["counts"] == {
        "pending": 0,
        "running": 0,
        "completed": 9,
        "failed": 1,
        "cancelled": 0,
    }
    (failed,) = [o for o in out["outcomes"] if o["state"] == "failed"]
    assert "bad input" in failed["error"]
    # Each child ran its own job with its own input file, and carried trigger=batch.
    inputs = sorted(inv.input_uri for inv, _ in h.fake.invokes)
    assert (len(inputs), len(set(inputs))) == (9, 9)
    assert all(inv.input_type == "UriFile" for inv, _ in h.fake.invokes)
    assert caplog.text.count("Instance batch-t continued as new") >= 2  # history stays bounded
    child = h.engine.get_status("batch-t:0", show_input=True)
    assert child is not None
    # The status input is the stored JSON text, as the extension shows it (devhost/README.md).
    # (after continue_as_new the trigger travels inside the carried run parameters)
    child_input = json.loads(child["input"])
    carried = child_input.get("resume", {}).get("run_parameters", child_input)
    assert carried["trigger"] == "batch"


@pytest.mark.parametrize("cap", [1, 3])
def test_no_more_than_the_cap_of_children_run_at_once(make_harness, cap):
    h = make_harness(["Running", "Running", "Completed"], per_job=True, extra_orchestrators=PARENT)
    peak = 0

    def watch(_count: int) -> None:
        nonlocal peak
        running = [
            s
            for s in (h.engine.get_status(f"batch-c:{i}") for i in range(7))
            if s is not None and s["runtimeStatus"] in ("Running", "Pending")
        ]
        peak = max(peak, len(running))

    h.fake.on_get = watch
    status = h.run(_batch(7, cap), name="batch_endpoint_batch", instance_id="batch-c", timeout=120)
    assert status["output"]["counts"]["completed"] == 7
    assert 1 <= peak <= cap
