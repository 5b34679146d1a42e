"""The demo's notification receiver: a loopback HTTP server that checks each signature.

``make demo`` starts it before the stack, allows its host (``NOTIFY_ALLOWED_HOSTS=127.0.0.1``)
with a fresh signing secret, and passes its URL as the batch's ``notify_url``, so every child
run POSTs its signed summary here when it ends (docs/operations.md, "Notifications").
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from batch_runs.notify import verify

#: Receivers answer quickly; the summary is small.
_MAX_BODY = 64 * 1024


class NotificationReceiver:
    """Collects the notifications POSTed to :attr:`url`, each with ``signature_ok``."""

    def __init__(self) -> None:
        self.secret = secrets.token_hex(24)
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, _MAX_BODY))
                headers = {k: v for k, v in self.headers.items()}
                ok = verify(receiver.secret, body, headers, now=int(time.time()))
                try:
                    summary = json.loads(body)
                except ValueError:
                    summary = {}
                with receiver._lock:
                    receiver.received.append({"signature_ok": ok, "summary": summary})
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *_: object) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/batch-notifications"

    def settings(self) -> dict[str, str]:
        """The app settings that let runs notify this receiver."""
        return {"NOTIFY_ALLOWED_HOSTS": "127.0.0.1", "NOTIFY_SIGNING_SECRET": self.secret}

    def start(self) -> NotificationReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def for_runs(self, prefix: str) -> list[dict[str, Any]]:
        """The notifications of runs whose id starts with ``prefix``, in arrival order."""
        with self._lock:
            return [
                n for n in self.received if str(n["summary"].get("run_id", "")).startswith(prefix)
            ]

    def wait_for(self, prefix: str, count: int, timeout: float) -> list[dict[str, Any]]:
        """Wait until ``count`` notifications for ``prefix`` have arrived (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.for_runs(prefix)) < count:
            time.sleep(0.2)
        return self.for_runs(prefix)
