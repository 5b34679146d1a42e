# mypy: allow-untyped-decorators, disable-error-code="type-arg"
"""Sample Functions app for devhost tests: exercises every feature devhost emulates."""

import json
import os
import threading
from collections.abc import Generator
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)

# In-process attempt counters for the flaky activity (engine tests run in one process).
ATTEMPTS: dict[str, int] = {}
_ATTEMPTS_LOCK = threading.Lock()


def _events_file(name: str) -> Path | None:
    folder = os.environ.get("SAMPLE_EVENTS_DIR")
    return Path(folder) / name if folder else None


def _append_event(name: str, line: str) -> None:
    path = _events_file(name)
    if path is not None:
        with path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")


# ----------------------------------------------------------------------------- activities


@app.activity_trigger(input_name="value")
def add_one(value: int) -> int:
    return value + 1


@app.activity_trigger(input_name="value")
def square(value: int) -> int:
    return value * value


@app.activity_trigger(input_name="payload")
def flaky(payload: dict) -> str:
    with _ATTEMPTS_LOCK:
        ATTEMPTS[payload["key"]] = ATTEMPTS.get(payload["key"], 0) + 1
        attempt = ATTEMPTS[payload["key"]]
    if attempt <= payload["fail_times"]:
        raise RuntimeError(f"flaky failure {attempt}")
    return f"ok after {attempt}"


@app.activity_trigger(input_name="payload")
def record(payload: dict) -> str:
    _append_event("record.log", payload["tag"])
    return str(payload["tag"])


@app.activity_trigger(input_name="payload")
async def async_echo(payload: dict) -> dict:
    return {"echo": payload}


@app.activity_trigger(input_name="payload")
@app.durable_client_input(client_name="client")
async def start_child(payload: dict, client: Any) -> str:
    """An activity with a durable client input binding starts another orchestration."""
    child = f"{payload['parent']}:child"
    if not await client.get_status(child):
        await client.start_new("chain", child, payload["start"])
    return child


# ----------------------------------------------------------------------------- orchestrators


@app.orchestration_trigger(context_name="context")
def chain(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    start = context.get_input() or 0
    a = yield context.call_activity("add_one", start)
    b = yield context.call_activity(add_one, a)
    c = yield context.call_activity("async_echo", {"b": b})
    return {"a": a, "b": b, "c": c}


@app.orchestration_trigger(context_name="context")
def with_retry(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    req = context.get_input()
    options = df.RetryOptions(
        first_retry_interval_in_milliseconds=5000, max_number_of_attempts=req["attempts"]
    )
    try:
        result = yield context.call_activity_with_retry("flaky", options, req)
    except Exception as exc:  # surfaces as a plain Exception(Reason \n Details)
        return {"error": str(exc).splitlines()[0]}
    after = yield context.call_activity("add_one", 41)
    return {"result": result, "after": after, "at": context.current_utc_datetime.isoformat()}


@app.orchestration_trigger(context_name="context")
def spawner(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    child = yield context.call_activity(
        "start_child", {"parent": context.instance_id, "start": context.get_input() or 0}
    )
    return child


@app.orchestration_trigger(context_name="context")
def sleeper(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    seconds = context.get_input() or 60
    start = context.current_utc_datetime
    yield context.create_timer(start + timedelta(seconds=seconds))
    return (context.current_utc_datetime - start).total_seconds()


@app.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    child = yield context.call_sub_orchestrator("chain", 10)
    options = df.RetryOptions(first_retry_interval_in_milliseconds=1000, max_number_of_attempts=2)
    try:
        yield context.call_sub_orchestrator_with_retry("boom", options, "x")
        failed = None
    except Exception as exc:
        failed = str(exc).splitlines()[0]
    flaky_child = yield context.call_sub_orchestrator_with_retry(
        "with_retry", options, {"key": context.instance_id, "fail_times": 0, "attempts": 1}
    )
    return {"child": child, "failed": failed, "flaky_child": flaky_child["result"]}


@app.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    timeout = context.create_timer(context.current_utc_datetime + timedelta(hours=1))
    event = context.wait_for_external_event("Approve")
    context.set_custom_status({"phase": "waiting"})
    winner = yield context.task_any([event, timeout])
    if winner == event:
        timeout.cancel()
        context.set_custom_status({"phase": "approved"})
        return {"approved": event.result}
    context.set_custom_status({"phase": "timed out"})
    return {"approved": None}


@app.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    n = context.get_input()
    results = yield context.task_all([context.call_activity("square", i) for i in range(n)])
    return sum(results)


@app.orchestration_trigger(context_name="context")
def retry_fan_out(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    """Several with-retry calls in flight at once, mixed with plain activities and a timer."""
    options = df.RetryOptions(first_retry_interval_in_milliseconds=2000, max_number_of_attempts=3)
    tasks = [
        context.call_activity_with_retry(
            "flaky", options, {"key": f"{context.instance_id}-{i}", "fail_times": i, "attempts": 3}
        )
        for i in range(4)
    ]
    tasks.append(context.call_activity("square", 9))
    results = yield context.task_any(
        [
            context.task_all(tasks),
            context.create_timer(context.current_utc_datetime + timedelta(hours=1)),
        ]
    )
    outcome = results.result
    if isinstance(outcome, Exception):
        outcome = str(outcome).splitlines()[0]
    second = yield context.task_all(
        [
            context.call_activity_with_retry(
                "flaky",
                options,
                {"key": f"{context.instance_id}-b{i}", "fail_times": 1, "attempts": 2},
            )
            for i in range(2)
        ]
    )
    return {"first": outcome, "second": second}


@app.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    state = context.get_input() or {"n": 0}
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=10))
    n = state["n"] + 1
    context.set_custom_status({"n": n})
    if n < 3:
        context.continue_as_new({"n": n})
        return None
    return n


@app.orchestration_trigger(context_name="context")
def boom(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    yield context.call_activity("add_one", 1)
    raise ValueError("kaput")


@app.orchestration_trigger(context_name="context")
def waiter(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    value = yield context.wait_for_external_event("Go")
    return value


@app.orchestration_trigger(context_name="context")
def slow_chain(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
    req = context.get_input()
    first = yield context.call_activity("record", {"tag": f"{context.instance_id}:first"})
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=req["wait"]))
    second = yield context.call_activity("record", {"tag": f"{context.instance_id}:second"})
    return [first, second]


# ----------------------------------------------------------------------------- HTTP


@app.route(route="start/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_http(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    body = req.get_json() if req.get_body() else None
    instance_id = req.params.get("id")
    try:
        iid: str = await client.start_new(req.route_params["name"], instance_id, body)
    except Exception as exc:
        return func.HttpResponse(
            json.dumps({"error": str(exc)}), status_code=409, mimetype="application/json"
        )
    response: func.HttpResponse = client.create_check_status_response(req, iid)
    return response


@app.route(route="status/{instance_id}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.durable_client_input(client_name="client")
async def status_http(req: func.HttpRequest, client: Any) -> func.HttpResponse:
    status = await client.get_status(req.route_params["instance_id"])
    if not status:
        return func.HttpResponse("not found", status_code=404)
    return func.HttpResponse(
        json.dumps({"runtimeStatus": status.runtime_status.value, "output": status.output}),
        mimetype="application/json",
    )


@app.route(
    route="echo/{id:int}/{tail?}", methods=["GET", "PUT"], auth_level=func.AuthLevel.ANONYMOUS
)
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(
            {
                "method": req.method,
                "route": dict(req.route_params),
                "query": dict(req.params),
                "header": req.headers.get("x-sample"),
                "body": req.get_body().decode(),
                "url": req.url,
            }
        ),
        status_code=200,
        headers={"x-echo": "yes"},
        mimetype="application/json",
    )


@app.route(route="fail", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def fail(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("secret internals")


# ----------------------------------------------------------------------------- blob + timer


@app.blob_trigger(
    arg_name="blob",
    path="%SAMPLE_BLOB_PATH%",
    connection="AzureWebJobsStorage",
    # Read at import, as the Functions host resolves no %SETTING% in a trigger's source.
    source=func.BlobSource(os.environ.get("SAMPLE_BLOB_SOURCE", "LogsAndContainerScan")),
)
@app.durable_client_input(client_name="client")
async def on_blob(blob: func.InputStream, client: Any) -> None:
    props = getattr(blob, "blob_properties", None) or {}
    data = blob.read()
    _append_event(
        "blob.log",
        json.dumps(
            {
                "name": blob.name,
                "length": blob.length,
                "uri": blob.uri,
                "etag": props.get("ETag"),
                "size": len(data),
            }
        ),
    )
    await client.start_new("chain", None, len(data))


@app.timer_trigger(arg_name="timer", schedule="%SAMPLE_SCHEDULE%", run_on_startup=False)
def on_timer(timer: func.TimerRequest) -> None:
    _append_event("timer.log", json.dumps({"past_due": timer.past_due}))
