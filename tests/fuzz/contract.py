"""What every fuzzed request is checked against, and how problems are collected.

A fuzz test sends many requests and reports *all* contract violations at the end (grouped by
kind, with the first input that showed each), instead of stopping and shrinking at the first:
one run then tells the whole story, and its length stays bounded.

Every response is checked with schemathesis against docs/openapi.yaml:

- ``not_a_server_error``: never a 5xx;
- ``status_code_conformance``: the status is documented for the operation;
- ``content_type_conformance`` / ``response_schema_conformance``: a documented JSON response
  has the documented media type and conforms to its schema;
- ``response_headers_conformance``: documented required response headers are present and valid;
- ``negative_data_rejection``: a generated request that violates the spec is rejected (4xx).

and the tests add their own expectations through :meth:`Findings.expect` (e.g. 401 without
the right key; 400 naming the field a request broke).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from schemathesis import Case, Response
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from scripts.devstack import Stack

CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]

KEY_HEADER = "x-functions-key"
KEY_QUERY = "code"

#: How a request authenticates. Most use the key (header or query); the rest must get 401,
#: including keys with non-ASCII characters (a header is sent as Latin-1, a query as UTF-8).
AUTH_MODES: tuple[str, ...] = (
    "header",
    "header",
    "header",
    "header",
    "header",
    "header",
    "query",
    "query",
    "query",
    "missing",
    "wrong-header",
    "wrong-query",
    "non-ascii-header",
    "non-ascii-query",
)
AUTHENTICATED = frozenset({"header", "query"})

_SHOWN = 240
#: ``FUZZ_TRACE=1`` prints every request and the start of its response (run pytest with -s).
TRACE = os.environ.get("FUZZ_TRACE") == "1"
#: ``FUZZ_SCALE=10`` multiplies the generated examples for a deeper, slower exploratory run
#: (``make test`` uses 1: bounded and the same requests every time).
SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))


def examples(count: int) -> int:
    """``count`` generated examples, times ``FUZZ_SCALE``."""
    return count * SCALE


def shorten(value: object, limit: int = _SHOWN) -> str:
    """A one-line, bounded rendering of an input for a report."""
    if isinstance(value, bytes):
        text = repr(value[:limit])
        if len(value) > limit:
            text += f"... ({len(value)} bytes)"
        return text
    if isinstance(value, str):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, ensure_ascii=True)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text)} chars)"
    return text


#: Distinct inputs kept per kind of violation.
_INPUTS_SHOWN = 3


@dataclass
class Finding:
    """One kind of contract violation and the first few distinct inputs that showed it."""

    route: str
    status: int
    problem: str
    requests: list[str]
    count: int = 1

    def render(self) -> str:
        inputs = "".join(f"\n    input: {r}" for r in self.requests)
        return f"[{self.route}] HTTP {self.status}: {self.problem} (x{self.count}){inputs}"


@dataclass
class Findings:
    """Violations grouped by (route, status, problem); statuses seen per route, for the report."""

    found: dict[tuple[str, int, str], Finding] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)
    sent: int = 0

    def saw(self, route: str, status: int) -> None:
        self.sent += 1
        per_route = self.statuses.setdefault(route, {})
        per_route[status] = per_route.get(status, 0) + 1

    def add(self, route: str, status: int, problem: str, request: str) -> None:
        key = (route, status, problem)
        finding = self.found.get(key)
        if finding is None:
            self.found[key] = Finding(route, status, problem, [request])
            return
        finding.count += 1
        if request not in finding.requests and len(finding.requests) < _INPUTS_SHOWN:
            finding.requests.append(request)

    def expect(self, ok: bool, sent: Sent, problem: str) -> None:
        """Record ``problem`` for ``sent`` unless ``ok``."""
        if not ok:
            self.add(sent.route, sent.status, problem, sent.request)

    def report(self) -> str:
        seen = "; ".join(
            f"{route}: {dict(sorted(counts.items()))}"
            for route, counts in sorted(self.statuses.items())
        )
        lines = [
            f"{len(self.found)} kind(s) of contract violation in {self.sent} requests "
            f"(statuses seen: {seen})"
        ]
        lines += [f.render() for f in self.found.values()]
        return "\n".join(lines)

    def assert_none(self) -> None:
        assert not self.found, self.report()


@dataclass(frozen=True)
class Sent:
    """A request that got an answer: what was sent (for reports) and what came back."""

    route: str
    request: str
    response: Response

    @property
    def status(self) -> int:
        return self.response.status_code

    def json(self) -> Any:
        try:
            return self.response.json()
        except ValueError:
            return None

    @property
    def error_code(self) -> str | None:
        error = _error(self.json())
        code = error.get("code") if error is not None else None
        return str(code) if code is not None else None

    @property
    def error_fields(self) -> list[str]:
        """The ``details[].field`` values of an error body (empty when there are none)."""
        error = _error(self.json())
        details = error.get("details") if error is not None else None
        if not isinstance(details, list):
            return []
        return [str(d.get("field")) for d in details if isinstance(d, Mapping)]

    def is_invalid_request_naming(self, name: str) -> bool:
        """A 400 ``InvalidRunRequest`` whose details name ``name``."""
        return (
            self.status == 400
            and self.error_code == "InvalidRunRequest"
            and name in self.error_fields
        )


def _error(body: object) -> Mapping[str, Any] | None:
    error = body.get("error") if isinstance(body, Mapping) else None
    return error if isinstance(error, Mapping) else None


def describe(case: Case, *, path: str | None = None, body: object = None) -> str:
    """Method, path, the headers that matter and the body of a request, bounded."""
    parts = [f"{case.method.upper()} {path or case.formatted_path}"]
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != KEY_HEADER}
    if headers:
        parts.append(f"headers={shorten(headers)}")
    query = {k: v for k, v in (case.query or {}).items() if k != KEY_QUERY}
    if query:
        parts.append(f"query={shorten(query)}")
    shown = body if body is not None else case.body
    if shown is not None and type(shown).__name__ != "NotSet":
        parts.append(f"body={shorten(shown)}")
    return " ".join(parts)


def _with_auth(request: str, auth: str) -> str:
    """``request``, prefixed with how it authenticated unless that was the header key."""
    return request if auth == "header" else f"[key: {auth}] {request}"


def problem_of(failure: Failure) -> str:
    """A stable one-line name of a failure (title + first line of the message)."""
    detail = next(
        (line.strip() for line in (failure.message or "").splitlines() if line.strip()), ""
    )
    return f"{failure.title}: {detail}" if detail else failure.title


def auth_parts(stack: Stack, mode: str) -> tuple[dict[str, str], dict[str, str]]:
    """(headers, query) carrying the key as ``mode`` says (or a missing or wrong key)."""
    if mode == "header":
        return {KEY_HEADER: stack.function_key}, {}
    if mode == "query":
        return {}, {KEY_QUERY: stack.function_key}
    if mode == "wrong-header":
        return {KEY_HEADER: stack.function_key + "x"}, {}
    if mode == "wrong-query":
        return {}, {KEY_QUERY: "not-the-key"}
    if mode == "non-ascii-header":
        return {KEY_HEADER: "cl\u00e9"}, {}
    if mode == "non-ascii-query":
        return {}, {KEY_QUERY: "\u043a\u043b\u044e\u0447"}
    return {}, {}


def _validate(
    case: Case,
    response: Response | requests.Response,
    findings: Findings,
    sent: Sent,
    auth: str,
    checks: list[CheckFunction] | None,
) -> None:
    findings.saw(sent.route, sent.status)
    if TRACE:
        mode = (
            "/".join(sorted({c.mode.value[:3] for c in case.meta.components.values()}))
            if case.meta
            else "fixed"
        )
        print(
            f"FUZZ {mode} {sent.request} -> {sent.status} {sent.response.content[:160]!r}",
            file=sys.stderr,
        )
    if auth not in AUTHENTICATED:
        findings.expect(
            sent.status == 401,
            sent,
            "a request without the right function key was not answered 401",
        )
    try:
        case.validate_response(response, checks=checks if checks is not None else CHECKS)
    except FailureGroup as group:
        for failure in group.exceptions:
            findings.add(sent.route, sent.status, problem_of(failure), sent.request)
    except Failure as failure:
        findings.add(sent.route, sent.status, problem_of(failure), sent.request)


def send_case(
    case: Case, stack: Stack, session: requests.Session, findings: Findings, *, auth: str = "header"
) -> Sent | None:
    """Send a generated ``case`` with the key as ``auth`` says; check the response."""
    # Whatever key the generator drew (the spec declares both places) gives way to ``auth``.
    case.headers.pop(KEY_HEADER, None)
    case.query.pop(KEY_QUERY, None)
    auth_headers, auth_query = auth_parts(stack, auth)
    case.headers.update(auth_headers)
    case.query.update(auth_query)
    route = case.operation.label
    request = _with_auth(describe(case), auth)
    try:
        response = case.call(base_url=stack.devhost_url, session=session, timeout=15)
    except requests.RequestException as exc:
        findings.add(route, 0, f"no response: {type(exc).__name__}", request)
        return None
    sent = Sent(route, request, response)
    _validate(case, response, findings, sent, auth, None)
    return sent


def encode_path_value(value: str) -> str:
    """Percent-encode every reserved character *and* dots, so the app receives ``value`` as is
    (clients remove ``.`` and ``..`` path segments that are sent literally)."""
    return quote(value, safe="").replace(".", "%2E")


def send_raw(
    case: Case,
    stack: Stack,
    session: requests.Session,
    findings: Findings,
    *,
    path: str,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    auth: str = "header",
    shown_body: object = None,
    checks: list[CheckFunction] | None = None,
) -> Sent | None:
    """Send exactly ``path`` (already encoded) and ``data``; check the response as ``case``'s.

    ``case`` (built with ``operation.Case(...)``) names the operation whose documented
    responses apply; hand-made cases carry no generation mode, so ``negative_data_rejection``
    does not apply and the caller states what it expects with :meth:`Findings.expect`.
    """
    auth_headers, auth_query = auth_parts(stack, auth)
    all_headers = {"Content-Type": "application/json", **(headers or {}), **auth_headers}
    if data is None:
        all_headers.pop("Content-Type")
    route = case.operation.label
    request = describe(case, path=path, body=shown_body if shown_body is not None else data)
    if headers:
        request += f" headers={shorten(dict(headers))}"
    request = _with_auth(request, auth)
    try:
        raw = session.request(
            case.method.upper(),
            f"{stack.devhost_url}{path}",
            data=data,
            headers=all_headers,
            params=auth_query,
            timeout=15,
        )
    except requests.RequestException as exc:
        findings.add(route, 0, f"no response: {type(exc).__name__}", request)
        return None
    response = Response.from_any(raw)
    sent = Sent(route, request, response)
    _validate(case, response, findings, sent, auth, checks)
    return sent
