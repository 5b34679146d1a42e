"""A real HTTP batch endpoint (data plane + ARM cancel) scripted by a :class:`FakeEndpoint`.

The orchestration tests run the product's real activity bindings, which build the real client
from settings and talk HTTP; this server turns each request into a call on the scripted fake
and each scripted exception into what the service would do on the wire:

- ``TransportError`` → the connection is closed without an answer;
- ``HttpError`` (``RetryableHttpError``, ``NotFoundError``, ...) → that status with an ARM-style
  error body (``{"error": {"code", "message"}}``) and ``Retry-After`` when it has one.
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs

from batch_endpoint import (
    BatchJob,
    HttpError,
    JobInvocation,
    JobStatus,
    RetryableHttpError,
    TransportError,
)
from batch_runs.operations import JobClient, JobsClient

_JOB = re.compile(r"^/jobs/(?P<name>[^/?]+)$")
_LIST = re.compile(r"^/subscriptions/[^?]*/workspaces/[^/]+/jobs\?(?P<query>.*)$")
_CANCEL = re.compile(r"^/subscriptions/[^?]*/workspaces/[^/]+/jobs/(?P<name>[^/?]+)/cancel\?")


class Scripted(JobClient, JobsClient, Protocol):
    """The scripted fake's seam: the activity cores' two client protocols in one object."""


def _wire(job: BatchJob) -> dict[str, Any]:
    """The job as the service answers it (camelCase ``BatchJobResource``)."""
    props: dict[str, Any] = {"status": job.status.value}
    if job.studio_url:
        props["interactionEndpoints"] = {"Studio": {"endpoint": job.studio_url}}
    if job.output_uri:
        props["outputData"] = {"score": {"jobOutputType": "UriFile", "uri": job.output_uri}}
    if job.error_message:
        props["errorMessage"] = job.error_message
    return {"id": job.id, "name": job.name, "properties": props}


def _invocation(body: dict[str, Any]) -> JobInvocation:
    props = body["properties"]
    [(input_name, data_in)] = props["InputData"].items()
    [(output_name, data_out)] = props["OutputData"].items()
    known = {"InputData", "OutputData", "Name"}
    return JobInvocation(
        input_name=input_name,
        input_type=data_in["JobInputType"],
        input_uri=data_in["Uri"],
        output_name=output_name,
        output_uri=data_out["Uri"],
        overrides={k: v for k, v in props.items() if k not in known},
    )


class ScriptedEndpoint:
    """``http://127.0.0.1:<port>``: ``/jobs`` (data plane) and ``/subscriptions/...`` (ARM)."""

    def __init__(self, fake: Scripted) -> None:
        self.fake = fake
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> "ScriptedEndpoint":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """What the service answers; raises ``TransportError`` to drop the connection."""
        try:
            if method == "POST" and path == "/jobs":
                headers_name = body.get("properties", {}).get("Name")
                job = self.fake.invoke(_invocation(body), job_name=headers_name)
                return 201, _wire(job)
            if method == "GET" and (match := _JOB.match(path)):
                return 200, _wire(self.fake.get_job(match["name"]))
            if method == "GET" and (match := _LIST.match(path)):
                return 200, {"value": [_wire(job) for job in self._find(match["query"])]}
            if method == "POST" and (match := _CANCEL.match(path)):
                self.fake.cancel_job(
                    BatchJob(
                        name=match["name"], id=path.split("/cancel")[0], status=JobStatus.RUNNING
                    )
                )
                return 202, {}
        except HttpError as exc:
            headers = (
                {"Retry-After": str(int(exc.retry_after))}
                if (isinstance(exc, RetryableHttpError) and exc.retry_after is not None)
                else {}
            )
            return exc.status, (
                {"error": {"code": exc.code or "Error", "message": exc.message}},
                headers,
            )
        return 404, {"error": {"code": "NotFound", "message": f"no route {method} {path}"}}

    def _find(self, query: str) -> list[BatchJob]:
        """The ARM Jobs list's ``properties`` filter (``name=value`` pairs, comma-separated)."""
        wanted = parse_qs(query).get("properties", [""])[0]
        pairs = dict(term.split("=", 1) for term in wanted.split(",") if "=" in term)
        return list(self.fake.find_jobs(workspace_id="", properties=pairs))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else {}
                try:
                    status, payload = endpoint.answer(self.command, self.path, body)
                except TransportError:
                    self.close_connection = True
                    return  # no answer: the client sees the connection close
                headers: dict[str, str] = {}
                if isinstance(payload, tuple):
                    payload, headers = payload
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _serve
            do_POST = _serve

        return Handler
