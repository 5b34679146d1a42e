"""``import function_app`` indexes exactly the product's functions with the right triggers."""

import function_app

# The SDK's get_functions() validates names on every call and refuses a second call; index once.
FUNCTIONS = {f.get_function_name(): f for f in function_app.app.get_functions()}

EXPECTED = {
    "batch_endpoint_run": "orchestrationTrigger",
    "invoke_batch_endpoint": "activityTrigger",
    "get_batch_job": "activityTrigger",
    "cancel_batch_job": "activityTrigger",
    "estimate_job_duration": "activityTrigger",
    "start_run_http": "httpTrigger",
    "get_run_http": "httpTrigger",
    "cancel_run_http": "httpTrigger",
    "list_runs_http": "httpTrigger",
    "rerun_run_http": "httpTrigger",
    "start_run_on_blob": "blobTrigger",
    "start_run_on_schedule": "timerTrigger",
    "purge_old_runs": "timerTrigger",
    "batch_endpoint_batch": "orchestrationTrigger",
    "list_batch_folder": "activityTrigger",
    "start_batch_http": "httpTrigger",
    "get_batch_http": "httpTrigger",
    "cancel_batch_http": "httpTrigger",
    "reconcile_jobs": "timerTrigger",
    "batch_run_reconciliation": "orchestrationTrigger",
    "notify_delivery": "orchestrationTrigger",
    "copy_run_output": "activityTrigger",
    "start_run_notification": "activityTrigger",
    "deliver_run_notification": "activityTrigger",
    "plan_run_summary_queue": "activityTrigger",
    "enqueue_run_summary": "activityTrigger",
    "endpoint_slots": "entityTrigger",
    "plan_admission": "activityTrigger",
    "find_ended_runs": "activityTrigger",
}


def _trigger_type(fn) -> str:
    trigger = fn.get_trigger()
    return str(trigger.get_binding_name() if hasattr(trigger, "get_binding_name") else trigger.type)


def test_function_app_indexes_exactly_the_product_functions():
    functions = FUNCTIONS
    assert {name: _trigger_type(f) for name, f in functions.items()} == EXPECTED


def test_http_routes_methods_and_auth_level():
    functions = FUNCTIONS
    routes = {}
    for name in (
        "start_run_http",
        "get_run_http",
        "cancel_run_http",
        "list_runs_http",
        "rerun_run_http",
        "start_batch_http",
        "get_batch_http",
        "cancel_batch_http",
    ):
        trigger = functions[name].get_trigger()
        routes[name] = (
            trigger.route,
            [str(getattr(m, "value", m)) for m in trigger.methods],
            str(getattr(trigger.auth_level, "value", trigger.auth_level)),
        )
    assert routes == {
        "start_run_http": ("runs", ["POST"], "function"),
        "get_run_http": ("runs/{instance_id}", ["GET"], "function"),
        "cancel_run_http": ("runs/{instance_id}/cancel", ["POST"], "function"),
        "list_runs_http": ("runs", ["GET"], "function"),
        "rerun_run_http": ("runs/{instance_id}/rerun", ["POST"], "function"),
        "start_batch_http": ("batches", ["POST"], "function"),
        "get_batch_http": ("batches/{instance_id}", ["GET"], "function"),
        "cancel_batch_http": ("batches/{instance_id}/cancel", ["POST"], "function"),
    }


def test_blob_and_timer_triggers_read_their_paths_from_settings():
    functions = FUNCTIONS
    blob = functions["start_run_on_blob"].get_trigger()
    timer = functions["start_run_on_schedule"].get_trigger()
    assert blob.path == "%SCORING_BLOB_PATH%"
    assert blob.connection == "AzureWebJobsStorage"
    assert timer.schedule == "%SCORING_SCHEDULE%"
    assert timer.run_on_startup is False


def test_retention_timer_defaults_to_a_daily_schedule_without_its_setting():
    timer = FUNCTIONS["purge_old_runs"].get_trigger()
    # Indexed from the environment: the setting when set, else the default (never unresolved).
    assert timer.schedule in ("0 30 3 * * *", "%RETENTION_SCHEDULE%")
    assert timer.run_on_startup is False


def test_reconcile_timer_defaults_to_every_15_minutes_without_its_setting():
    timer = FUNCTIONS["reconcile_jobs"].get_trigger()
    assert timer.schedule in ("0 */15 * * * *", "%RECONCILE_SCHEDULE%")
    assert timer.run_on_startup is False


def test_notification_starter_activity_carries_a_durable_client_binding():
    bindings = [b.get_dict_repr() for b in FUNCTIONS["start_run_notification"].get_bindings()]
    assert {(b["type"], b["name"]) for b in bindings} >= {
        ("activityTrigger", "payload"),
        ("durableClient", "client"),
    }


def test_summary_queue_activity_carries_a_queue_output_binding_on_notify_queue():
    bindings = [b.get_dict_repr() for b in FUNCTIONS["enqueue_run_summary"].get_bindings()]
    queue = [b for b in bindings if b["type"] == "queue"]
    assert len(queue) == 1
    assert queue[0]["name"] == "msg"
    assert queue[0]["queueName"] == "%NOTIFY_QUEUE%"
    assert queue[0]["connection"] == "AzureWebJobsStorage"
    assert str(getattr(queue[0]["direction"], "name", queue[0]["direction"])).upper() == "OUT"


def test_the_delivery_orchestrator_is_indexed_under_the_name_the_starter_uses():
    from batch_runs.notify import DELIVERY_ORCHESTRATOR

    assert _trigger_type(FUNCTIONS[DELIVERY_ORCHESTRATOR]) == "orchestrationTrigger"


def test_the_estimate_activity_holds_a_durable_client_binding():
    """It lists past runs through the management API, whose URLs the binding carries."""
    bindings = [b.get_dict_repr() for b in FUNCTIONS["estimate_job_duration"].get_bindings()]
    assert {"name": "client", "type": "durableClient"}.items() <= next(
        b for b in bindings if b.get("type") == "durableClient"
    ).items()
