"""Property-based fuzzing of every operation in docs/openapi.yaml, through devhost.

For each operation, schemathesis draws requests from the spec: schema-valid ones and
schema-violating ones (bodies, path ids, the ``Idempotency-Key`` header, stray query
parameters), plus the spec's own request examples. Path ids also come from two strategies of
ours: ids of runs that exist (so 200, 202 and 409 answers are checked too) and ids that reach
the route but break the ``RunId`` rule (sent percent-encoded, so the app sees them unchanged;
clients would drop a literal ``.`` or ``..`` segment). Each request carries the function key in
the header or the query, or a missing or wrong key.

Every response must pass the checks in :mod:`tests.fuzz.contract` (no 5xx, a documented status,
a conforming JSON body and headers, spec-violating input rejected, 401 without the right key),
and a bad id must be a 400 naming ``instance_id``.

Bounded and reproducible: ``EXAMPLES`` per operation, ``derandomize=True`` (the same requests
on every run), no example database, no shrinking (violations are collected, not raised).
Schema-valid bodies start real runs: at most ``EXAMPLES["POST /api/runs"]`` of them.
"""

import re
from typing import Any

import hypothesis
import pytest
import requests
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.fuzz.conftest import TINY_INPUT, FuzzEnv
from tests.fuzz.contract import (
    AUTH_MODES,
    AUTHENTICATED,
    Findings,
    encode_path_value,
    examples,
    send_case,
    send_raw,
)

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]

#: Examples per operation.
EXAMPLES = {
    "POST /api/runs": 160,
    "GET /api/runs/{instance_id}": 80,
    "POST /api/runs/{instance_id}/cancel": 80,
}

FUZZ_SETTINGS = hypothesis.settings(
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
    print_blob=False,
)

#: Ids that reach the route (non-empty, no '/') but are not run ids; more are generated.
BAD_ID_SEEDS = (
    ".",
    "..",
    "...",
    "a" * 257,
    " run",
    "run ",
    "run id",
    "run?x=1",
    "run#x",
    "run%2F",
    "\x00",
    "run\u202e",
    "run\u200b",
    "ünïcode",
    "run\\x",
)


def _example_bodies(api_schema: OpenApiSchema) -> list[dict[str, Any]]:
    content = api_schema.raw_schema["paths"]["/api/runs"]["post"]["requestBody"]["content"]
    return [dict(e["value"]) for e in content["application/json"]["examples"].values()]


def _run_id_rule(api_schema: OpenApiSchema) -> re.Pattern[str]:
    return re.compile(api_schema.raw_schema["components"]["schemas"]["RunId"]["pattern"])


def _start_runs(env: FuzzEnv, bodies: list[dict[str, Any]]) -> list[str]:
    ids = []
    for body in bodies:
        resp = env.post_run(body)
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["id"])
    return ids


def _bad_ids(rule: re.Pattern[str]) -> st.SearchStrategy[str]:
    reaching = st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="/"), min_size=1, max_size=300
    )
    return st.one_of(st.sampled_from(BAD_ID_SEEDS), reaching).filter(
        lambda s: not rule.fullmatch(s)
    )


def test_start_run_follows_the_spec(
    api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    operation = api_schema["/api/runs"]["POST"]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    findings = Findings()

    @hypothesis.settings(FUZZ_SETTINGS, max_examples=examples(EXAMPLES["POST /api/runs"]))
    @given(case=cases, auth=st.sampled_from(AUTH_MODES))
    def fuzz(case: Case, auth: str) -> None:
        send_case(case, fuzz_env.stack, http, findings, auth=auth)

    for body in _example_bodies(api_schema):  # the spec's own examples, once each
        fuzz = hypothesis.example(
            case=operation.Case(body=body, media_type="application/json"), auth="header"
        )(fuzz)
    fuzz()

    print(findings.report())
    findings.assert_none()


@pytest.mark.parametrize(
    "label", ["GET /api/runs/{instance_id}", "POST /api/runs/{instance_id}/cancel"]
)
def test_run_routes_follow_the_spec(
    label: str, api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    method, path = label.split(" ", 1)
    operation = api_schema[path][method]
    rule = _run_id_rule(api_schema)
    # Runs that exist: the spec's examples (active) and one that failed at once (409 to cancel).
    known = _start_runs(
        fuzz_env,
        [
            *_example_bodies(api_schema),
            {"endpoint_input_uri": TINY_INPUT, "deployment_name": "no-such-deployment"},
        ],
    )
    if method == "GET":
        known.append(fuzz_env.completing_run)  # never cancelled: the lifecycle test reads it
    generated = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    ids = st.one_of(
        st.none(),
        st.tuples(st.just("known"), st.sampled_from(known)),
        st.tuples(st.just("bad"), _bad_ids(rule)),
    )
    findings = Findings()

    @hypothesis.settings(FUZZ_SETTINGS, max_examples=examples(EXAMPLES[label]))
    @given(case=generated, chosen=ids, auth=st.sampled_from(AUTH_MODES))
    def fuzz(case: Case, chosen: tuple[str, str] | None, auth: str) -> None:
        if chosen is None:
            send_case(case, fuzz_env.stack, http, findings, auth=auth)
            return
        kind, run_id = chosen
        url = path.replace("{instance_id}", encode_path_value(run_id))
        sent = send_raw(
            operation.Case(path_parameters={"instance_id": run_id}),
            fuzz_env.stack,
            http,
            findings,
            path=url,
            auth=auth,
        )
        if sent is None or auth not in AUTHENTICATED:
            return
        if kind == "known":
            ok = sent.status == 200 if method == "GET" else sent.status in (202, 409)
            findings.expect(ok, sent, "an existing run was not found or not answered as such")
        else:
            findings.expect(
                sent.is_invalid_request_naming("instance_id"),
                sent,
                "a malformed id was not a 400 naming instance_id",
            )

    for run_id in known:  # every existing run and every seed id, once each
        fuzz = hypothesis.example(case=operation.Case(), chosen=("known", run_id), auth="header")(
            fuzz
        )
    for run_id in BAD_ID_SEEDS:
        fuzz = hypothesis.example(case=operation.Case(), chosen=("bad", run_id), auth="header")(
            fuzz
        )
    fuzz()

    print(findings.report())
    findings.assert_none()
