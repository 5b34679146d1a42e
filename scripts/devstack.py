"""The offline stack as child processes: Azurite, the batch endpoint emulator and devhost.

Used by ``make demo``, the end-to-end tests and the benchmarks. Each part is started on a
configured or free port, waited on by a *readiness probe* (never a fixed sleep), and stopped
for sure: ``Stack`` is a context manager, and its processes run in their own process groups
so that a stop takes their children with them.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from azure.storage.blob import BlobServiceClient

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
#: The emulator's workspace (its default ARM identity).
EMULATOR_WORKSPACE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local-rg"
    "/providers/Microsoft.MachineLearningServices/workspaces/local-ws"
)
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
ENDPOINT_NAME = "heart-classifier"
#: The emulator's default datastore map: ``workspaceblobstore`` → this Azurite container.
DATASTORE_CONTAINER = "azureml-blobstore"
_DATASTORE_PREFIX = "azureml://datastores/workspaceblobstore/paths/"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pick_port(preferred: int | None) -> int:
    """The preferred port when it is free, else a free one."""
    if preferred and port_is_free(preferred):
        return preferred
    return free_port()


def wait_until(
    probe: Callable[[], bool], *, timeout: float = 30.0, interval: float = 0.05, what: str = ""
) -> None:
    """Poll ``probe`` until it returns True; raise TimeoutError naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if probe():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what or probe!r}")
        time.sleep(interval)


def http_ready(url: str, *, ok: Callable[[int], bool] = lambda s: s < 500) -> Callable[[], bool]:
    """A readiness probe: the URL answers with a status that ``ok`` accepts."""

    def probe() -> bool:
        return ok(requests.get(url, timeout=1).status_code)

    return probe


class ManagedProcess:
    """A child process with its output in a log file, stopped for sure on ``stop()``."""

    def __init__(
        self,
        args: list[str],
        *,
        name: str,
        log_dir: Path | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.args = args
        self.name = name
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd or REPO_ROOT
        self.log_dir: Path = log_dir or Path(tempfile.mkdtemp(prefix=f"{name}-logs-"))
        self.log_path = self.log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.args,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, probe: Callable[[], bool], *, timeout: float = 60.0) -> None:
        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log_text()[-4000:]}")
            return probe()

        try:
            wait_until(ready, timeout=timeout, what=f"{self.name} to become ready")
        except TimeoutError as exc:
            tail = self.log_text()[-4000:]
            raise TimeoutError(f"{exc}\n--- {self.name} log ---\n{tail}") from exc

    def kill9(self) -> None:
        """SIGKILL the process group: a crash, not a shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.name == "azurite":  # Azurite ignores SIGTERM for ~10 s; its data is throw-away
            self.kill9()
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()


def azurite_command() -> list[str]:
    """Azurite (blob, queue and table services) from node_modules (installed by ``npm ci``)."""
    local = REPO_ROOT / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return [str(local)]
    found = shutil.which("azurite")
    if found:
        return [found]
    raise RuntimeError("Azurite is not installed: run `npm ci` (needs Node.js >= 18)")


def connection_string(blob_port: int, queue_port: int | None = None) -> str:
    """The development account's connection string (``QueueEndpoint`` when a queue port is
    known: queue output bindings, ``NOTIFY_QUEUE``)."""
    text = (
        f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{blob_port}/{DEV_ACCOUNT};"
    )
    if queue_port:
        text += f"QueueEndpoint=http://127.0.0.1:{queue_port}/{DEV_ACCOUNT};"
    return text


def start_azurite(
    *, port: int, location: Path, log_dir: Path, queue_port: int | None = None
) -> ManagedProcess:
    """Azurite's blob service on ``port`` and queue service on ``queue_port`` (a free port when
    None); the table service, unused, listens on some free port."""
    queue_port = queue_port or free_port()
    proc = ManagedProcess(
        [
            *azurite_command(),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            str(queue_port),
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            str(free_port()),
            "--location",
            str(location),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ],
        name="azurite",
        log_dir=log_dir,
    ).start()
    proc.wait_ready(http_ready(f"http://127.0.0.1:{port}/{DEV_ACCOUNT}", ok=lambda s: s > 0))
    proc.wait_ready(http_ready(f"http://127.0.0.1:{queue_port}/{DEV_ACCOUNT}", ok=lambda s: s > 0))
    return proc


def read_predictions(connection_string: str, output_uri: str) -> list[list[str]]:
    """The ``row,prediction,file_name`` lines a job wrote to ``output_uri`` (in Azurite)."""
    if not output_uri.startswith(_DATASTORE_PREFIX):
        raise ValueError(f"not a workspaceblobstore path: {output_uri}")
    service = BlobServiceClient.from_connection_string(connection_string)
    blob = service.get_blob_client(DATASTORE_CONTAINER, output_uri[len(_DATASTORE_PREFIX) :])
    data = blob.download_blob().readall()
    return [line.split(",") for line in data.decode().splitlines() if line.strip()]


@dataclass
class Stack:
    """Azurite + emulator + devhost for one app directory, in a private run directory.

    Args:
        run_dir: where state files, settings and logs go (created; reused across restarts).
        settings: extra app settings (override the stack's defaults).
        phase_seconds: emulator job phase duration.
        azurite_port / emulator_port / devhost_port: preferred ports (a free one if taken).
        azurite_queue_port: Azurite's queue service (preferred port; with ``external_azurite``,
            the one it listens on, or None: the connection string names no queue endpoint).
        external_azurite: use the Azurite already listening on ``azurite_port``.
        app_dir: the Functions app to serve (the repository root by default).
        contract: the emulator's profile: ``documented`` (every behaviour no public source
            confirms takes its least helpful form; docs/service-contract.md) or ``lenient``.
    """

    run_dir: Path
    settings: dict[str, str] = field(default_factory=dict)
    phase_seconds: float = 1.0
    contract: str = "documented"
    azurite_port: int | None = None
    azurite_queue_port: int | None = None
    emulator_port: int | None = None
    devhost_port: int | None = None
    app_dir: Path = REPO_ROOT
    external_azurite: bool = False
    devhost_args: list[str] = field(default_factory=list)
    function_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    azurite: ManagedProcess | None = None
    emulator: ManagedProcess | None = None
    devhost: ManagedProcess | None = None

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.external_azurite:
            self.azurite_port = pick_port(self.azurite_port)
            self.azurite_queue_port = pick_port(self.azurite_queue_port)
        elif not self.azurite_port:
            raise ValueError("external_azurite needs azurite_port")
        self.emulator_port = pick_port(self.emulator_port)
        self.devhost_port = pick_port(self.devhost_port)

    # -- addresses ---------------------------------------------------------------------------
    @property
    def connection_string(self) -> str:
        assert self.azurite_port
        return connection_string(self.azurite_port, self.azurite_queue_port)

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.emulator_port}"

    @property
    def endpoint_uri(self) -> str:
        return f"{self.emulator_url}/endpoints/{ENDPOINT_NAME}/jobs"

    @property
    def devhost_url(self) -> str:
        return f"http://127.0.0.1:{self.devhost_port}"

    def app_settings(self) -> dict[str, str]:
        values = {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "AzureWebJobsStorage": self.connection_string,
            "TASKHUB_NAME": "batchscoringlocal",
            "BATCH_ENDPOINT_URI": self.endpoint_uri,
            "BATCH_ENDPOINT_ALLOWED_HOSTS": f"127.0.0.1:{self.emulator_port}",
            "BATCH_ENDPOINT_AUTH": "none",
            "AML_ARM_ENDPOINT": self.emulator_url,
            "AML_WORKSPACE_ID": EMULATOR_WORKSPACE_ID,
            "POLL_INTERVAL_SECONDS": "2",
            "POLL_INTERVAL_MIN": "1",
            "POLL_INTERVAL_MAX": "3600",
            "RUN_TIMEOUT_SECONDS": "600",
            "SCORING_BLOB_PATH": "scoring-input/{name}",
            "SCORING_SCHEDULE": "0 0 2 * * *",
            "SCHEDULED_INPUT_URI": "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/",
            "SCHEDULED_INPUT_TYPE": "UriFolder",
        }
        values.update(self.settings)
        return values

    # -- lifecycle ---------------------------------------------------------------------------
    def start_azurite(self) -> None:
        assert self.azurite_port
        self.azurite = start_azurite(
            port=self.azurite_port,
            queue_port=self.azurite_queue_port,
            location=self.run_dir / "azurite",
            log_dir=self.run_dir,
        )

    def start_emulator(self) -> None:
        self.emulator = ManagedProcess(
            [
                PYTHON,
                "-m",
                "aml_emulator",
                "serve",
                "--port",
                str(self.emulator_port),
                "--state",
                str(self.run_dir / "emulator.sqlite"),
                "--storage-connection-string",
                self.connection_string,
                "--phase-seconds",
                str(self.phase_seconds),
                "--contract",
                self.contract,
            ],
            name="emulator",
            log_dir=self.run_dir,
        ).start()
        self.emulator.wait_ready(http_ready(f"{self.emulator_url}/healthz", ok=lambda s: s == 200))

    def start_devhost(self) -> None:
        settings_file = self.run_dir / "local.settings.json"
        settings_file.write_text(
            json.dumps({"IsEncrypted": False, "Values": self.app_settings()}, indent=2)
        )
        self.devhost = ManagedProcess(
            [
                PYTHON,
                "-m",
                "devhost",
                "start",
                "--app-dir",
                str(self.app_dir),
                "--port",
                str(self.devhost_port),
                "--state",
                str(self.run_dir / "devhost.sqlite"),
                "--settings",
                str(settings_file),
                *self.devhost_args,
            ],
            name="devhost",
            log_dir=self.run_dir,
            env={"DEVHOST_FUNCTION_KEY": self.function_key, "DEVHOST_BLOB_POLL_SECONDS": "1"},
        ).start()
        self.devhost.wait_ready(
            http_ready(f"{self.devhost_url}/admin/host/status", ok=lambda s: s == 200)
        )

    def start(self, *, devhost: bool = True) -> Stack:
        """Start the parts (with ``external_azurite``, Azurite already listens on its port)."""
        try:
            if not self.external_azurite:
                self.start_azurite()
            self.start_emulator()
            if devhost:
                self.start_devhost()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for proc in (self.devhost, self.emulator, self.azurite):
            if proc is not None:
                proc.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- conveniences ------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the app's HTTP API with the function key."""
        headers = {"x-functions-key": self.function_key, **kwargs.pop("headers", {})}
        return requests.request(
            method,
            f"{self.devhost_url}/api/{path.lstrip('/')}",
            headers=headers,
            timeout=kwargs.pop("timeout", 10),
            **kwargs,
        )

    def run_view(self, instance_id: str) -> dict[str, Any]:
        resp = self.api("GET", f"runs/{instance_id}")
        resp.raise_for_status()
        return dict(resp.json())

    def wait_run(self, instance_id: str, *, timeout: float = 60.0) -> dict[str, Any]:
        """Follow ``GET /api/runs/{id}`` until the run has ended; return its view."""
        view: dict[str, Any] = {}

        def ended() -> bool:
            view.update(self.run_view(instance_id))
            return view.get("runtime_status") in {"Completed", "Failed", "Terminated", "Canceled"}

        wait_until(ended, timeout=timeout, interval=0.2, what=f"run {instance_id} to end")
        return view

    def emulator_counters(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.emulator_url}/admin/counters", timeout=5).json())

    def list_instances(self, prefix: str = "") -> list[dict[str, Any]]:
        """Durable instances from devhost's management API (optionally by id prefix)."""
        params = {"code": self.function_key}
        if prefix:
            params["instanceIdPrefix"] = prefix
        resp = requests.get(
            f"{self.devhost_url}/runtime/webhooks/durabletask/instances", params=params, timeout=5
        )
        resp.raise_for_status()
        data = resp.json()
        return list(data if isinstance(data, list) else data.get("value", []))


@contextlib.contextmanager
def running_stack(run_dir: Path, **kwargs: Any) -> Iterator[Stack]:
    stack = Stack(run_dir=run_dir, **kwargs)
    with stack:
        yield stack
