"""Helpers for the emulator tests: start the emulator subprocess, call it, seed blobs."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from azure.storage.blob import ContainerClient

from tests.support import PYTHON, ManagedProcess, free_port, http_ready, wait_until

CONTAINER = "azureml-blobstore"
TOKEN = "local-dev"
FINAL = ("Completed", "Failed", "Canceled")
SUB = "00000000-0000-0000-0000-000000000000"
WS_ID = (
    f"/subscriptions/{SUB}/resourceGroups/local-rg/providers/"
    "Microsoft.MachineLearningServices/workspaces/local-ws"
)
HEADER = "age,sex,cp,trestbps,chol,fbs,restecg,thalach,exang,oldpeak,slope,ca,thal"
ROW = "63,1,1,145,233,1,2,150,0,2.3,3,0,fixed"


def jwt(aud: str) -> str:
    """An unsigned JWT-shaped token with the given audience (the emulator reads, never verifies)."""

    def enc(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{enc({'alg': 'none', 'typ': 'JWT'})}.{enc({'aud': aud, 'sub': 'test'})}.sig"


def csv_text(rows: int, row: str = ROW) -> bytes:
    """A heart CSV with ``rows`` data rows."""
    return ("\n".join([HEADER, *([row] * rows)]) + "\n").encode()


def uid(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def body(
    input_uri: str,
    output_uri: str | None = None,
    *,
    input_type: str = "UriFolder",
    pascal: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """An invoke body in PascalCase (docs/ADF) or camelCase (azure-ai-ml)."""
    if pascal:
        props: dict[str, Any] = {
            "InputData": {"heart_data": {"JobInputType": input_type, "Uri": input_uri}}
        }
        if output_uri is not None:
            props["OutputData"] = {"score": {"JobOutputType": "UriFile", "Uri": output_uri}}
    else:
        props = {"inputData": {"heart_data": {"jobInputType": input_type, "uri": input_uri}}}
        if output_uri is not None:
            props["outputData"] = {"score": {"jobOutputType": "UriFile", "uri": output_uri}}
    props.update(overrides)
    return {"properties": props}


def ds(path: str) -> str:
    return f"azureml://datastores/workspaceblobstore/paths/{path}"


class EmulatorApi:
    """A tiny client for the emulator's routes (real HTTP)."""

    def __init__(self, base_url: str, session: requests.Session) -> None:
        self.base_url = base_url
        self.session = session

    def scoring_uri(self, endpoint: str = "heart-classifier") -> str:
        return f"{self.base_url}/endpoints/{endpoint}/jobs"

    def auth(self, token: str | None = TOKEN, **extra: str) -> dict[str, str]:
        headers = dict(extra)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def invoke(
        self,
        payload: Any,
        *,
        endpoint: str = "heart-classifier",
        token: str | None = TOKEN,
        **headers: str,
    ) -> requests.Response:
        return self.session.post(
            self.scoring_uri(endpoint),
            json=payload,
            headers=self.auth(token, **headers),
            timeout=30,
        )

    def submit(self, payload: Any, **kwargs: Any) -> dict[str, Any]:
        response = self.invoke(payload, **kwargs)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def get(
        self, name: str, *, endpoint: str = "heart-classifier", token: str | None = TOKEN
    ) -> requests.Response:
        return self.session.get(
            f"{self.scoring_uri(endpoint)}/{name}", headers=self.auth(token), timeout=30
        )

    def job(self, name: str, endpoint: str = "heart-classifier") -> dict[str, Any]:
        response = self.get(name, endpoint=endpoint)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def cancel(self, name: str, *, token: str | None = TOKEN) -> requests.Response:
        return self.session.post(
            f"{self.base_url}{WS_ID}/jobs/{name}/cancel?api-version=2023-02-01-preview",
            headers=self.auth(token),
            timeout=30,
        )

    def admin(self, method: str, path: str, payload: Any = None) -> requests.Response:
        return self.session.request(
            method, f"{self.base_url}/admin/{path}", json=payload, timeout=30
        )

    def wait_status(
        self,
        name: str,
        statuses: tuple[str, ...] = FINAL,
        *,
        endpoint: str = "heart-classifier",
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def probe() -> bool:
            seen.update(self.job(name, endpoint))
            return bool(seen["properties"]["status"] in statuses)

        wait_until(
            probe, timeout=timeout, interval=0.05, what=f"job {name} to reach {'/'.join(statuses)}"
        )
        return seen

    def statuses_until_final(self, name: str, timeout: float = 30.0) -> list[str]:
        """Poll fast and record every distinct status seen, in order."""
        seen: list[str] = []

        def probe() -> bool:
            status = self.job(name)["properties"]["status"]
            if not seen or seen[-1] != status:
                seen.append(status)
            return status in FINAL

        wait_until(probe, timeout=timeout, interval=0.01, what=f"job {name} to finish")
        return seen


LISTEN_RE = re.compile(r"aml_emulator listening on (http://127\.0\.0\.1:(\d+))")


def emulator_process(
    *,
    state: Path,
    connection_string: str,
    phase_seconds: float = 0.1,
    config: Path | None = None,
    port: int | None = None,
    log_dir: Path | None = None,
    contract: str | None = "lenient",
    env: dict[str, str] | None = None,
) -> ManagedProcess:
    """The emulator as a subprocess (not started).

    ``contract``: the ``--contract`` flag (these tests pin ``lenient`` unless they say
    otherwise); ``None`` passes no flag, so the config file or the default decides.
    """
    args = [
        PYTHON,
        "-m",
        "aml_emulator",
        "serve",
        "--port",
        str(free_port() if port is None else port),
        "--state",
        str(state),
        "--storage-connection-string",
        connection_string,
        "--phase-seconds",
        str(phase_seconds),
    ]
    if config is not None:
        args += ["--config", str(config)]
    if contract is not None:
        args += ["--contract", contract]
    return ManagedProcess(args, name="aml-emulator", log_dir=log_dir, env=env)


def listening_url(proc: ManagedProcess, *, already: int = 0) -> str:
    """Wait for a new 'listening' line (after ``already`` earlier ones); return its base URL."""
    found: list[str] = []

    def probe() -> bool:
        if not proc.alive():
            raise RuntimeError(f"emulator exited early:\n{proc.log_text()[-3000:]}")
        # The log is appended across restarts: the newest line is the current one.
        matches = LISTEN_RE.findall(proc.log_text())
        if len(matches) > already:
            found.append(matches[-1][0])
        return len(matches) > already

    wait_until(probe, timeout=30, what="the emulator's 'listening' line")
    return found[0]


@contextmanager
def running_emulator(**kwargs: Any) -> Iterator[tuple[ManagedProcess, str]]:
    """Start an emulator subprocess, wait for /healthz, stop it afterwards."""
    proc = emulator_process(**kwargs).start()
    try:
        url = listening_url(proc)
        proc.wait_ready(http_ready(f"{url}/healthz", ok=lambda s: s == 200))
        yield proc, url
    finally:
        proc.stop()


def put_blobs(container: ContainerClient, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        container.upload_blob(name, data, overwrite=True)


def read_lines(container: ContainerClient, name: str) -> list[str]:
    return container.download_blob(name).readall().decode().splitlines()
