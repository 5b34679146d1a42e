"""Property-based fuzzing of the batch operations in docs/openapi.yaml, through devhost.

The same checks as every fuzzed operation (:mod:`tests.fuzz.contract`): no 5xx, a documented
status, a conforming body and headers, spec-violating input rejected (4xx), 401 without the
right key. Bounded and reproducible as in ``test_api_operations``. ``POST /api/batches`` is
fuzzed with spec-violating bodies only, plus the spec's examples: schema-valid bodies would
start batches of jobs; the batches a test needs are started explicitly.
"""

from typing import Any

import hypothesis
import pytest
import requests
from hypothesis import given
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
from tests.fuzz.test_api_operations import BAD_ID_SEEDS, FUZZ_SETTINGS, _bad_ids, _run_id_rule

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]

EXAMPLES = {
    "POST /api/batches": 80,
    "GET /api/batches/{instance_id}": 40,
    "POST /api/batches/{instance_id}/cancel": 40,
}
TINY_FILE = TINY_INPUT + "heart-unlabeled-3.csv"


def _start_batch(env: FuzzEnv, body: dict[str, Any]) -> str:
    resp = env.stack.api("POST", "batches", json=body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def test_start_batch_follows_the_spec(
    api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    operation = api_schema["/api/batches"]["POST"]
    findings = Findings()

    @hypothesis.settings(FUZZ_SETTINGS, max_examples=examples(EXAMPLES["POST /api/batches"]))
    @given(case=operation.as_strategy(GenerationMode.NEGATIVE), auth=st.sampled_from(AUTH_MODES))
    def fuzz(case: Case, auth: str) -> None:
        send_case(case, fuzz_env.stack, http, findings, auth=auth)

    fuzz = hypothesis.example(
        case=operation.Case(
            body={"inputs": [TINY_FILE], "max_parallel_jobs": 1, "poll_interval": 10},
            media_type="application/json",
        ),
        auth="header",
    )(fuzz)
    fuzz()

    print(findings.report())
    findings.assert_none()


@pytest.mark.parametrize(
    "label", ["GET /api/batches/{instance_id}", "POST /api/batches/{instance_id}/cancel"]
)
def test_batch_routes_follow_the_spec(
    label: str, api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    method, path = label.split(" ", 1)
    operation = api_schema[path][method]
    rule = _run_id_rule(api_schema)
    known = [
        _start_batch(fuzz_env, {"inputs": [TINY_FILE] * 2, "poll_interval": 3600}),
        _start_batch(fuzz_env, {"inputs": [TINY_FILE], "deployment_name": "no-such"}),
        fuzz_env.completing_run,  # a run, not a batch: 404
    ]
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
        kind, batch_id = chosen
        url = path.replace("{instance_id}", encode_path_value(batch_id))
        sent = send_raw(
            operation.Case(path_parameters={"instance_id": batch_id}),
            fuzz_env.stack,
            http,
            findings,
            path=url,
            auth=auth,
        )
        if sent is None or auth not in AUTHENTICATED:
            return
        if kind == "known":
            expected = {200, 404} if method == "GET" else {202, 404, 409}
            findings.expect(sent.status in expected, sent, "a known id was not answered as such")
        else:
            findings.expect(
                sent.is_invalid_request_naming("instance_id"),
                sent,
                "a malformed id was not a 400 naming instance_id",
            )

    for batch_id in known:
        fuzz = hypothesis.example(case=operation.Case(), chosen=("known", batch_id), auth="header")(
            fuzz
        )
    for batch_id in BAD_ID_SEEDS:
        fuzz = hypothesis.example(case=operation.Case(), chosen=("bad", batch_id), auth="header")(
            fuzz
        )
    fuzz()

    print(findings.report())
    findings.assert_none()
