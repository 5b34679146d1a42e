"""The emulator's HTTP plumbing: errors, responses, bodies, tokens and the request handler.

:class:`EmulatorServer` (``server.py``) holds the routes; this module adapts ``http.server`` to
its ``handle(method, path, headers, body) -> Response``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import socket
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol

logger = logging.getLogger("aml_emulator.server")

MAX_BODY_BYTES = 1 << 20


class Handles(Protocol):
    """What the request handler needs: the emulator's one entry point."""

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> Response: ...


class ApiError(Exception):
    """Answer with ``{"error": {"code", "message"}}`` and this status."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class Response:
    """One answer. ``drop``: hold the connection that many seconds, then close it unanswered."""

    status: int
    body: Any
    headers: dict[str, str]
    drop: float | None = None


def token_audiences(token: str) -> set[str]:
    """The ``aud`` claim(s) of a JWT, without verifying it; empty when not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return set()
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        return set()
    aud = claims.get("aud") if isinstance(claims, dict) else None
    if isinstance(aud, str):
        return {aud}
    if isinstance(aud, list):
        return {a for a in aud if isinstance(a, str)}
    return set()


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "BadRequest", f"body: not valid JSON ({exc})") from None


class RequestHandler(BaseHTTPRequestHandler):
    """Thin adapter from http.server to :meth:`EmulatorServer.handle`."""

    emulator: Handles
    protocol_version = "HTTP/1.1"
    # Keep-alive clients (one requests.Session, as the app uses) otherwise wait ~40 ms per call:
    # headers and body go out in separate writes and Nagle holds the second for the delayed ACK.
    disable_nagle_algorithm = True
    server_version = "aml_emulator"
    sys_version = ""
    timeout = 60  # idle keep-alive connections are closed after a minute

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self._send(
                Response(
                    413 if length > 0 else 400,
                    error_body("BadRequest", "Content-Length: invalid or too large"),
                    {},
                ),
                close=True,
            )
            return
        body = self.rfile.read(length) if length else b""
        response = self.emulator.handle(self.command, self.path, self.headers, body)
        if response.drop is not None:
            self._drop(response.drop)
            return
        self._send(response)

    def _drop(self, hold: float) -> None:
        """The "lost answer" fault: the request took effect; the client never hears of it."""
        time.sleep(hold)  # the injected silence itself (a client read timeout shorter than this)
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may already have gone away
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, response: Response, *, close: bool = False) -> None:
        data = json.dumps(response.body).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for key, value in response.headers.items():
            self.send_header(key, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve
    do_PUT = _serve
    do_PATCH = _serve
