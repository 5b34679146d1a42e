"""Runs through their lives, every answer checked against docs/openapi.yaml.

The random tests mostly see runs that have just started; this module also reads and cancels
runs that completed, failed or were cancelled, and replays an ``Idempotency-Key``, so the
200 view with ``output``/``error``/``cancel_requested``, the 409 and the replay header are
checked against the spec too. It runs last: the run started with the fixture has completed by
now (its first poll is 10 s after the stack started).
"""

import json
import time
from typing import Any

import pytest
import requests
from schemathesis.specs.openapi.schemas import OpenApiSchema

from scripts.devstack import wait_until
from tests.fuzz.conftest import TINY_INPUT, FuzzEnv
from tests.fuzz.contract import Findings, Sent, encode_path_value, send_raw

pytestmark = [pytest.mark.e2e, pytest.mark.fuzz]

ENDED = {"Completed", "Failed", "Terminated", "Canceled"}


class Client:
    """The three operations, sent as given and checked against the spec."""

    def __init__(
        self, api_schema: OpenApiSchema, env: FuzzEnv, http: requests.Session, findings: Findings
    ) -> None:
        self.schema = api_schema
        self.env = env
        self.http = http
        self.findings = findings

    def start(self, body: dict[str, Any], **headers: str) -> Sent | None:
        operation = self.schema["/api/runs"]["POST"]
        return send_raw(
            operation.Case(body=body, headers=headers),
            self.env.stack,
            self.http,
            self.findings,
            path="/api/runs",
            data=json.dumps(body).encode(),
            headers=headers,
        )

    def get(self, run_id: str) -> Sent | None:
        operation = self.schema["/api/runs/{instance_id}"]["GET"]
        return send_raw(
            operation.Case(path_parameters={"instance_id": run_id}),
            self.env.stack,
            self.http,
            self.findings,
            path=f"/api/runs/{encode_path_value(run_id)}",
        )

    def cancel(self, run_id: str) -> Sent | None:
        operation = self.schema["/api/runs/{instance_id}/cancel"]["POST"]
        return send_raw(
            operation.Case(path_parameters={"instance_id": run_id}),
            self.env.stack,
            self.http,
            self.findings,
            path=f"/api/runs/{encode_path_value(run_id)}/cancel",
        )

    def wait_ended(self, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
        view: dict[str, Any] = {}

        def ended() -> bool:
            view.update(self.env.stack.run_view(run_id))
            return view.get("runtime_status") in ENDED

        wait_until(ended, timeout=timeout, interval=0.2, what=f"run {run_id} to end")
        return view


def _header(sent: Sent, name: str) -> str | None:
    values = sent.response.headers.get(name.lower())
    return values[0] if values else None


def test_idempotent_start_view_and_cancel(
    api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    findings = Findings()
    client = Client(api_schema, fuzz_env, http, findings)
    body = {"endpoint_input_uri": TINY_INPUT, "poll_interval": "600", "timeout": "86400"}

    first = client.start(body, **{"Idempotency-Key": "fuzz:lifecycle-1"})
    assert first is not None
    assert first.status == 202, first.request
    run_id = first.json()["id"]
    findings.expect(
        _header(first, "Idempotent-Replayed") is None,
        first,
        "a first start was marked Idempotent-Replayed",
    )
    again = client.start(body, **{"Idempotency-Key": "fuzz:lifecycle-1"})
    if again is not None:
        findings.expect(
            again.status == 202
            and again.json()["id"] == run_id
            and _header(again, "Idempotent-Replayed") == "true",
            again,
            "the same Idempotency-Key did not return the same run, marked replayed",
        )
    view = client.get(run_id)
    if view is not None:
        findings.expect(
            view.status == 200 and view.json()["id"] == run_id,
            view,
            "a started run could not be read",
        )
    cancelled = client.cancel(run_id)
    if cancelled is not None:
        findings.expect(cancelled.status == 202, cancelled, "an active run could not be cancelled")
    again_cancelled = client.cancel(run_id)
    if again_cancelled is not None:
        findings.expect(
            again_cancelled.status in (202, 409),
            again_cancelled,
            "a second cancel was neither accepted nor a conflict",
        )
    # The cancel is an event the orchestrator handles asynchronously: the view shows it once the
    # orchestrator has run (bounded wait, not a fixed sleep).
    after = client.get(run_id)
    deadline = time.monotonic() + 15
    while (
        after is not None
        and after.status == 200
        and after.json().get("cancel_requested") is not True
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
        after = client.get(run_id)
    if after is not None:
        findings.expect(
            after.status == 200 and after.json().get("cancel_requested") is True,
            after,
            "a cancelled run's view does not say cancel_requested",
        )

    print(findings.report())
    findings.assert_none()


def test_ended_runs_are_read_and_cannot_be_cancelled(
    api_schema: OpenApiSchema, fuzz_env: FuzzEnv, http: requests.Session
) -> None:
    findings = Findings()
    client = Client(api_schema, fuzz_env, http, findings)
    failing = client.start(
        {"endpoint_input_uri": TINY_INPUT, "deployment_name": "no-such-deployment"}
    )
    assert failing is not None
    assert failing.status == 202, failing.request

    for run_id, ending, part in (
        (fuzz_env.completing_run, "Completed", "output"),
        (failing.json()["id"], "Failed", "error"),
    ):
        assert client.wait_ended(run_id)["runtime_status"] == ending
        view = client.get(run_id)
        if view is not None:
            findings.expect(
                view.status == 200 and part in view.json(),
                view,
                f"a {ending} run's view has no {part}",
            )
        refused = client.cancel(run_id)
        if refused is not None:
            findings.expect(
                refused.status == 409 and refused.error_code == "RunNotActive",
                refused,
                f"cancelling a {ending} run was not a 409 RunNotActive",
            )

    print(findings.report())
    findings.assert_none()
