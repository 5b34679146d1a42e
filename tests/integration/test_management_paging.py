"""``HttpInstancesApi`` + the list core over real HTTP, against a local server that pages
``GET .../instances`` the way the Durable extension's ``HttpApiHandler`` does: ``top`` from
the query, the token in the ``x-ms-continuation-token`` request and response headers."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from batch_runs.run_control import (
    CONTINUATION_HEADER,
    HttpInstancesApi,
    ManagementApiError,
    ManagementEndpoint,
    list_runs,
    parse_list_query,
)

EP = "https://heart.westeurope.inference.ml.azure.com/jobs"
INSTANCES = [
    {
        "name": "batch_endpoint_run",
        "instanceId": f"run-{i:02d}",
        "runtimeStatus": "Completed" if i % 3 else "Failed",
        "input": {"endpoint_uri": EP},
        "customStatus": None,
        "output": None,
        "createdTime": "2026-11-30T10:00:00Z",
        "lastUpdatedTime": "2026-11-30T10:00:00Z",
    }
    for i in range(11)
]


class Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[dict[str, list[str]], str | None]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        token = self.headers.get(CONTINUATION_HEADER)
        self.seen.append((query, token))
        if url.path != "/durabletask/instances/" or query.get("showInput") != ["true"]:
            self.send_response(404)
            self.end_headers()
            return
        if token is not None and not token.startswith("page:"):
            self.send_response(400)
            self.end_headers()
            return
        wanted = set(query.get("runtimeStatus", [""])[0].split(",")) - {""}
        rows = [s for s in INSTANCES if not wanted or s["runtimeStatus"] in wanted]
        start = int(token.removeprefix("page:")) if token else 0
        top = int(query["top"][0])
        body = json.dumps(rows[start : start + top]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        # As the extension: the header is always there; "null" (base64) at the end.
        more = start + top < len(rows)
        self.send_header(CONTINUATION_HEADER, f"page:{start + top}" if more else "bnVsbA==")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def api() -> Iterator[HttpInstancesApi]:
    Handler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    binding = {"rpcBaseUrl": f"http://127.0.0.1:{server.server_port}/durabletask/"}
    with requests.Session() as session:
        yield HttpInstancesApi(
            ManagementEndpoint.from_binding(json.dumps(binding)), session=session
        )
    server.shutdown()
    server.server_close()


def _pages(api: HttpInstancesApi, params: dict[str, str]) -> list[list[str]]:
    pages = []
    while True:
        page = list_runs(
            api, parse_list_query(params), orchestrator="batch_endpoint_run", default_endpoint=EP
        )
        pages.append([v["id"] for v in page.value])
        if page.continuation is None:
            return pages
        params = {**params, "continuation": page.continuation}


def test_every_run_is_listed_once_over_several_pages(api: HttpInstancesApi):
    pages = _pages(api, {"top": "4"})

    assert [len(p) for p in pages] == [4, 4, 3]
    assert [i for p in pages for i in p] == [s["instanceId"] for s in INSTANCES]
    tokens = [token for _, token in Handler.seen]
    assert tokens == [None, "page:4", "page:8"]  # sent back as the request header


def test_the_status_filter_is_applied_by_the_store(api: HttpInstancesApi):
    pages = _pages(api, {"top": "2", "status": "Failed"})

    assert [i for p in pages for i in p] == ["run-00", "run-03", "run-06", "run-09"]
    assert {q["runtimeStatus"][0] for q, _ in Handler.seen} == {"Failed"}


def test_a_store_refusal_is_an_error_not_an_empty_page(api: HttpInstancesApi):
    bad = ManagementEndpoint(api._endpoint.instances_url.replace("/instances/", "/nope/"))
    with pytest.raises(ManagementApiError) as exc:
        HttpInstancesApi(bad, session=requests.Session()).list_instances({"top": "1"}, None)

    assert exc.value.status == 404
