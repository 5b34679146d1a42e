"""devhost as a network listener: keys, body framing and caps, the RPC listener, bad requests.

Each test sends real HTTP (``requests``, or raw bytes on a socket where a client library would
refuse to send the request) to a devhost child process.
"""

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from devhost.errors import SettingsError
from devhost.wire import DEFAULT_MAX_REQUEST_BODY_BYTES, body_limit
from tests.devhost.hostproc import KEY, DevhostProcess

pytestmark = pytest.mark.integration

CAP = 1024 * 1024  # FUNCTIONS_REQUEST_BODY_SIZE_LIMIT of the module's host
MGMT = "/runtime/webhooks/durabletask"


@pytest.fixture(scope="module")
def host() -> Iterator[DevhostProcess]:
    proc = DevhostProcess(
        settings={"SAMPLE_HUB": "sechub"},
        env={"FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": str(CAP)},
        args=["--no-triggers", "--virtual-clock"],
    ).start()
    yield proc
    proc.stop()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes
    raw: bytes


def raw_request(
    port: int, head: bytes, *, body: bytes = b"", filler: int = 0, timeout: float = 10
) -> Answer:
    """Send ``head`` (request line + headers, CRLFs included), ``body``, then ``filler`` bytes.

    The sending stops quietly if devhost has closed its side; the answer is read either way.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(head + body)
            block = b"x" * 65536
            for _ in range(filler // len(block)):
                sock.sendall(block)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    return _parse_answer(data)


def _parse_answer(data: bytes) -> Answer:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    match = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    assert match, data[:300]
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(status=int(match.group(1)), headers=headers, body=body, raw=data)


def vm_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match, status
    return int(match.group(1))


def assert_no_devhost_failure(host: DevhostProcess, answer: Answer, log_from: int) -> None:
    """No 500, no traceback in the answer, no handler failure logged since ``log_from``."""
    assert answer.status != 500, answer.raw[:500]
    assert b"Traceback" not in answer.raw
    assert "devhost request" not in host.log()[log_from:]  # the handler's last-resort 500


# --------------------------------------------------------------------- 1. function keys


@pytest.mark.parametrize("where", ["query", "query-invalid-utf8", "header"])
@pytest.mark.parametrize("path", ["/api/start/chain", f"{MGMT}/instances"])
def test_non_ascii_function_key_is_a_plain_401(host, where, path):
    method = "POST" if path.startswith("/api/") else "GET"
    key_part = {"query": "?code=cl%C3%A9", "query-invalid-utf8": "?code=%ff%fe"}.get(where, "")
    key_header = "x-functions-key: cl\xe9\r\n" if where == "header" else ""
    head = (
        f"{method} {path}{key_part} HTTP/1.1\r\nHost: 127.0.0.1\r\n{key_header}"
        "Content-Length: 0\r\n\r\n"
    ).encode("latin-1")

    log_from = len(host.log())

    answer = raw_request(host.port, head)

    assert answer.status == 401
    assert answer.headers["connection"] == "close"
    assert_no_devhost_failure(host, answer, log_from)


def test_key_header_wins_over_query_as_in_the_functions_host(host):
    url = f"{host.base}{MGMT}/instances"

    wrong_header = requests.get(
        url, params={"code": KEY}, headers={"x-functions-key": "nope"}, timeout=10
    )
    right_header = requests.get(
        url, params={"code": "nope"}, headers={"x-functions-key": KEY}, timeout=10
    )

    assert wrong_header.status_code == 401
    assert right_header.status_code == 200


def test_management_api_needs_the_key_from_loopback_callers_too(host):
    no_key = requests.get(f"{host.base}{MGMT}/instances", timeout=10)
    start = requests.post(f"{host.base}{MGMT}/orchestrators/chain", json=1, timeout=10)

    assert (no_key.status_code, start.status_code) == (401, 401)


# --------------------------------------------------------------------- 2. body before key, cap


@pytest.mark.parametrize(
    "path",
    ["/api/start/chain", f"{MGMT}/orchestrators/chain", "/admin/devhost/clock/advance?seconds=1"],
)
def test_unauthenticated_200_mb_body_is_refused_unread(host, path):
    warm = raw_request(host.port, f"POST {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    before = vm_rss_kib(host.pid)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {200 * 1024 * 1024}\r\n\r\n"
    ).encode()

    answer = raw_request(host.port, head, filler=16 * 1024 * 1024)
    after = vm_rss_kib(host.pid)

    assert warm.status == 401
    assert answer.status == 401
    assert answer.headers["connection"] == "close"
    assert after - before < 8 * 1024, (before, after)  # 16 MiB were sent; none was kept


@pytest.mark.parametrize(
    ("path", "key"), [("/api/echo/1", ""), (f"{MGMT}/orchestrators/chain", f"?code={KEY}")]
)
def test_body_over_the_cap_is_413_before_it_is_read(host, path, key):
    before = vm_rss_kib(host.pid)
    head = (
        f"PUT {path}{key} HTTP/1.1\r\nHost: x\r\nContent-Length: {200 * 1024 * 1024}\r\n\r\n"
    ).encode()
    if "orchestrators" in path:
        head = head.replace(b"PUT ", b"POST ", 1)

    answer = raw_request(host.port, head, filler=4 * 1024 * 1024)

    assert answer.status == 413
    assert answer.headers["connection"] == "close"
    assert vm_rss_kib(host.pid) - before < 4 * 1024


def test_body_cap_follows_functions_request_body_size_limit(host):
    at_cap = requests.put(f"{host.base}/api/echo/1", data=b"a" * CAP, timeout=10)
    over_cap = requests.put(f"{host.base}/api/echo/1", data=b"a" * (CAP + 1), timeout=10)

    assert at_cap.status_code == 200
    assert len(at_cap.json()["body"]) == CAP
    assert over_cap.status_code == 413


def test_expect_100_continue_is_not_granted_before_the_key_check(host):
    head = (
        f"POST {MGMT}/orchestrators/chain?code=nope HTTP/1.1\r\nHost: x\r\n"
        "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    ).encode()

    answer = raw_request(host.port, head)

    assert answer.status == 401  # the first and only status line: no "100 Continue"
    assert answer.raw.count(b"HTTP/1.1 ") == 1


def test_expect_100_continue_is_granted_once_the_body_is_wanted(host):
    head = (
        b"PUT /api/echo/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )

    answer = raw_request(host.port, head, body=b"hello")

    assert answer.raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ")
    assert b'"body": "hello"' in answer.raw


def test_default_body_cap_is_the_functions_host_default_and_bad_values_stop_devhost():
    assert body_limit({}) == DEFAULT_MAX_REQUEST_BODY_BYTES == 104_857_600
    assert body_limit({"FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": "2048"}) == 2048
    with pytest.raises(SettingsError, match="FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"):
        body_limit({"FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": "100MB"})


# --------------------------------------------------------------------- 3. framing


@pytest.mark.parametrize(
    "lengths", [["abc"], ["-1"], ["+5"], ["0x10"], ["1", "2"], ["1, 2"], ["5", "5"]]
)
def test_malformed_or_repeated_content_length_is_400(host, lengths):
    fields = "".join(f"Content-Length: {value}\r\n" for value in lengths)
    head = f"PUT /api/echo/1 HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode()
    log_from = len(host.log())

    answer = raw_request(host.port, head, body=b"hello")

    assert answer.status == 400
    assert answer.headers["connection"] == "close"
    assert_no_devhost_failure(host, answer, log_from)


def test_huge_valid_content_length_is_413_not_an_error(host):
    head = f"PUT /api/echo/1 HTTP/1.1\r\nHost: x\r\nContent-Length: {'9' * 5000}\r\n\r\n".encode()

    answer = raw_request(host.port, head)

    assert answer.status == 413


def test_chunked_body_is_read_like_the_functions_host_does(host):
    def chunks() -> Iterator[bytes]:
        yield b"hel"
        yield b"lo"

    answer = requests.put(f"{host.base}/api/echo/1", data=chunks(), timeout=10)

    assert answer.request.headers["Transfer-Encoding"] == "chunked"
    assert answer.status_code == 200
    assert answer.json()["body"] == "hello"


def test_chunked_body_over_the_cap_is_413(host):
    def chunks() -> Iterator[bytes]:
        for _ in range(CAP // 65536 + 2):
            yield b"a" * 65536

    answer = requests.put(f"{host.base}/api/echo/1", data=chunks(), timeout=10)

    assert answer.status_code == 413


@pytest.mark.parametrize(
    ("extra", "body", "status"),
    [
        ("Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n", 400),  # bad chunk size
        ("Transfer-Encoding: chunked\r\n", b"5\r\nhelloXX0\r\n\r\n", 400),  # no CRLF after data
        ("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n", 400),  # smuggling
        ("Transfer-Encoding: gzip\r\n", b"hello", 400),  # length unknowable: chunked not last
        ("Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n", 501),  # unknown coding
    ],
)
def test_bad_transfer_encoding_is_refused(host, extra, body, status):
    head = f"PUT /api/echo/1 HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()

    answer = raw_request(host.port, head, body=body)

    assert answer.status == status
    assert answer.headers["connection"] == "close"


def test_unread_body_is_never_parsed_as_the_next_request(host):
    smuggled = b"GET /admin/host/status HTTP/1.1\r\nHost: x\r\n\r\n"
    head = (
        f"POST {MGMT}/orchestrators/chain HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {len(smuggled)}\r\n\r\n"
    ).encode()

    answer = raw_request(host.port, head, body=smuggled)

    assert answer.status == 401
    assert answer.raw.count(b"HTTP/1.1 ") == 1  # the connection closed after the 401


# --------------------------------------------------------------------- 4. the RPC listener


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp* shows them) with a socket LISTENing on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_rpc_listener_is_its_own_loopback_port(host):
    match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/durabletask/", host.rpc_base_url)
    assert match, host.rpc_base_url
    rpc_port = int(match.group(1))

    assert rpc_port != host.port
    assert _listening_addresses(rpc_port) == {"0100007F"}  # 127.0.0.1, nothing else


@pytest.mark.parametrize("key", [None, KEY])
def test_public_port_answers_404_for_the_rpc_api(host, key):
    params = {"code": key} if key else {}

    status = requests.get(f"{host.base}/durabletask/instances", params=params, timeout=10)
    start = requests.post(
        f"{host.base}/durabletask/orchestrators/chain", params=params, json=1, timeout=10
    )

    assert (status.status_code, start.status_code) == (404, 404)


def test_rpc_listener_serves_only_the_rpc_api_to_local_sdk_clients(host):
    rpc = host.rpc_base_url
    rpc_port = int(rpc.split(":")[2].split("/")[0])

    listed = requests.get(f"{rpc}instances", timeout=10)
    mgmt = requests.get(
        f"http://127.0.0.1:{rpc_port}{MGMT}/instances", params={"code": KEY}, timeout=10
    )
    api = requests.get(f"http://127.0.0.1:{rpc_port}/api/echo/1", timeout=10)
    rebound = raw_request(
        rpc_port,
        f"GET /durabletask/instances HTTP/1.1\r\nHost: evil.example:{rpc_port}\r\n\r\n".encode(),
    )
    browser = requests.get(f"{rpc}instances", headers={"Origin": "http://evil.example"}, timeout=10)

    assert listed.status_code == 200
    assert (mgmt.status_code, api.status_code) == (404, 404)
    assert (rebound.status, browser.status_code) == (403, 403)


def test_sdk_client_in_a_starter_reaches_the_rpc_listener(host):
    started = requests.post(
        f"{host.base}/api/start/chain", params={"code": KEY}, json=1, timeout=10
    )
    status = requests.get(f"{host.base}/api/status/{started.json()['id']}", timeout=10)

    assert started.status_code == 202
    assert status.status_code == 200  # the SDK's get_status went through rpcBaseUrl


# --------------------------------------------------------------------- 5. malformed requests


@pytest.mark.parametrize(
    "head",
    [
        b"GET /api/echo/%zz%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/echo/1?a=%zz&&=&;b=%ff&code HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET "
        + MGMT.encode()
        + b"/instances/%ff%00?code="
        + KEY.encode()
        + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET "
        + MGMT.encode()
        + b"/instances?top="
        + b"9" * 5000
        + b"&createdTimeFrom=%ff&code="
        + KEY.encode()
        + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET //evil.example/api/echo/1 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET nonsense HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://[::1/api/echo/1 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/echo/1 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
        b"GET /api/echo/1 HTTP/1.1\r\nHost: x\r\n"
        + b"".join(b"X-%d: a\r\n" % i for i in range(150))
        + b"\r\n",
        b"GET /api/echo/1?" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /admin/devhost/clock/advance?seconds=inf&code="
        + KEY.encode()
        + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /admin/devhost/clock/advance?seconds=1e300&code="
        + KEY.encode()
        + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=[
        "bad-percent-path",
        "bad-query",
        "mgmt-bad-id",
        "mgmt-bad-list-query",
        "double-slash-target",
        "asterisk-target",
        "garbage-target",
        "bad-absolute-target",
        "header-line-too-long",
        "too-many-headers",
        "request-line-too-long",
        "clock-inf",
        "clock-overflow",
    ],
)
def test_malformed_request_is_answered_without_500(host, head):
    log_from = len(host.log())

    answer = raw_request(host.port, head)

    assert answer.status < 500  # 4xx, or 200 where the route takes any query (as Azure does)
    assert_no_devhost_failure(host, answer, log_from)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"\xff\xfe", b"[" * 100_000],
    ids=["invalid", "not-utf8", "deeply-nested"],
)
@pytest.mark.parametrize("target", ["orchestrators/chain", "instances/sec-wait/raiseEvent/Go"])
def test_invalid_json_to_the_management_api_is_400(host, body, target):
    host.mgmt("POST", "orchestrators/waiter/sec-wait")
    head = (
        f"POST {MGMT}/{target}?code={KEY} HTTP/1.1\r\nHost: x\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    log_from = len(host.log())

    answer = raw_request(host.port, head, body=body)

    assert answer.status == 400
    assert_no_devhost_failure(host, answer, log_from)
