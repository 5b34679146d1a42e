"""Security pass 3: one notification attempt against real local receivers (no mocks).

A receiver is a third party: whatever it answers, one attempt must end quickly, send nothing
twice and follow nowhere."""

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from batch_runs.notify import post_notification

SECRET = "attack-pass-secret"


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.hits: list[str] = []
        self.httpd.hits = self.hits  # type: ignore[attr-defined]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Endless(BaseHTTPRequestHandler):
    """200 announcing a 1 GB body, then one byte per 0.2 s (never a read timeout)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", str(10**9))
        self.end_headers()
        try:
            for _ in range(150):  # 30 s at most, so a failing test still ends
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:
            pass

    def log_message(self, *args: object) -> None:
        pass


class _Redirect(BaseHTTPRequestHandler):
    target = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def session() -> Iterator[requests.Session]:
    s = requests.Session()
    s.trust_env = False
    yield s
    s.close()


def test_a_receiver_that_streams_an_endless_body_does_not_hold_the_attempt(
    session: requests.Session,
) -> None:
    """The status line decides; the body is never read (it could be endless or huge)."""
    server = _Server(_Endless)
    result: list[object] = []
    try:
        worker = threading.Thread(
            target=lambda: result.append(
                post_notification(session, f"{server.url}/hook", "{}", SECRET, 0, (2.0, 2.0))
            ),
            daemon=True,
        )
        started = time.monotonic()
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "the attempt is still reading the receiver's body"
        assert time.monotonic() - started < 5
        assert result[0].status_code == 200  # type: ignore[attr-defined]
    finally:
        server.close()


def test_a_redirect_is_not_followed(session: requests.Session) -> None:
    """A 307 keeps method and body: following it would post the signed summary elsewhere."""
    elsewhere = _Server(_Ok)
    _Redirect.target = f"{elsewhere.url}/stolen"
    redirecting = _Server(_Redirect)
    try:
        attempt = post_notification(session, f"{redirecting.url}/hook", "{}", SECRET, 0, (2.0, 2.0))
        assert attempt.status_code == 307
        assert attempt.error == "the receiver answered HTTP 307"
        assert redirecting.hits == ["/hook"]
        assert elsewhere.hits == []
    finally:
        redirecting.close()
        elsewhere.close()


class _CookieSetter(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.hits.append(self.headers.get("Cookie") or "")  # type: ignore[attr-defined]
        self.send_response(204)
        self.send_header("Set-Cookie", "session=from-receiver; Path=/")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_the_delivery_session_keeps_no_cookies() -> None:
    """The delivery session is shared by every run's notifications: a cookie one receiver sets
    must not travel with the next run's notification (to the same host, another caller's
    path)."""
    from activities.handoff import _plain_session

    server = _Server(_CookieSetter)
    try:
        for run in ("a", "b"):
            attempt = post_notification(
                _plain_session(), f"{server.url}/hooks/{run}", "{}", SECRET, 0, (2.0, 2.0)
            )
            assert attempt.status_code == 204
        assert server.hits == ["", ""]
    finally:
        server.close()


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/a",
        "https://HOOKS.Example.com:443/a",
        "https://hooks.example.com:8443/a/b",
        "https://xn--bcher-kva.example/a",
        "http://127.0.0.1:8080/h",
        "http://[::1]:8080/h",
        "http://[0:0:0:0:0:0:0:1]/h",
        "http://localhost/h",
        "https://1.2.3.4/h",
        "https://hooks.example.com/~x/_y-z.",
    ],
)
def test_the_prepared_request_goes_where_the_check_looked(url: str) -> None:
    """The notification is posted to the text that ``notify_url_problem`` checked; requests
    prepares (IDNA, requoting) and connects by its own reading. Both must name the same
    scheme, host and port as ``ServiceUrl``."""
    from urllib3.util import parse_url

    from batch_endpoint import ServiceUrl

    checked = ServiceUrl.parse(url)
    prepared = requests.Request("POST", url).prepare()
    assert prepared.url is not None
    conn = parse_url(prepared.url)
    host = (conn.host or "").strip("[]").lower()
    import ipaddress

    with contextlib.suppress(ValueError):
        host = ipaddress.ip_address(host).compressed
    assert (conn.scheme, host, conn.port or checked.effective_port) == (
        checked.scheme,
        checked.host,
        checked.effective_port,
    )
    assert prepared.url.rstrip("/").endswith(checked.path or "")
