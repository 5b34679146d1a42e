"""devhost loads the product app (function_app.py at the repository root) and indexes it."""

from devhost.app_loader import load_app
from tests.support import REPO_ROOT


def test_product_app_loads_and_lists_its_functions():
    index = load_app(REPO_ROOT)

    assert "batch_endpoint_run" in index.orchestrators
    assert "batch_endpoint_batch" in index.orchestrators
    assert "list_batch_folder" in index.activities
    assert {"invoke_batch_endpoint", "get_batch_job"} <= set(index.activities)
    assert set(index.entities) == {"endpoint_slots"}
    assert index.functions.get("start_run_http") == "httpTrigger"
    assert {r.function_name for r in index.http_routes} >= {"start_run_http", "get_run_http"}
    assert [b.function_name for b in index.blob_triggers] == ["start_run_on_blob"]
    assert sorted(t.function_name for t in index.timer_triggers) == [
        "purge_old_runs",
        "reconcile_jobs",
        "start_run_on_schedule",
    ]
