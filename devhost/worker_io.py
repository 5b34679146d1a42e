"""Worker-side objects from host-shaped payloads, through the converters ``azure.functions`` ships.

The Python worker turns each ``TypedData`` the host sends into a ``Datum`` and hands it to the
binding's converter (``azure.functions`` 1.26: ``meta.Datum``, ``InConverter.decode``,
``OutConverter.encode``); devhost builds the same ``Datum`` values and calls the same converters:

- HTTP trigger: the host's ``RpcHttp`` (Azure/azure-functions-host
  ``src/WebJobs.Script.Grpc/MessageExtensions/GrpcMessageConversionExtensions.cs``,
  ``ToRpcHttp``: url from the request's scheme, ``Host``, path and query; query values joined by
  ``,`` and empty ones dropped; header names lower-cased, values joined by ``,``; route params;
  the body as bytes, the Python worker asking for ``RawHttpBodyBytes`` and body-only) as the
  worker's ``datumdef.Datum.from_typed_data`` shapes it (method, url, headers, query, params,
  body), decoded by ``azure.functions.http.HttpRequestConverter``;
- HTTP response: ``HttpResponseConverter.encode`` of the function's return value (a string, or an
  ``HttpResponse`` with its status, headers, ``content-type`` and body); any other value, ``None``
  too, is refused as the worker's ``get_datum`` refuses it (``TypeError: unable to encode
  outgoing TypedData``), so the invocation fails and the host answers an empty 500;
- activity: the input JSON text decoded by ``durable_functions.ActivityTriggerConverter`` (the
  SDK's ``df_loads``, with its fallback to the raw text), the result encoded by it (``df_dumps``);
- orchestration: the context JSON through ``OrchestrationTriggerConverter.decode`` (an
  ``OrchestrationContext`` whose ``body`` the SDK's handle reads), the handle's result through
  ``encode``.
"""

import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import azure.functions as func
from azure.functions.durable_functions import (
    ActivityTriggerConverter,
    OrchestrationTriggerConverter,
)
from azure.functions.http import HttpRequestConverter, HttpResponseConverter
from azure.functions.meta import Datum

__all__ = [
    "activity_input",
    "activity_output",
    "http_request",
    "http_response",
    "orchestration_context",
    "orchestration_output",
    "sdk_warnings",
]


_WARNINGS = threading.Lock()


@contextmanager
def sdk_warnings() -> Iterator[list[warnings.WarningMessage]]:
    """Record the warnings the SDK or a converter emits (e.g. ``df_loads``' one-time
    ``DeprecationWarning`` about ``expected_type``, which the worker lets pass) instead of letting
    the process's filters act on them. ``warnings.catch_warnings`` swaps process-wide state, so
    every devhost thread takes one lock around it."""
    with _WARNINGS, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _joined(pairs: Iterable[tuple[str, str]], *, lower: bool) -> dict[str, str]:
    values: dict[str, list[str]] = {}
    for name, value in pairs:
        values.setdefault(name.lower() if lower else name, []).append(value)
    return {name: ",".join(items) for name, items in values.items()}


def http_request(
    method: str,
    url: str,
    headers: Iterable[tuple[str, str]],
    query: Mapping[str, list[str]],
    route_params: Mapping[str, str],
    body: bytes,
) -> func.HttpRequest:
    """The ``func.HttpRequest`` the worker builds from the host's ``RpcHttp``."""
    joined_query = _joined(((k, v) for k, vs in query.items() for v in vs), lower=False)
    value = {
        "method": Datum(method, "string"),
        "url": Datum(url, "string"),
        "headers": {k: Datum(v, "string") for k, v in _joined(headers, lower=True).items()},
        "body": Datum(body, "bytes"),
        "params": {k: Datum(v, "string") for k, v in route_params.items()},
        "query": {k: Datum(v, "string") for k, v in joined_query.items() if v},
    }
    request: func.HttpRequest = HttpRequestConverter.decode(
        Datum(value, "http"), trigger_metadata={}
    )
    return request


def http_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the host's answer for an HTTP function's return value.

    A string is a 200 ``text/plain; charset=utf-8`` answer (an assumption: the host's
    ``ObjectResult`` of a string; the app returns ``HttpResponse`` objects).

    Raises:
        TypeError: the converter cannot encode the value (the worker fails the invocation).
    """
    try:
        datum = HttpResponseConverter.encode(result, expected_type=None)
    except NotImplementedError:
        raise TypeError(
            'unable to encode outgoing TypedData: unsupported type "http" for Python type '
            f'"{type(result).__name__}"'
        ) from None
    if datum.type == "string":
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, str(datum.value).encode()
    value = datum.value
    headers = {str(k): str(v.value) for k, v in value["headers"].items()}
    body = value["body"].value
    return int(value["status_code"].value), headers, bytes(body or b"")


def activity_input(input_json: str | None) -> Any:
    """The activity's argument, decoded from the scheduled input's JSON text."""
    if input_json is None:
        return None
    with sdk_warnings():
        return ActivityTriggerConverter.decode(Datum(input_json, "string"), trigger_metadata={})


def activity_output(result: Any) -> str:
    """The activity's result as the JSON text the extension records.

    Raises:
        ValueError: the result is not JSON-serializable (the converter's message).
    """
    return str(ActivityTriggerConverter.encode(result, expected_type=None).value)


def orchestration_context(context_json: str) -> Any:
    """The ``OrchestrationContext`` an orchestrator handle gets from the context JSON."""
    return OrchestrationTriggerConverter.decode(Datum(context_json, "string"), trigger_metadata={})


def orchestration_output(result: Any) -> Any:
    """The handle's result as the worker returns it (the state JSON text)."""
    return OrchestrationTriggerConverter.encode(result, expected_type=None).value
