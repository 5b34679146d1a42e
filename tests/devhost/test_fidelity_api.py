"""The management API against the Durable extension's ``HttpApiHandler``, in process.

Each test cites the extension source (Azure/azure-functions-durable-extension, tag v2.13.7)
whose behaviour it reproduces.
"""

import json
from collections.abc import Callable
from typing import Any

from devhost.engine import Engine
from devhost.management import ManagementApi, Response

ORIGIN = "http://127.0.0.1:7071"


def _api(engine: Engine) -> ManagementApi:
    return ManagementApi(engine, lambda _base: {"statusQueryGetUri": f"{ORIGIN}/i/INSTANCEID"})


def _call(api: ManagementApi, method: str, path: str, body: bytes = b"", **query: str) -> Response:
    return api.handle(
        method,
        path,
        {k: [v] for k, v in query.items()},
        body,
        origin=ORIGIN,
        request_url=f"{ORIGIN}/{path}",
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
