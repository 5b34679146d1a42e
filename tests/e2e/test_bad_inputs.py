"""A battery of named bad inputs, sent over real HTTP to the app on devhost.

Every case in :mod:`tests.e2e.bad_inputs` must be answered with 400 (413 for bodies over
64 KiB; 400 or 404 for bad run ids), never 5xx, with the error body
``{"error": {"code", "message", "details": [{"field", "message"}]}}`` naming the bad field. The
answer must start nothing (no Durable instance, no Azure ML job at the emulator) and echo nothing
dangerous: no secret from the input (SAS ``sig=``, passwords) and no control, zero-width or bidi
character, neither raw in the response bytes nor inside the decoded JSON strings.

Requests go out through ``http.client`` on one kept-alive connection, so the bytes on the wire
are exactly the catalogue's (``requests`` would re-encode paths and refuse some header values).
"""

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from scripts.devstack import Stack
from tests.e2e.bad_inputs import (
    ANY_UNKNOWN,
    BAD_INPUTS,
    BASE_BODY,
    GOOD_ENDPOINT,
    KNOWN_PARAMETERS,
    PORT,
    SECRET,
    BadInput,
    is_dangerous_char,
)
from tests.e2e.conftest import make_stack
from tests.support import Azurite

pytestmark = pytest.mark.e2e

#: Substrings no answer may contain (case-insensitive): the secret marker and SAS signatures.
FORBIDDEN = (SECRET.lower(), "sig=", "sig%3d")


@dataclass
class Wire:
    """One kept-alive HTTP/1.1 connection to devhost that sends requests byte for byte."""

    port: int
    function_key: str
    conn: http.client.HTTPConnection | None = None

    def send(self, case: BadInput) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.putrequest(case.method, case.path, skip_accept_encoding=True)
                self.conn.putheader("x-functions-key", self.function_key)
                if case.method == "POST":
                    self.conn.putheader("Content-Type", "application/json")
                self.conn.putheader("Content-Length", str(len(case.body)))
                for name, value in case.headers:
                    self.conn.putheader(name, value)
                self.conn.endheaders(case.body)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self.close()
                return resp.status, data
            except (http.client.RemoteDisconnected, ConnectionError):
                self.close()  # the server dropped an idle keep-alive connection: once more
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@dataclass
class StartWatch:
    """Notices anything a case started: a Durable instance or an Azure ML job at the emulator.

    Each check compares with the previous one, so a leak is charged to the case that caused
    it. A leaked run creates its job asynchronously, possibly during a later case; a later jobs
    increase is therefore excused only while leaked runs exist (their cases already failed).
    Leaked runs are terminated so that they stop polling.
    """

    stack: Stack
    instances: set[str] = field(default_factory=set)
    jobs_created: int = 0
    leaked: list[str] = field(default_factory=list)
    baseline_instances: set[str] = field(default_factory=set)
    baseline_jobs: int = 0

    def snapshot(self) -> tuple[set[str], int]:
        ids = {str(i["instanceId"]) for i in self.stack.list_instances()}
        return ids, int(self.stack.emulator_counters()["jobs_created"])

    def start(self) -> "StartWatch":
        self.instances, self.jobs_created = self.snapshot()
        self.baseline_instances, self.baseline_jobs = set(self.instances), self.jobs_created
        return self

    def problems(self) -> list[str]:
        ids, jobs = self.snapshot()
        new, more_jobs = sorted(ids - self.instances), jobs - self.jobs_created
        excused = bool(self.leaked)
        self.instances, self.jobs_created = ids, jobs
        found = []
        if new:
            found.append(f"started Durable instance(s) {new}")
            self.leaked.extend(new)
            for instance_id in new:
                self._terminate(instance_id)
        if more_jobs and not excused and not new:
            found.append(f"the emulator created {more_jobs} job(s)")
        return found

    def _terminate(self, instance_id: str) -> None:
        requests.post(
            f"{self.stack.devhost_url}/runtime/webhooks/durabletask/instances/"
            f"{instance_id}/terminate",
            params={"code": self.stack.function_key, "reason": "leaked by a bad-input case"},
            timeout=5,
        )


@pytest.fixture(scope="module")
def bad_stack(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own: no schedule and a blob path nobody writes to, so nothing else
    starts a run while the battery counts instances."""
    stack = make_stack(
        tmp_path_factory.mktemp("bad-inputs"),
        azurite,
        phase_seconds=0.3,
        settings={
            "SCHEDULED_INPUT_URI": "",
            "POLL_INTERVAL_SECONDS": "1",
            "SCORING_BLOB_PATH": "bad-inputs-never-written/{name}",
        },
    )
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def wire(bad_stack: Stack) -> Iterator[Wire]:
    assert bad_stack.devhost_port is not None
    connection = Wire(bad_stack.devhost_port, bad_stack.function_key)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def watch(bad_stack: Stack) -> StartWatch:
    return StartWatch(bad_stack).start()


def _strings(value: Any) -> Iterator[str]:
    """Every string (keys included) inside decoded JSON."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _shown(text: str) -> str:
    return ascii(text[:400]) + ("..." if len(text) > 400 else "")


def _echo_problems(text: str, decoded: Any) -> list[str]:
    found = []
    lowered = text.lower()
    found += [f"echoes {marker!r}" for marker in FORBIDDEN if marker in lowered]
    # Raw JSON text may hold tab/CR/LF only as whitespace between tokens; all else is refused.
    raw_bad = sorted(
        {f"U+{ord(c):04X}" for c in text if is_dangerous_char(c) and c not in "\t\r\n"}
    )
    if raw_bad:
        found.append(f"raw dangerous characters in the response: {raw_bad}")
    decoded_bad = sorted(
        {f"U+{ord(c):04X}" for s in _strings(decoded) for c in s if is_dangerous_char(c)}
    )
    if decoded_bad:
        found.append(f"dangerous characters inside the JSON strings: {decoded_bad}")
    return found


def _shape_problems(case: BadInput, status: int, decoded: Any) -> list[str]:
    error = decoded.get("error") if isinstance(decoded, dict) else None
    if status == 404:  # an unknown run id (or no such route): no details needed
        return []
    if not isinstance(error, dict):
        return ['body is not {"error": {...}}']
    found = []
    code, message, details = error.get("code"), error.get("message"), error.get("details")
    if not isinstance(code, str) or not code:
        found.append("error.code is not a non-empty string")
    elif case.code is not None and code != case.code:
        found.append(f"error.code is {code!r}, expected {case.code!r}")
    if not isinstance(message, str) or not message:
        found.append("error.message is not a non-empty string")
    if (
        not isinstance(details, list)
        or not details
        or not all(
            isinstance(d, dict)
            and isinstance(d.get("field"), str)
            and isinstance(d.get("message"), str)
            for d in details
        )
    ):
        return [*found, 'error.details is not a non-empty list of {"field", "message"}']
    named = [d["field"] for d in details]
    if ANY_UNKNOWN in case.fields:
        if not any(f not in KNOWN_PARAMETERS and f != "body" for f in named):
            found.append(f"details name no unknown parameter: {named}")
    elif not set(case.fields) & set(named):
        expected = " or ".join(repr(f) for f in case.fields)
        found.append(f"details name {named}, expected {expected}")
    return found


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.id for c in BAD_INPUTS])
def test_bad_input_is_refused_naming_the_field_and_starts_nothing(
    case: BadInput, bad_stack: Stack, wire: Wire, watch: StartWatch
):
    assert bad_stack.emulator_port is not None
    sent = case.materialize(bad_stack.emulator_port)

    status, data = wire.send(sent)
    started = watch.problems()

    text = data.decode("utf-8", errors="replace")
    try:
        decoded: Any = json.loads(text)
    except ValueError:
        decoded = None
    problems = [*started]
    if status not in sent.status:
        problems.append(f"status {status}, expected {' or '.join(map(str, sent.status))}")
    if decoded is None and status != 404:
        problems.append("body is not JSON")
    elif status in sent.status:
        problems += _shape_problems(sent, status, decoded)
    problems += _echo_problems(text, decoded)
    assert not problems, f"{'; '.join(problems)}\n  response {status}: {_shown(text)}"


def test_the_whole_battery_started_nothing(bad_stack: Stack, watch: StartWatch):
    """Runs after the battery (file order): the totals agree with the per-case checks."""
    watch.problems()
    new = sorted(watch.instances - watch.baseline_instances)
    jobs = watch.jobs_created - watch.baseline_jobs
    assert (new, jobs) == ([], 0), f"the battery started {len(new)} run(s) and {jobs} job(s)"


def test_the_base_request_is_good_and_the_watch_sees_it_start(
    bad_stack: Stack, wire: Wire, watch: StartWatch
):
    """Positive control, last: every case is BASE_BODY plus one bad thing, so BASE_BODY (with
    the allowlisted endpoint spelled out) must start a run, and the watch must notice."""
    assert bad_stack.emulator_port is not None
    body = {**BASE_BODY, "endpoint_uri": GOOD_ENDPOINT}
    good = BadInput(id="good", body=json.dumps(body).encode()).materialize(bad_stack.emulator_port)
    assert PORT not in good.body.decode()

    status, data = wire.send(good)

    assert status == 202, data[:400]
    assert any("started Durable instance" in p for p in watch.problems())


def test_catalogue_has_at_least_200_uniquely_named_cases():
    ids = [c.id for c in BAD_INPUTS]
    assert len(ids) >= 200
    assert len(set(ids)) == len(ids)


def test_the_2049_character_endpoint_is_exactly_that_long_for_any_port():
    """Guards the harness: the boundary case stays at the boundary whatever the port's width."""
    case = next(c for c in BAD_INPUTS if c.id == "endpoint_uri-length-2049")
    for port in (5100, 65535):
        uri = json.loads(case.materialize(port).body)["endpoint_uri"]
        assert len(uri) == 2049
        assert uri.startswith(f"http://127.0.0.1:{port}/")
