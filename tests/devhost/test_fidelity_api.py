"""The management API against the Durable extension's ``HttpApiHandler``, in process.

Each test cites the extension source (Azure/azure-functions-durable-extension, tag v2.13.7)
whose behaviour it reproduces.
"""

import json
from collections.abc import Callable
from typing import Any

from devhost.engine import Engine
from devhost.management import ManagementApi, Response
from devhost.validation import task_hub_error
from tests.support import wait_until

ORIGIN = "http://127.0.0.1:7071"


def _api(engine: Engine) -> ManagementApi:
    return ManagementApi(engine, lambda _base: {"statusQueryGetUri": f"{ORIGIN}/i/INSTANCEID"})


def _call(
    api: ManagementApi,
    method: str,
    path: str,
    body: bytes = b"",
    content_type: str | None = "application/json",
    **query: str,
) -> Response:
    return api.handle(
        method,
        path,
        {k: [v] for k, v in query.items()},
        body,
        origin=ORIGIN,
        request_url=f"{ORIGIN}/{path}",
        content_type=content_type,
    )


def test_an_event_raised_by_the_sdk_client_arrives_as_a_string(
    make_engine: Callable[..., Engine],
) -> None:
    """The SDK client double-encodes event data; the orchestrator gets the JSON text back.

    Reproduces ``src/WebJobs.Extensions.DurableTask/HttpApiHandler.cs`` lines 1006-1018
    (``HandleRaiseEventRequestAsync`` raises the parsed body token as it is) with the SDK's
    ``DurableOrchestrationClient.raise_event`` posting ``json.dumps(event_data)`` as JSON
    (azure-functions-durable-python 1.7.0, ``DurableOrchestrationClient.py`` line 272;
    issue #295).
    """
    engine = make_engine()
    api = _api(engine)
    _call(api, "POST", "orchestrators/waiter/ev-1")
    _call(api, "POST", "orchestrators/waiter/ev-2")
    sdk_body = json.dumps(json.dumps({"n": 1})).encode()

    raised = _call(api, "POST", "instances/ev-1/raiseEvent/Go", sdk_body)
    plain = _call(api, "POST", "instances/ev-2/raiseEvent/Go", b'{"n": 2}')
    outputs: list[Any] = [
        engine.wait_for_completion(i, timeout=10)["output"] for i in ("ev-1", "ev-2")
    ]

    assert (raised.status, plain.status) == (202, 202)
    assert outputs == ['{"n": 1}', {"n": 2}]


def test_start_of_an_active_id_is_500_and_a_bad_id_is_400(
    make_engine: Callable[..., Engine],
) -> None:
    """An id that is running: 500; an id the client refuses: 400 with the .NET message.

    Reproduces ``src/WebJobs.Extensions.DurableTask/HttpApiHandler.cs`` lines 442-449
    (``ArgumentException`` → 400 "One or more of the arguments submitted is incorrect", anything
    else → 500 "Something went wrong while processing your request"), ``DurableClient.cs``
    lines 189-201 (``@``, ``/ \\ # ?`` and control characters, over 256 characters) and
    Azure/durabletask ``src/DurableTask.AzureStorage/AzureStorageOrchestrationService.cs``
    line 1694 (tag durabletask.azurestorage-v1.17.5: ``OrchestrationAlreadyExistsException``).
    """
    engine = make_engine()
    api = _api(engine)
    _call(api, "POST", "orchestrators/waiter/dup")
    wait_until(lambda: (engine.get_status("dup") or {}).get("runtimeStatus") == "Running")

    again = _call(api, "POST", "orchestrators/waiter/dup")
    bad = {
        iid: _call(api, "POST", f"orchestrators/waiter/{iid}")
        for iid in ("@entity", "a\x01b", "a#b", "x" * 257)
    }
    longest = _call(api, "POST", "orchestrators/waiter/" + "x" * 256)

    assert again.status == 500
    assert again.body["ExceptionMessage"] == (
        "An Orchestration instance with the status Running already exists."
    )
    assert {iid: r.status for iid, r in bad.items()} == dict.fromkeys(bad, 400)
    assert bad["@entity"].body["ExceptionMessage"] == (
        "instanceId (Parameter 'Orchestration instance ids must not start with @.')"
    )
    assert bad["x" * 257].body["Message"] == "One or more of the arguments submitted is incorrect"
    assert longest.status == 202


def test_unknown_instances_are_empty_404s_and_running_ones_ask_for_5_seconds(
    make_engine: Callable[..., Engine],
) -> None:
    """404 and 410 have no body; a running instance's status says ``Retry-After: 5``.

    Reproduces ``src/WebJobs.Extensions.DurableTask/HttpApiHandler.cs`` lines 636-639 and
    984-998 (``request.CreateResponse(HttpStatusCode.NotFound / Gone)``, no content) and lines
    684-689 (``RetryAfter = 5 seconds`` on 202).
    """
    engine = make_engine()
    api = _api(engine)
    _call(api, "POST", "orchestrators/waiter/run-1")

    missing = [
        _call(api, "GET", "instances/nope"),
        _call(api, "POST", "instances/nope/raiseEvent/Go", b"1"),
        _call(api, "POST", "instances/nope/terminate", reason="x"),
        _call(api, "DELETE", "instances/nope"),
    ]
    running = _call(api, "GET", "instances/run-1")
    _call(api, "POST", "instances/run-1/terminate", reason="bye")
    engine.wait_for_completion("run-1", timeout=10)
    gone = _call(api, "POST", "instances/run-1/raiseEvent/Go", b"1")

    assert [(r.status, r.body) for r in missing] == [(404, None)] * 4
    assert (running.status, running.headers["Retry-After"]) == (202, "5")
    assert (gone.status, gone.body) == (410, None)


def test_raise_event_needs_a_json_content_type(make_engine: Callable[..., Engine]) -> None:
    """Without ``Content-Type: application/json`` (any case, parameters allowed) a raise is 400.

    Reproduces ``src/WebJobs.Extensions.DurableTask/HttpApiHandler.cs`` lines 1000-1004
    (``MediaType`` compared with ``application/json``, ``OrdinalIgnoreCase``).
    """
    api = _api(make_engine())
    _call(api, "POST", "orchestrators/waiter/ct-1")
    path = "instances/ct-1/raiseEvent/Go"

    missing = _call(api, "POST", path, b"1", content_type=None)
    text = _call(api, "POST", path, b"1", content_type="text/plain")
    with_charset = _call(api, "POST", path, b"1", content_type="Application/JSON; charset=utf-8")

    assert (missing.status, text.status) == (400, 400)
    assert missing.body == {"Message": "Only application/json request content is supported"}
    assert with_charset.status == 202


def test_task_hub_names_follow_the_azure_storage_rules() -> None:
    """A letter, then letters or digits, 3 to 50 characters (the message says 45).

    Reproduces ``src/WebJobs.Extensions.DurableTask/Options/AzureStorageOptions.cs`` lines
    199-222 (``ValidateHubName``: the table-name rule and ``hubName.Length > 50``).
    """
    good = ["abc", "samplehub", "Hub1", "a" * 50]
    bad = ["h", "ab", "9abc", "ab-c", "ab_c", "a" * 51, ""]

    assert [task_hub_error(n) for n in good] == [None] * len(good)
    assert all(task_hub_error(n) for n in bad)
    assert task_hub_error("h") == (
        "Task hub name 'h' should contain only alphanumeric characters, start with a letter, "
        "and have length between 3 and 45."
    )


def test_instance_listing_pages_with_continuation_tokens_in_instance_id_order():
    """HttpApiHandler.cs (HandleGetStatusRequestAsync) takes ``top`` from the query and the
    ``x-ms-continuation-token`` request header and answers the next token in that header; the
    Azure Table tracking store returns instances in partition-key (instance id) order."""
    from devhost.management import _page

    instances = [{"instanceId": f"run-{i}"} for i in (3, 1, 4, 2, 5)]

    first = _page(instances, 2, None)
    token = first.headers["x-ms-continuation-token"]
    second = _page(instances, 2, token)
    last = _page(instances, 2, second.headers["x-ms-continuation-token"])

    assert [s["instanceId"] for s in first.body] == ["run-1", "run-2"]
    assert [s["instanceId"] for s in second.body] == ["run-3", "run-4"]
    assert [s["instanceId"] for s in last.body] == ["run-5"]
    assert "x-ms-continuation-token" not in last.headers
    assert _page(instances, 2, "%%%not-a-token").status == 400


def test_the_status_input_is_the_json_text_the_sdk_client_posted(
    make_engine: Callable[..., Engine],
) -> None:
    """A start by the SDK client shows ``input`` as a JSON string; the orchestrator gets the value.

    Reproduces ``src/WebJobs.Extensions.DurableTask/HttpApiHandler.cs`` lines 867-874
    (``HandleStartOrchestratorRequestAsync`` deserializes the body and starts with that token:
    the SDK client's ``json.dumps(input)`` posted as JSON is a string token),
    ``ContextImplementations/DurableClient.cs`` lines 1079-1095 (the status ``Input`` is the
    stored token, ``ParseToJToken``) and
    ``Bindings/OrchestrationTriggerAttributeBindingProvider.cs`` lines 219-229 (the context
    ``input`` is the same token, which the SDK's ``get_input`` parses);
    azure-functions-durable-python#295 and #195 show the string in ``get_status``.
    ``continue_as_new``'s input is the SDK's serialized text too (``OutOfProcOrchestrationShim.cs``
    line 171), so it stays a string in the next execution. A plain JSON body stays a value.
    """
    engine = make_engine()
    api = _api(engine)
    sdk = _call(api, "POST", "orchestrators/chain/in-1", json.dumps(json.dumps(1)).encode())
    plain = _call(api, "POST", "orchestrators/waiter/in-2", b'{"n": 2}')
    looped = engine.start_new("counter", "in-3", {"n": 1})  # continues as new with {"n": 2}

    done = engine.wait_for_completion("in-1", timeout=10)
    continued = engine.wait_for_completion(looped, timeout=30)
    waiting = _call(api, "GET", "instances/in-2")

    assert (sdk.status, plain.status) == (202, 202)
    assert sdk.headers["Retry-After"] == "10"  # CreateCheckStatusResponseMessage, line 1238
    assert done["input"] == "1"
    assert done["output"] == {"a": 2, "b": 3, "c": {"echo": {"b": 3}}}  # the value reached it
    assert continued["input"] == json.dumps({"n": 2})
    assert continued["output"] == 3
    assert waiting.body["input"] == {"n": 2}


def test_the_app_reads_rerun_of_from_a_string_or_a_decoded_input(
    make_engine: Callable[..., Engine],
) -> None:
    """The app's readers (``batch_runs.run_control.run_parameters_of`` / ``rerun_of``, used by
    the run view and rerun) get the run parameters from devhost's status ``input`` in the string
    form Azure gives (see the test above) and in the decoded form a raw JSON start gives."""
    from batch_runs.run_control import rerun_of, run_parameters_of

    engine = make_engine()
    api = _api(engine)
    first = {"endpoint_uri": "https://ep.example/jobs", "rerun_of": "run-0"}
    later = {"resume": {"run_parameters": first}}  # the input after continue_as_new
    _call(api, "POST", "orchestrators/waiter/rv-1", json.dumps(json.dumps(first)).encode())
    _call(api, "POST", "orchestrators/waiter/rv-2", json.dumps(json.dumps(later)).encode())
    _call(api, "POST", "orchestrators/waiter/rv-3", json.dumps(later).encode())

    inputs = [_call(api, "GET", f"instances/rv-{n}").body["input"] for n in (1, 2, 3)]

    assert [type(i) for i in inputs] == [str, str, dict]
    assert [rerun_of(i) for i in inputs] == ["run-0"] * 3
    assert [dict(run_parameters_of(i) or {}) for i in inputs] == [first] * 3
