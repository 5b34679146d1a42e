"""The HTTP listeners' request handler: wire checks, then routes to the host's APIs.

One handler class serves both listeners of a ``Host``: the public one (``rpc`` False: HTTP
triggers, the management API and the blobs webhook with a key, the admin API) and the SDK's
RPC one (``rpc`` True: only ``/durabletask/...``, keyless, loopback). Before any body is read,
a request passes ``devhost.wire``: request-target, framing, key (for routes that need one), then
the body cap. See README "As a network listener".
"""

import json
import logging
import math
import os
import socket
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, unquote

import azure.functions as func

from devhost.clock import Clock, VirtualClock
from devhost.errors import RequestRejected
from devhost.eventgrid import BLOBS_EXTENSION, WEBHOOK_METHODS, answer_delivery, extension_of
from devhost.function_settings import function_disabled
from devhost.management import MGMT_PREFIX, Response
from devhost.wire import Framing, framing_of, key_matches, read_body, split_target

if TYPE_CHECKING:
    from devhost.host import Host

__all__ = ["RPC_HOST", "RPC_PREFIX", "Server", "advance_clock", "handler_class"]

logger = logging.getLogger(__name__)

RPC_PREFIX = "/durabletask/"
RPC_HOST = "127.0.0.1"

# After refusing a request whose body is still arriving: drop input for at most this long (and
# this long without any) before closing, so the client can read the answer (see _linger).
_LINGER_SECONDS = 2.0
_LINGER_IDLE_SECONDS = 0.5

Query = dict[str, list[str]]


class Server(ThreadingHTTPServer):
    """A listener: one thread per connection."""

    daemon_threads = True
    request_queue_size = 128  # bursts of starters/status polls must not be refused


def advance_clock(clock: Clock, query: Query) -> Response:
    """``POST /admin/devhost/clock/advance?seconds=N`` (after the method and key checks)."""
    if not isinstance(clock, VirtualClock):
        return Response(400, {"error": "the virtual clock is off (start with --virtual-clock)"})
    try:
        seconds = float((query.get("seconds") or [""])[0])
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError
        now = clock.advance(seconds)
    except (ValueError, OverflowError):
        return Response(
            400,
            {
                "error": "seconds: must be a non-negative number of seconds "
                "that keeps the clock before year 10000"
            },
        )
    return Response(200, {"now": now.isoformat()})


def handler_class(host: "Host", *, rpc: bool) -> type["Handler"]:
    """The request handler of ``host``'s public listener, or (``rpc``) of its RPC listener."""
    return type("Handler", (Handler,), {"host": host, "rpc": rpc})


class Handler(BaseHTTPRequestHandler):
    """Serves one connection of a listener (subclassed per listener by ``handler_class``)."""

    host: ClassVar["Host"]
    rpc: ClassVar[bool] = False

    server_version = "devhost"
    protocol_version = "HTTP/1.1"
    # Keep-alive clients would otherwise stall ~40 ms per call (Nagle + delayed ACK).
    disable_nagle_algorithm = True

    # Per request, reset in parse_request.
    _framing = Framing(length=None, chunked=False)
    _body_pending = False  # body bytes follow that nobody has read
    _expect_continue = False  # the client waits for "100 Continue" before the body
    _responded = False

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def parse_request(self) -> bool:
        self._framing = Framing(length=None, chunked=False)
        self._body_pending = self._expect_continue = self._responded = False
        return super().parse_request()

    def handle_expect_100(self) -> bool:
        # http.server would answer "100 Continue" right away, inviting the body before the
        # key, route and size are checked; _read_body sends it once the body is wanted.
        self._expect_continue = True
        return True

    # ------------------------------------------------------------------ plumbing

    def _send(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
        *,
        close: bool = False,
    ) -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self._responded = True
        self.send_response(status)
        sent_type = False
        for key, value in (headers or {}).items():
            if key.lower() in ("content-length", "transfer-encoding", "connection"):
                continue
            sent_type = sent_type or key.lower() == "content-type"
            self.send_header(key, value)
        if not sent_type and raw is None and body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        if close or self._body_pending:
            # The unread body would otherwise be parsed as the next request.
            self.send_header("Connection", "close")  # also sets self.close_connection
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        if self._body_pending:
            self._linger()

    def _respond(self, response: Response) -> None:
        self._send(response.status, response.body, response.headers)

    def _linger(self) -> None:
        """Drop what the client still sends, for a moment, then let the connection close.

        Closing a socket with unread input makes the kernel answer with a reset, and a
        client still uploading loses our response; so shut our sending side and discard
        (never keep) input until EOF, a pause or the deadline, as nginx's lingering close.
        """
        sock = self.connection
        chunk = bytearray(65536)
        deadline = time.monotonic() + _LINGER_SECONDS
        try:
            self.wfile.flush()
            sock.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(min(left, _LINGER_IDLE_SECONDS))
                if not sock.recv_into(chunk):
                    break
        except OSError:  # timeout, reset: the connection is closing anyway
            pass

    def _read_body(self) -> bytes:
        """The request body (after the route and key checks; never over the cap)."""
        if not self._body_pending:
            return b""
        limit = self.host.body_limit
        if (self._framing.length or 0) > limit:
            raise RequestRejected(413, f"request body larger than {limit} bytes")
        if self._expect_continue:
            self._expect_continue = False
            self.send_response_only(100)
            self.end_headers()
        data = read_body(self.rfile, self._framing, limit)
        self._body_pending = False
        return data

    def _key_ok(self, query: Query) -> bool:
        # As the Functions host: the x-functions-key header wins over ?code=.
        header = self.headers.get("x-functions-key")
        codes = query.get("code")
        given = header if header is not None else (codes[0] if codes else None)
        return key_matches(given, self.host.function_key)

    def _unauthorized(self) -> None:
        self._send(401, close=True)

    def _host_header(self) -> str:
        return self.headers.get("Host") or f"127.0.0.1:{self.host.port}"

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self) -> None:
        try:
            self._handle()
        except (ConnectionError, TimeoutError):  # the client went away, even mid-answer
            self.close_connection = True

    def _handle(self) -> None:
        try:
            raw_path, raw_query = split_target(self.path)
            self._framing = framing_of(self.headers, http10=self.request_version == "HTTP/1.0")
            self._body_pending = self._framing.has_body
            path = unquote(raw_path)
            query = parse_qs(raw_query, keep_blank_values=True)
            if self.rpc:
                self._rpc(path, query)
            else:
                self._public(path, raw_path, raw_query, query)
        except RequestRejected as exc:
            self._refuse(exc.status, {"error": exc.message})
        except (ConnectionError, TimeoutError):
            raise
        except Exception:
            logger.error(
                "devhost request %s %s failed:\n%s",
                self.command,
                self.path.partition("?")[0],
                traceback.format_exc(),
            )
            self._refuse(500, {"error": "Internal Server Error"})

    def _refuse(self, status: int, body: dict[str, str]) -> None:
        if self._responded:  # too late for an answer of our own
            self.close_connection = True
        else:
            self._send(status, body, close=True)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    def _public(self, path: str, raw_path: str, raw_query: str, query: Query) -> None:
        if path == "/admin/host/status":
            self._send(
                200, {"state": "Running", "version": "devhost", "taskHub": self.host.task_hub}
            )
        elif path == "/admin/devhost/clock/advance":
            self._clock_advance(query)
        elif path.startswith("/admin/functions/"):
            self._run_function(path[len("/admin/functions/") :], query)
        elif path.startswith(MGMT_PREFIX):
            if not self._key_ok(query):  # from every caller, loopback included
                self._unauthorized()
                return
            origin = f"http://{self._host_header()}"
            self._management(path[len(MGMT_PREFIX) :], query, origin)
        elif path.startswith(RPC_PREFIX):
            # The keyless SDK API is served on the loopback RPC listener only.
            self._send(404, {"error": "Not Found"})
        elif (extension := extension_of(path)) is not None:
            self._extension_webhook(extension, query)
        else:
            self._http_trigger(raw_path, raw_query, query)

    def _rpc(self, path: str, query: Query) -> None:
        if not path.startswith(RPC_PREFIX):
            self._send(404, {"error": "Not Found"})
            return
        # Only local processes can connect; a browser on this machine can still be made to
        # call here (DNS rebinding: a foreign Host; a cross-site request: an Origin), and
        # the SDK client sends neither.
        port = self.host.rpc_port
        own = {f"{RPC_HOST}:{port}", f"localhost:{port}"}
        if (self.headers.get("Host") or "").lower() not in own:
            raise RequestRejected(403, "the RPC listener serves local SDK clients only")
        if self.headers.get("Origin") is not None:
            raise RequestRejected(403, "the RPC listener serves local SDK clients only")
        # The management URLs of an SDK start_new point at the public listener.
        self._management(path[len(RPC_PREFIX) :], query, self.host.base_url)

    def _management(self, rest: str, query: Query, origin: str) -> None:
        body = self._read_body()
        request_url = f"http://{self._host_header()}{self.path}"
        self._respond(
            self.host.management.handle(
                self.command,
                rest,
                query,
                body,
                origin=origin,
                request_url=request_url,
                content_type=self.headers.get("Content-Type"),
                continuation=self.headers.get("x-ms-continuation-token"),
            )
        )

    def _extension_webhook(self, extension: str, query: Query) -> None:
        """``/runtime/webhooks/{extension}[/...]``: method, then key, then the extension; only
        ``blobs`` (Event Grid deliveries, ``devhost.eventgrid``) has a handler here."""
        if self.command not in WEBHOOK_METHODS:
            self._send(405, {"error": "Method Not Allowed"}, close=True)
        elif not self._key_ok(query):
            self._unauthorized()
        elif extension != BLOBS_EXTENSION:
            self._send(404, {"error": "Not Found"})
        else:
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                headers.setdefault(name.lower(), value)  # the first value, as the extension
            answer = answer_delivery(self.command, headers, self._read_body)
            if answer.events:
                # As HttpUtility.ParseQueryString: the name in any case, values comma-joined.
                names = [v for k, vs in query.items() if k.lower() == "functionname" for v in vs]
                self.host.blob_events.enqueue(",".join(names) or None, answer.events)
            self._send(answer.status, headers=answer.headers, raw=answer.body)

    def _clock_advance(self, query: Query) -> None:
        if self.command != "POST":
            self._send(405, {"error": "use POST"})
        elif not self._key_ok(query):
            self._unauthorized()
        else:
            self._respond(advance_clock(self.host.clock, query))

    def _run_function(self, name: str, query: Query) -> None:
        """``POST /admin/functions/{name}``: run a timer-triggered function once, now.

        As the Functions host's "manually run a non HTTP-triggered function" (MicrosoftDocs
        azure-docs articles/azure-functions/functions-manually-run-non-http.md: POST with
        the master key and a JSON body ``{"input": ""}``; 202 Accepted, the function runs in
        the background). Devhost has no master key: its function key is asked for. Timer
        triggers only.
        """
        if self.command != "POST":
            self._send(405, {"error": "use POST"})
        elif not self._key_ok(query):
            self._unauthorized()
        else:
            self._read_body()
            started = self.host.run_timer_now(name)
            self._send(202, headers={}, raw=b"") if started else self._send(
                404, {"error": f"no timer-triggered function {name!r}"}
            )

    # ------------------------------------------------------------------ HTTP triggers

    def _http_trigger(self, raw_path: str, raw_query: str, query: Query) -> None:
        found = self.host.find_route(unquote(raw_path), self.command)
        if found is None:
            self._send(404, {"error": "Not Found"})
            return
        route, params = found
        if route.auth_level != "anonymous" and not self._key_ok(query):
            self._unauthorized()
            return
        if function_disabled(route.function_name, os.environ):
            # After auth, an empty 404 (FunctionInvocationMiddleware.cs lines 123-127, host commit
            # 89dc438d); devhost's key is no admin key, so it does not bypass this.
            self._send(404, headers={}, raw=b"")
            return
        body = self._read_body()
        url = f"http://{self._host_header()}{raw_path}" + (f"?{raw_query}" if raw_query else "")
        request = func.HttpRequest(
            method=self.command,
            url=url,
            headers={k: v for k, v in self.headers.items()},
            params={k: v[0] for k, v in query.items()},
            route_params=params,
            body=body,
        )
        status, headers, data = self.host.invoke_http(route, request)
        self._send(status, headers=headers, raw=data)
