"""devhost loads the product app (function_app.py at the repository root) and indexes it."""

from devhost.app_loader import load_app
from tests.support import REPO_ROOT


def test_product_app_loads_and_lists_its_functions():
    index = load_app(REPO_ROOT)

    assert "batch_endpoint_run" in index.orchestrators
    assert {"invoke_batch_endpoint", "get_batch_job"} <= set(index.activities)
    assert index.functions.get("start_run_http") == "httpTrigger"
    assert {r.function_name for r in index.http_routes} >= {"start_run_http", "get_run_http"}
    assert [b.function_name for b in index.blob_triggers] == ["start_run_on_blob"]
    assert sorted(t.function_name for t in index.timer_triggers) == [
        "purge_old_runs",
        "start_run_on_schedule",
    ]


def test_an_activity_with_a_durable_client_binding_gets_the_binding_json():
    """``estimate_job_duration`` holds a durable client binding (any function may: Learn,
    "Bindings for Durable Functions"); devhost hands it the same JSON a starter gets."""
    from types import SimpleNamespace

    from devhost.host import Host

    index = load_app(REPO_ROOT)
    assert index.activity_clients == {"estimate_job_duration": ("client",)}
    seen: list[object] = []
    index.activities["probe"] = lambda value, **clients: seen.append((value, clients))
    index.activity_clients["probe"] = ("client",)
    fake_host = SimpleNamespace(index=index, client_binding=lambda: '{"rpcBaseUrl": "x"}')

    activities = Host._activities(fake_host)  # type: ignore[arg-type]
    activities["probe"]({"a": 1})

    assert seen == [({"a": 1}, {"client": '{"rpcBaseUrl": "x"}'})]
    assert activities["get_batch_job"] is index.activities["get_batch_job"]
