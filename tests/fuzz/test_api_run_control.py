"""Property-based fuzzing of the run-control operations in docs/openapi.yaml, through devhost:
``GET /api/runs`` (filters, ``top``, ``continuation``) and ``POST /api/runs/{id}/rerun``.

The same checks as every fuzzed operation (:mod:`tests.fuzz.contract`): no 5xx, a documented
status, a conforming body, spec-violating input rejected, 401 without the right key. Bounded
and reproducible as in ``test_api_operations``.
"""

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
from tests.fuzz.test_api_operations import FUZZ_SETTINGS

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]

LIST_EXAMPLES = 60
RERUN_EXAMPLES = 30


def test_list_runs_follows_the_spec(
    api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    operation = api_schema["/api/runs"]["GET"]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    findings = Findings()

    @hypothesis.settings(FUZZ_SETTINGS, max_examples=examples(LIST_EXAMPLES))
    @given(case=cases, auth=st.sampled_from(AUTH_MODES))
    def fuzz(case: Case, auth: str) -> None:
        sent = send_case(case, fuzz_env.stack, http, findings, auth=auth)
        if sent is not None and auth in AUTHENTICATED and sent.status == 400:
            findings.expect(bool(sent.error_fields), sent, "a 400 did not name the field")

    fuzz()

    print(findings.report())
    findings.assert_none()


def test_rerun_follows_the_spec(
    api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    operation = api_schema["/api/runs/{instance_id}/rerun"]["POST"]
    failed = fuzz_env.post_run(
        {"endpoint_input_uri": TINY_INPUT, "deployment_name": "no-such-deployment"}
    )
    assert failed.status_code == 202, failed.text
    known = [failed.json()["id"], fuzz_env.completing_run]
    generated = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )
    findings = Findings()

    @hypothesis.settings(FUZZ_SETTINGS, max_examples=examples(RERUN_EXAMPLES))
    @given(
        case=generated, chosen=st.none() | st.sampled_from(known), auth=st.sampled_from(AUTH_MODES)
    )
    def fuzz(case: Case, chosen: str | None, auth: str) -> None:
        if chosen is None:
            send_case(case, fuzz_env.stack, http, findings, auth=auth)
            return
        sent = send_raw(
            operation.Case(path_parameters={"instance_id": chosen}),
            fuzz_env.stack,
            http,
            findings,
            path=f"/api/runs/{encode_path_value(chosen)}/rerun",
            auth=auth,
        )
        if sent is not None and auth in AUTHENTICATED:
            findings.expect(sent.status in (202, 409), sent, "an existing run was not rerun")

    fuzz()

    print(findings.report())
    findings.assert_none()
