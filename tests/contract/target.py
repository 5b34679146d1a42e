"""The thing a contract case runs against: the emulator (either profile) or a real endpoint.

A :class:`Target` knows the scoring URI, the workspace ARM id, the ARM host and how to get a
data-plane and an ARM token. It talks plain ``requests`` (not the app's client): the cases
check the *service*, so that the app's assumptions can be read off them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

FINAL = ("Completed", "Failed", "Canceled")
ARM_API_VERSION = "2024-04-01"  # Jobs_List / Jobs_Get / Jobs_Cancel, stable/2024-04-01/mfe.json


@dataclass
class Target:
    """One service under test.

    Attributes:
        name: ``emulator-documented``, ``emulator-lenient`` or ``live``.
        scoring_uri: The batch endpoint's scoring URI (``.../jobs``).
        workspace_id: The workspace ARM id (``/subscriptions/.../workspaces/<ws>``).
        arm_base: ``https://management.azure.com`` (the emulator serves ARM itself).
        data_token: Returns a token for ``https://ml.azure.com``.
        arm_token: Returns a token for ``https://management.azure.com``.
        input_uri: A folder of heart CSVs the endpoint can score.
        output_prefix: ``azureml://datastores/<ds>/paths/<prefix>``; every job writes below it.
        profile: ``documented`` / ``lenient`` for the emulator, ``None`` for the real service.
        admin_url: The emulator's ``/admin`` base (fault injection); ``None`` for the service.
        timeout: Seconds to wait for a job to reach a final status.
        poll: Seconds between polls.
    """

    name: str
    scoring_uri: str
    workspace_id: str
    arm_base: str
    data_token: Callable[[], str]
    arm_token: Callable[[], str]
    input_uri: str
    output_prefix: str
    session: requests.Session
    profile: str | None = None
    admin_url: str | None = None
    deployment: str | None = None
    timeout: float = 60.0
    poll: float = 0.1
    created: list[str] = field(default_factory=list)

    # --- data plane ------------------------------------------------------------------------

    def headers(self, token: str | None = None, **extra: str) -> dict[str, str]:
        out = {"Authorization": f"Bearer {token if token is not None else self.data_token()}"}
        if self.deployment:
            out["azureml-model-deployment"] = self.deployment
        out.update(extra)
        return out

    def body(
        self,
        *,
        input_uri: str | None = None,
        tags: dict[str, str] | None = None,
        properties: dict[str, str] | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """An invoke body writing to a fresh output file.

        Inputs/outputs in the docs' PascalCase (the ADF body); ``tags``, ``properties`` and
        ``name`` in the swagger's own casing (``#/definitions/BatchJob`` of mfe.json
        2020-09-01-dataplanepreview), the form most likely to be read by the service.
        """
        out = f"{self.output_prefix}/{uuid.uuid4().hex}/predictions.csv"
        props: dict[str, Any] = {
            "InputData": {
                "heart_data": {"JobInputType": "UriFolder", "Uri": input_uri or self.input_uri}
            },
            "OutputData": {"score": {"JobOutputType": "UriFile", "Uri": out}},
        }
        if tags is not None:
            props["tags"] = tags
        if properties is not None:
            props["properties"] = properties
        if name is not None:
            props["name"] = name
        return {"properties": props}

    def invoke(
        self, payload: dict[str, Any], *, token: str | None = None, **headers: str
    ) -> requests.Response:
        response = self.session.post(
            self.scoring_uri, json=payload, headers=self.headers(token, **headers), timeout=60
        )
        if response.status_code in (200, 201):
            self.created.append(str(response.json()["name"]))
        return response

    def get(self, name: str, *, token: str | None = None) -> requests.Response:
        return self.session.get(
            f"{self.scoring_uri.rstrip('/')}/{name}", headers=self.headers(token), timeout=60
        )

    def job(self, name: str) -> dict[str, Any]:
        response = self.get(name)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def wait_final(self, name: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            job = self.job(name)
            if job["properties"]["status"] in FINAL:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {name} still {job['properties']['status']}")
            time.sleep(self.poll)

    # --- ARM --------------------------------------------------------------------------------

    def arm_job_url(self, name: str) -> str:
        return f"{self.arm_base}{self.workspace_id}/jobs/{name}"

    def arm_headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token if token is not None else self.arm_token()}"}

    def arm_get(self, name: str, *, token: str | None = None) -> requests.Response:
        return self.session.get(
            self.arm_job_url(name),
            params={"api-version": ARM_API_VERSION},
            headers=self.arm_headers(token),
            timeout=60,
        )

    def cancel(self, name: str) -> requests.Response:
        return self.session.post(
            f"{self.arm_job_url(name)}/cancel",
            params={"api-version": ARM_API_VERSION},
            headers=self.arm_headers(),
            timeout=60,
        )

    def list_jobs(self, **filters: str) -> list[dict[str, Any]]:
        """``Jobs_List`` with filters, following ``nextLink`` to the end."""
        response = self.session.get(
            f"{self.arm_base}{self.workspace_id}/jobs",
            params={"api-version": ARM_API_VERSION, **filters},
            headers=self.arm_headers(),
            timeout=60,
        )
        items: list[dict[str, Any]] = []
        for _ in range(1000):
            assert response.status_code == 200, response.text
            page = response.json()
            items += page.get("value") or []
            if not page.get("nextLink"):
                return items
            response = self.session.get(page["nextLink"], headers=self.arm_headers(), timeout=60)
        raise AssertionError("Jobs_List: more than 1000 pages")

    def find_by_tag(self, key: str, expected: int) -> list[dict[str, Any]]:
        """List by tag key until ``expected`` jobs show (the service may index with a delay)."""
        deadline = time.monotonic() + min(self.timeout, 120.0)
        while True:
            found = self.list_jobs(tag=key)
            if len(found) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(max(self.poll, 1.0))

    # --- emulator-only hooks ------------------------------------------------------------

    @property
    def can_inject_faults(self) -> bool:
        return self.admin_url is not None

    def arm_fault(self, fault: dict[str, Any]) -> None:
        assert self.admin_url is not None, "fault injection needs the emulator"
        response = self.session.post(f"{self.admin_url}/faults", json=fault, timeout=30)
        assert response.status_code == 200, response.text

    def hold_next_job_running(self) -> None:
        """Emulator: the next job stays Running until canceled. A real job runs for minutes."""
        if self.admin_url is not None:
            self.arm_fault({"kind": "job", "script": [["Running", 3600]]})

    def cleanup(self) -> None:
        """Cancel whatever the cases left running (best effort: a real job costs money)."""
        for name in self.created:
            try:
                status = self.job(name)["properties"]["status"]
                if status not in FINAL:
                    self.cancel(name)
            except (AssertionError, requests.RequestException):
                continue
        self.created.clear()
        if self.admin_url is not None:
            self.session.delete(f"{self.admin_url}/faults", timeout=30)
