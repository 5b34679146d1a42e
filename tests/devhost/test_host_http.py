"""devhost as a process: HTTP triggers, auth, the Durable management API and the SDK client."""

from collections.abc import Iterator

import pytest
import requests

from tests.devhost.hostproc import KEY, DevhostProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def host() -> Iterator[DevhostProcess]:
    proc = DevhostProcess(
        settings={"SAMPLE_HUB": "samplehub"},
        args=["--no-triggers"],
    ).start()
    yield proc
    proc.stop()


def test_banner_lists_functions_urls_and_ready_line(host):
    log = host.log()

    assert f"\tstart_http: [POST] {host.base}/api/start/{{name}}" in log
    assert "\tchain: orchestrationTrigger" in log
    assert "\ton_blob: blobTrigger" in log
    assert f"devhost ready on {host.base}" in log
    assert requests.get(f"{host.base}/admin/host/status", timeout=5).json()["state"] == "Running"


def test_route_params_query_headers_body_and_response_headers(host):
    r = requests.put(
        f"{host.base}/api/echo/42/extra",
        params={"q": "v"},
        data=b"hello",
        headers={"x-sample": "hdr"},
        timeout=10,
    )

    assert r.status_code == 200
    assert r.headers["x-echo"] == "yes"
    body = r.json()
    assert body["method"] == "PUT"
    assert body["route"] == {"id": "42", "tail": "extra"}
    assert body["query"] == {"q": "v"}
    assert body["header"] == "hdr"
    assert body["body"] == "hello"
    assert body["url"].startswith(f"{host.base}/api/echo/42/extra?")


def test_optional_param_constraint_method_and_unknown_routes(host):
    optional = requests.get(f"{host.base}/api/echo/7", timeout=10)
    not_int = requests.get(f"{host.base}/api/echo/abc", timeout=10)
    wrong_method = requests.delete(f"{host.base}/api/echo/7", timeout=10)
    unknown = requests.get(f"{host.base}/api/nothing-here", timeout=10)

    assert optional.status_code == 200
    assert optional.json()["route"] == {"id": "7"}
    assert (not_int.status_code, wrong_method.status_code, unknown.status_code) == (404, 404, 404)


def test_function_auth_level_requires_the_key(host):
    url = f"{host.base}/api/start/chain"

    missing = requests.post(url, json=1, timeout=10)
    wrong = requests.post(url, json=1, params={"code": "nope"}, timeout=10)
    header = requests.post(url, json=1, headers={"x-functions-key": KEY}, timeout=10)

    assert missing.status_code == 401
    assert missing.content == b""
    assert wrong.status_code == 401
    assert header.status_code == 202


def test_handler_exception_is_an_empty_500_with_logged_traceback(host):
    """The host's ``ExceptionMiddleware`` sets only the status code: no body, no content type.

    Reproduces Azure/azure-functions-host
    ``src/WebJobs.Script.WebHost/Middleware/ExceptionMiddleware.cs`` lines 29-50 (commit
    89dc438d).
    """
    r = requests.get(f"{host.base}/api/fail", timeout=10)

    assert r.status_code == 500
    assert r.content == b""
    assert "Content-Type" not in r.headers
    assert "RuntimeError: secret internals" in host.log()
    assert "Executed 'Functions.fail' (Failed" in host.log()


def test_starter_check_status_urls_can_be_followed_to_completion(host):
    r = requests.post(f"{host.base}/api/start/chain", params={"code": KEY}, json=5, timeout=10)

    assert r.status_code == 202
    payload = r.json()
    assert r.headers["Location"] == payload["statusQueryGetUri"]
    assert payload["statusQueryGetUri"].startswith(f"{host.base}/runtime/webhooks/durabletask/")
    status = host.wait_status(payload["id"], {"Completed"})
    final = requests.get(payload["statusQueryGetUri"], timeout=10)
    assert final.status_code == 200
    assert final.json()["output"] == {"a": 6, "b": 7, "c": {"echo": {"b": 7}}}
    assert status["input"] == 5
    assert "Executing 'Functions.add_one' (Reason='(null)', Id=" in host.log()


def test_sdk_client_get_status_is_falsy_for_unknown_id(host):
    unknown = requests.get(f"{host.base}/api/status/does-not-exist", timeout=10)

    assert unknown.status_code == 404


def test_sdk_client_start_new_on_running_id_raises_in_starter(host):
    url = f"{host.base}/api/start/waiter"

    first = requests.post(url, params={"code": KEY, "id": "dup-1"}, timeout=10)
    second = requests.post(url, params={"code": KEY, "id": "dup-1"}, timeout=10)

    assert first.status_code == 202
    assert second.status_code == 409
    assert "already exists" in second.json()["error"]


def test_management_api_raise_event_terminate_suspend_resume_list_purge(host):
    started = host.mgmt("POST", "orchestrators/waiter/mgmt-1", json={"ignored": True})
    duplicate = host.mgmt("POST", "orchestrators/waiter/mgmt-1")
    unauthorised = requests.get(
        f"{host.base}/runtime/webhooks/durabletask/instances/mgmt-1", timeout=10
    )
    host.wait_status("mgmt-1", {"Running"})
    suspend = host.mgmt("POST", "instances/mgmt-1/suspend", params={"reason": "pause"})
    suspended = host.mgmt("GET", "instances/mgmt-1").json()["runtimeStatus"]
    resume = host.mgmt("POST", "instances/mgmt-1/resume", params={"reason": "go"})
    event_url = started.json()["sendEventPostUri"].replace("{eventName}", "Go")
    raised = requests.post(event_url, json={"n": 1}, timeout=10)
    done = host.wait_status("mgmt-1", {"Completed"})
    gone = host.mgmt("POST", "instances/mgmt-1/terminate", params={"reason": "late"})
    history = host.mgmt(
        "GET", "instances/mgmt-1", params={"showHistory": "true", "showHistoryOutput": "true"}
    ).json()
    listed = host.mgmt("GET", "instances", params={"runtimeStatus": "Completed"}).json()
    purged = host.mgmt("DELETE", "instances/mgmt-1")
    purged_again = host.mgmt("DELETE", "instances/mgmt-1")
    missing = host.mgmt("GET", "instances/mgmt-1")

    assert started.status_code == 202
    assert duplicate.status_code == 500
    assert "already exists" in duplicate.json()["ExceptionMessage"]
    assert unauthorised.status_code == 401
    assert (suspend.status_code, suspended, resume.status_code) == (202, "Suspended", 202)
    assert raised.status_code == 202
    assert done["output"] == {"n": 1}
    assert gone.status_code == 410
    assert [h["EventType"] for h in history["history"]] == [
        "ExecutionStarted",
        "EventRaised",
        "ExecutionCompleted",
    ]
    assert "mgmt-1" in {s["instanceId"] for s in listed}
    assert (purged.status_code, purged.json()) == (200, {"instancesDeleted": 1})
    assert purged_again.status_code == 404
    assert missing.status_code == 404


def test_management_api_terminate_running_and_bad_event_body(host):
    host.mgmt("POST", "orchestrators/waiter/mgmt-2")
    bad = host.mgmt(
        "POST",
        "instances/mgmt-2/raiseEvent/Go",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    terminated = host.mgmt("POST", "instances/mgmt-2/terminate", params={"reason": "bye"})
    status = host.wait_status("mgmt-2", {"Terminated"})
    unknown = host.mgmt("POST", "instances/nope/terminate", params={"reason": "x"})

    assert bad.status_code == 400
    assert terminated.status_code == 202
    assert status["output"] == "bye"
    assert unknown.status_code == 404


def test_clock_advance_requires_virtual_clock(host):
    r = requests.post(
        f"{host.base}/admin/devhost/clock/advance", params={"seconds": "5", "code": KEY}, timeout=10
    )

    assert r.status_code == 400
    assert "virtual clock" in r.json()["error"]


def test_virtual_clock_host_runs_long_timers_instantly_and_advances():
    proc = DevhostProcess(
        settings={"SAMPLE_HUB": "vhub"}, args=["--no-triggers", "--virtual-clock"]
    ).start()
    try:
        started = proc.mgmt("POST", "orchestrators/sleeper", json=86400)
        status = proc.wait_status(started.json()["id"], {"Completed"}, timeout=20)
        advanced = requests.post(
            f"{proc.base}/admin/devhost/clock/advance",
            params={"seconds": "60", "code": KEY},
            timeout=10,
        )
        no_key = requests.post(
            f"{proc.base}/admin/devhost/clock/advance", params={"seconds": "60"}, timeout=10
        )
        negative = requests.post(
            f"{proc.base}/admin/devhost/clock/advance",
            params={"seconds": "-1", "code": KEY},
            timeout=10,
        )
    finally:
        proc.stop()

    assert status["output"] == 86400.0
    assert advanced.status_code == 200
    assert "now" in advanced.json()
    assert no_key.status_code == 401
    assert negative.status_code == 400


def test_rpc_listener_serves_without_key_and_restart_works(host):
    started = requests.post(
        f"{host.rpc_base_url}orchestrators/chain/rpc-1", json="3", timeout=10
    )  # the SDK's double-encoded input
    done = host.wait_status("rpc-1", {"Completed"})
    restarted = host.mgmt(
        "POST", "instances/rpc-1/restart", params={"restartWithNewInstanceId": "false"}
    )
    again = host.wait_status("rpc-1", {"Completed"})
    rewind = host.mgmt("POST", "instances/rpc-1/rewind", params={"reason": "x"})

    assert started.status_code == 202
    assert started.json()["statusQueryGetUri"].startswith(f"{host.base}/runtime/webhooks/")
    assert done["input"] == 3
    assert done["output"]["a"] == 4
    assert restarted.status_code == 202
    assert again["input"] == 3
    assert rewind.status_code == 501


def test_concurrent_starters_through_the_sdk_client_all_complete(host):
    from concurrent.futures import ThreadPoolExecutor

    def start(n: int) -> requests.Response:
        return requests.post(
            f"{host.base}/api/start/fan_out", params={"code": KEY}, json=n, timeout=30
        )

    with ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(start, range(1, 41)))
    ids = [r.json()["id"] for r in responses]
    outputs = [host.wait_status(i, {"Completed"})["output"] for i in ids]

    assert {r.status_code for r in responses} == {202}
    assert outputs == [sum(k * k for k in range(n)) for n in range(1, 41)]


def test_a_disabled_http_function_is_an_empty_404_after_the_key_check():
    """``AzureWebJobs.<fn>.Disabled=true``: the route answers 404 with no body, after auth.

    Reproduces Azure/azure-functions-host
    ``src/WebJobs.Script.WebHost/Middleware/FunctionInvocationMiddleware.cs`` lines 117-127
    (commit 89dc438d: authorization first, then ``NotFoundResult`` for a disabled function
    unless the caller has admin credentials).
    """
    proc = DevhostProcess(
        settings={
            "SAMPLE_HUB": "disabledhub",
            "AzureWebJobs.echo.Disabled": "true",
            "AzureWebJobs_start_http_Disabled": "1",
        },
        args=["--no-triggers"],
    ).start()
    try:
        echo = requests.get(f"{proc.base}/api/echo/1", timeout=10)
        unkeyed = requests.post(f"{proc.base}/api/start/chain", timeout=10)
        keyed = requests.post(f"{proc.base}/api/start/chain", params={"code": KEY}, timeout=10)
    finally:
        proc.stop()

    assert (echo.status_code, echo.content) == (404, b"")
    assert unkeyed.status_code == 401
    assert (keyed.status_code, keyed.content) == (404, b"")


def test_an_activity_with_a_durable_client_binding_starts_an_orchestration(host):
    """The host binds ``durableClient`` inputs on any trigger, activities included
    (Azure/azure-functions-durable-extension ``DurableTaskExtension.cs``: the client binding
    rule ``BindToInput<IDurableOrchestrationClient>`` with the string converter
    ``BindingHelper.DurableOrchestrationClientToString``, not tied to a trigger type)."""
    r = requests.post(f"{host.base}/api/start/spawner", params={"code": KEY}, json=10, timeout=10)
    assert r.status_code == 202
    parent = r.json()["id"]
    status = host.wait_status(parent, {"Completed", "Failed"})
    assert status["runtimeStatus"] == "Completed", status
    child = status["output"]
    assert child == f"{parent}:child"
    child_status = host.wait_status(child, {"Completed"})
    assert child_status["output"] == {"a": 11, "b": 12, "c": {"echo": {"b": 12}}}
