"""The run view (``GET /api/runs/{id}``) of a run that continued as new, on devhost."""

from datetime import datetime

from batch_runs.starts import run_view
from batch_runs.state import POLLS_PER_EXECUTION
from tests.orchestration.test_batch_run import _params


def test_run_view_shows_the_runs_own_start_after_continue_as_new(make_harness):
    """Durable's ``createdTime`` is the current execution's start (it resets on every
    ``continue_as_new``: DurableTask.AzureStorage ``AzureTableTrackingStore.cs`` lines
    1042-1047, v1.17.5); the run view's ``created`` stays the run's own start."""
    h = make_harness(["Running"] * (POLLS_PER_EXECUTION + 4) + ["Completed"])
    status = h.run(_params(poll_interval=10), timeout=60)

    view = run_view(
        instance_id=status["instanceId"],
        name=status["name"],
        runtime_status=status["runtimeStatus"],
        custom_status=status["customStatus"],
        output=status["output"],
        created_time=status["createdTime"],
        last_updated_time=status["lastUpdatedTime"],
    )

    started = datetime.fromisoformat(status["output"]["started"])
    assert datetime.fromisoformat(status["createdTime"].replace("Z", "+00:00")) > started
    assert datetime.fromisoformat(view["created"]) == started
