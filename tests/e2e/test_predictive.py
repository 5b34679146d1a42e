"""``poll_policy=predictive`` on the offline stack: devhost runs function_app.py, whose estimate
activity lists the finished runs through devhost's management API (the durable client binding),
and plans the checks of the next run on the same endpoint; the emulator scores real files."""

import pytest

from scripts.devstack import Stack
from tests.e2e.conftest import INPUT_FOLDER, make_stack
from tests.support import Azurite

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(azurite: Azurite, sample_data, tmp_path_factory: pytest.TempPathFactory):
    s = make_stack(
        tmp_path_factory.mktemp("predictive"),
        azurite,
        phase_seconds=1.0,  # five phases: about 5 s a job
        settings={
            "SCHEDULED_INPUT_URI": "",
            "POLL_INTERVAL_SECONDS": "1",
            "POLL_INTERVAL_MIN": "1",
            "OUTPUT_URI_TEMPLATE": (
                "azureml://datastores/workspaceblobstore/paths/e2e-predictive/{run_id}"
                "/predictions.csv"
            ),
        },
    )
    try:
        yield s
    finally:
        s.stop()


def _start(stack: Stack, **extra: object) -> str:
    body = {"endpoint_input_uri": INPUT_FOLDER, "poll_interval": 1, **extra}
    resp = stack.api("POST", "runs", json=body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def _log(stack: Stack) -> str:
    assert stack.devhost is not None
    return stack.devhost.log_text()


def test_a_predictive_run_plans_its_checks_from_the_finished_runs(stack: Stack) -> None:
    cold = _start(stack, poll_policy="predictive")
    assert stack.wait_run(cold, timeout=90)["runtime_status"] == "Completed"
    assert "from 0 past run(s): 0 past run(s): polling as fixed" in _log(stack)

    history = [_start(stack) for _ in range(3)]
    for run_id in history:
        view = stack.wait_run(run_id, timeout=90)
        assert view["runtime_status"] == "Completed"
        assert view["output"]["job_ended_after"] <= view["output"]["finished"]

    run_id = _start(stack, poll_policy="predictive")
    view = stack.wait_run(run_id, timeout=90)

    assert view["runtime_status"] == "Completed", view
    log = _log(stack)
    planned = [line for line in log.splitlines() if f"run {run_id}: poll plan for job" in line]
    # The cold run finished too: four past runs on the endpoint; a plan of whole seconds.
    assert planned, log[-3000:]
    assert "from 4 past run(s): [" in planned[0], planned
