"""The request limits docs/openapi.yaml states, probed at their edges (``POST /api/runs``).

Random schema-violating bodies rarely break one rule of an otherwise valid request, so these
tests build such requests from the spec: each run parameter's own example (``examples[0]``)
made one step too long, or given one forbidden character; a body one byte over the size limit;
JSON nested far too deep; bodies that are not JSON at all. Each must be refused with the
documented status and body, naming the field that broke the rule, and every response is also
checked against the spec (:mod:`tests.fuzz.contract`).

The limits come from the spec: ``maxLength`` of each parameter's string form, the
``SafeText`` pattern (its negated character class is what is forbidden) and the request body's
``x-max-body-bytes`` and ``x-max-json-depth``. Valid requests at exactly a limit start real runs
(a handful).
"""

import json
from collections.abc import Iterator, Mapping
from typing import Any

import hypothesis
import pytest
import requests
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.fuzz.conftest import TINY_INPUT, FuzzEnv
from tests.fuzz.contract import Findings, Sent, examples, send_raw

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]

ROUTE = "/api/runs"
#: Forbidden-character requests (field x character x position), drawn by hypothesis.
FORBIDDEN_EXAMPLES = 80
#: Nesting depths far beyond the limit; the deepest still fits in the size limit.
DEPTHS = (100, 1000, 20000)
#: Bodies that are not JSON objects (or not JSON), each a 400 naming ``body``.
NOT_JSON: tuple[bytes, ...] = (
    b"",
    b"{",
    b'{"endpoint_input_uri": }',
    b"\xff\xfe\x00",
    b"\xef\xbb\xbf{}",
    b"[]",
    b'"azureml://datastores/workspaceblobstore/paths/x/"',
    b"null",
    b"42",
    b"NaN",
    b'{"endpoint_input_uri": "azureml://datastores/workspaceblobstore/paths/x/", '
    b'"poll_interval": NaN}',
    b'{"endpoint_input_uri": "azureml://datastores/workspaceblobstore/paths/x/", '
    b'"timeout": Infinity}',
)


# ------------------------------------------------------------------------------ the spec


def _resolve(raw: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        target: Any = raw
        for part in str(node["$ref"]).lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _string_branch(raw: Mapping[str, Any], prop: Mapping[str, Any]) -> Mapping[str, Any]:
    """The first string form of a run parameter that sets it (not ``Unset``/``UnsetNumber``)."""
    for branch in prop.get("anyOf", [prop]):
        if branch.get("$ref", "").rsplit("/", 1)[-1] in ("Unset", "UnsetNumber"):
            continue
        resolved = _resolve(raw, branch)
        if resolved.get("type") == "string" or "maxLength" in resolved:
            return resolved
    return {}


def _parameters(api_schema: OpenApiSchema) -> dict[str, Mapping[str, Any]]:
    raw = api_schema.raw_schema
    return dict(raw["components"]["schemas"]["RunParameters"]["properties"])


def _forbidden_class(api_schema: OpenApiSchema) -> str:
    """``[...]`` of the characters ``SafeText`` forbids (its pattern is ``^[^...]*$``)."""
    pattern = str(api_schema.raw_schema["components"]["schemas"]["SafeText"]["pattern"])
    assert pattern.startswith("^[^"), pattern
    assert pattern.endswith("]*$"), pattern
    return "[" + pattern[3:-3] + "]"


def _request_body_limit(api_schema: OpenApiSchema, name: str) -> int:
    """``x-max-body-bytes`` or ``x-max-json-depth`` of the request body."""
    return int(api_schema.raw_schema["paths"][ROUTE]["post"]["requestBody"][name])


def _is_numeric(prop: Mapping[str, Any]) -> bool:
    return any(branch.get("type") == "integer" for branch in prop.get("anyOf", []))


def _base_value(env: FuzzEnv, name: str, prop: Mapping[str, Any]) -> str:
    """The parameter's example as the string a caller would send (ADF sends numbers so)."""
    if name == "endpoint_uri":
        return env.stack.endpoint_uri  # the spec's example host is not allowed on this stack
    if name == "endpoint_input_uri":
        return TINY_INPUT
    return str(prop["examples"][0])


def _padded(value: str, length: int, *, numeric: bool) -> str:
    """``value`` grown to ``length`` characters without breaking any other rule."""
    extra = length - len(value)
    if numeric:
        return "0" * extra + value  # leading zeros: the same number
    cut = value.rstrip("/").rfind("/")
    if cut >= 0 and "://" in value:  # a URI: one more path segment before the last one
        return value[: cut + 1] + "a" * (extra - 1) + "/" + value[cut + 1 :]
    return value[:1] + "a" * extra + value[1:]  # a name: more letters after the first


def _valid_body(env: FuzzEnv, **params: Any) -> dict[str, Any]:
    return {"endpoint_input_uri": TINY_INPUT, **params}


def _post(
    env: FuzzEnv,
    operation_case: Case,
    http: requests.Session,
    findings: Findings,
    data: bytes,
    shown: object = None,
) -> Sent | None:
    return send_raw(
        operation_case, env.stack, http, findings, path=ROUTE, data=data, shown_body=shown
    )


# ------------------------------------------------------------------------------ tests


def _length_cases(env: FuzzEnv, api_schema: OpenApiSchema) -> Iterator[tuple[str, str, bool]]:
    """(parameter, value, within limit) at every parameter's ``maxLength`` and one past it."""
    raw = api_schema.raw_schema
    for name, prop in _parameters(api_schema).items():
        branch = _string_branch(raw, prop)
        if "maxLength" not in branch:
            continue
        limit = int(branch["maxLength"])
        numeric = _is_numeric(prop)
        base = _base_value(env, name, prop)
        if not numeric:  # an integer string cannot reach its length limit and stay valid
            yield name, _padded(base, limit, numeric=False), True
        yield name, _padded(base, limit + 1, numeric=numeric), False


def test_every_string_parameter_has_its_documented_maximum_length(
    api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    operation = api_schema[ROUTE]["POST"]
    findings = Findings()
    checked = set()
    for name, value, within in _length_cases(fuzz_env, api_schema):
        checked.add(name)
        body = _valid_body(fuzz_env, **{name: value})
        shown = {name: f"<{len(value)} chars: {value[:40]}...{value[-20:]}>"}
        sent = _post(
            fuzz_env, operation.Case(body=body), http, findings, json.dumps(body).encode(), shown
        )
        if sent is None:
            continue
        if within:
            findings.expect(
                not sent.is_invalid_request_naming(name) and sent.status == 202,
                sent,
                f"{name} at exactly its maxLength ({len(value)}) was refused",
            )
        else:
            findings.expect(
                sent.is_invalid_request_naming(name),
                sent,
                f"{name} one past its maxLength ({len(value)}) was not a 400 naming {name}",
            )
    assert {
        "endpoint_uri",
        "endpoint_input_uri",
        "endpoint_output_uri",
        "output_file_name",
    } <= checked, checked
    print(findings.report())
    findings.assert_none()


def test_forbidden_characters_are_refused_in_every_parameter(
    api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    operation = api_schema[ROUTE]["POST"]
    params = _parameters(api_schema)
    forbidden = st.from_regex(_forbidden_class(api_schema), fullmatch=True)
    # Outside the BMP the pattern cannot say it; the spec's description names these.
    forbidden = st.one_of(forbidden, st.sampled_from(["\U000e0001", "\U000f0000", "\ud800"]))
    findings = Findings()

    @hypothesis.settings(
        deadline=None,
        derandomize=True,
        database=None,
        max_examples=examples(FORBIDDEN_EXAMPLES),
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow],
        print_blob=False,
    )
    @given(name=st.sampled_from(sorted(params)), char=forbidden, where=st.floats(0, 1))
    def fuzz(name: str, char: str, where: float) -> None:
        base = _base_value(fuzz_env, name, params[name])
        at = round(where * len(base))
        value = base[:at] + char + base[at:]
        body = _valid_body(fuzz_env, **{name: value})
        data = json.dumps(body).encode()  # ensure_ascii: a lone surrogate travels as \\ud800
        sent = _post(fuzz_env, operation.Case(body=body), http, findings, data)
        if sent is not None:
            findings.expect(
                sent.is_invalid_request_naming(name),
                sent,
                f"U+{ord(char):04X} in {name} was not a 400 naming {name}",
            )

    for char, name in (
        ("\u202e", "endpoint_input_uri"),
        ("\u200b", "endpoint_uri"),
        ("\t", "output_file_name"),
        ("\x00", "deployment_name"),
        ("\u2028", "poll_interval"),
        ("\u2066", "endpoint_output_uri"),
    ):
        fuzz = hypothesis.example(name=name, char=char, where=1.0)(fuzz)
    fuzz()

    print(findings.report())
    findings.assert_none()


def test_text_parameters_must_not_start_or_end_with_whitespace(
    api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    operation = api_schema[ROUTE]["POST"]
    findings = Findings()
    for name, prop in _parameters(api_schema).items():
        if _is_numeric(prop):
            continue  # numbers given as strings may carry spaces (the spec says so)
        base = _base_value(fuzz_env, name, prop)
        for value in (f" {base}", f"{base} ", f"{base}\u3000"):
            body = _valid_body(fuzz_env, **{name: value})
            sent = _post(
                fuzz_env, operation.Case(body=body), http, findings, json.dumps(body).encode()
            )
            if sent is not None:
                findings.expect(
                    sent.is_invalid_request_naming(name),
                    sent,
                    f"{name} with surrounding whitespace was not a 400 naming it",
                )
    print(findings.report())
    findings.assert_none()


def test_body_size_limit(
    api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    operation = api_schema[ROUTE]["POST"]
    limit = _request_body_limit(api_schema, "x-max-body-bytes")
    findings = Findings()
    small = json.dumps(_valid_body(fuzz_env)).encode()
    for size in (limit, limit + 1, 16 * limit):
        # JSON whitespace: the body stays a valid request of exactly ``size`` bytes.
        data = small[:-1] + b" " * (size - len(small)) + b"}"
        assert len(data) == size
        sent = _post(
            fuzz_env,
            operation.Case(body=_valid_body(fuzz_env)),
            http,
            findings,
            data,
            f"<valid run parameters padded with spaces to {size} bytes>",
        )
        if sent is None:
            continue
        if size <= limit:
            findings.expect(sent.status == 202, sent, f"a valid {size}-byte body was refused")
        else:
            findings.expect(
                sent.status == 413
                and sent.error_code == "PayloadTooLarge"
                and "body" in sent.error_fields,
                sent,
                f"a {size}-byte body was not a 413 PayloadTooLarge naming body",
            )
    print(findings.report())
    findings.assert_none()


def test_deep_nesting_and_non_json_bodies_are_400_naming_body(
    api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    operation = api_schema[ROUTE]["POST"]
    limit = _request_body_limit(api_schema, "x-max-json-depth")
    findings = Findings()
    inner = json.dumps(_valid_body(fuzz_env)).encode()[:-1] + b', "poll_interval": '

    def nested_in_parameter(depth: int) -> bytes:
        """A body ``depth`` levels deep (the object is level 1) in an otherwise valid request."""
        return inner + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"

    # At the limit the body is parsed: the array is then a bad poll_interval, not a bad body.
    at_limit = _post(
        fuzz_env,
        operation.Case(body={}),
        http,
        findings,
        nested_in_parameter(limit),
        f"<a body {limit} levels deep>",
    )
    if at_limit is not None:
        findings.expect(
            at_limit.is_invalid_request_naming("poll_interval")
            and "body" not in at_limit.error_fields,
            at_limit,
            f"a body exactly {limit} levels deep was refused as too deep",
        )
    bodies: list[tuple[bytes, str]] = [
        (nested_in_parameter(limit + 1), f"<a body {limit + 1} levels deep>")
    ]
    for depth in DEPTHS:
        nested = b"[" * depth + b"]" * depth
        bodies.append((nested_in_parameter(depth), f"<a body {depth} levels deep>"))
        bodies.append((nested, f"<an array nested {depth} deep>"))
    bodies += [(data, "") for data in NOT_JSON]
    for data, shown in bodies:
        sent = _post(
            fuzz_env,
            operation.Case(body=data.decode("utf-8", "replace")),
            http,
            findings,
            data,
            shown or None,
        )
        if sent is not None:
            findings.expect(
                sent.is_invalid_request_naming("body"),
                sent,
                "not a 400 InvalidRunRequest naming body",
            )
    print(findings.report())
    findings.assert_none()


def test_unknown_parameters_are_400_naming_them(
    api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    operation = api_schema[ROUTE]["POST"]
    known = set(_parameters(api_schema))
    findings = Findings()
    # The ADF service-principal parameters, a case variant and a near miss.
    for name in (
        "tenant_id",
        "client_secret",
        "Endpoint_Input_Uri",
        "pollinterval",
        "endpoint_input_uri ",
    ):
        assert name not in known
        body = _valid_body(fuzz_env, **{name: "x"})
        sent = _post(fuzz_env, operation.Case(body=body), http, findings, json.dumps(body).encode())
        if sent is not None:
            findings.expect(
                sent.is_invalid_request_naming(name),
                sent,
                f"unknown parameter {name!r} was not a 400 naming it",
            )
    print(findings.report())
    findings.assert_none()
