"""Shared test support: free ports, managed child processes, readiness waits, Azurite.

Every integration and end-to-end test talks to real local servers. This module starts them
as child processes, waits on *readiness* (a successful probe), never on fixed sleeps, and
always stops them, even when a test fails.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.args = args
        self.name = name
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd or REPO_ROOT
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix=f"{name}-logs-"))
        self.log_path = self.log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "ManagedProcess":
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
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

    def wait_ready(self, probe: Callable[[], bool], *, timeout: float = 30.0) -> None:
        def ready() -> bool:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited early:\n{self.log_text()[-4000:]}")
            return probe()

        try:
            wait_until(ready, timeout=timeout, what=f"{self.name} to become ready")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n--- {self.name} log ---\n{self.log_text()[-4000:]}") from exc

    def kill9(self) -> None:
        """Kill the process group with SIGKILL (a crash, not a shutdown)."""
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


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service."""

    port: int
    location: Path

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{DEV_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_endpoint};"
        )


def azurite_command() -> list[str]:
    """The Azurite blob service from node_modules (installed by ``npm ci``)."""
    local = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return [str(local)]
    found = shutil.which("azurite-blob")
    if found:
        return [found]
    raise RuntimeError(
        "Azurite is not installed: run `npm ci` in the repository root (needs Node.js >= 18)"
    )


@contextlib.contextmanager
def run_azurite(port: int | None = None) -> Iterator[Azurite]:
    """Start a throw-away Azurite blob service on a free port; stop and delete it afterwards."""
    port = port or free_port()
    location = Path(tempfile.mkdtemp(prefix="azurite-"))
    proc = ManagedProcess(
        [
            *azurite_command(),
            "--blobHost", "127.0.0.1",
            "--blobPort", str(port),
            "--location", str(location),
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ],
        name="azurite",
        log_dir=location,
    ).start()
    try:
        # Any HTTP answer (Azurite says 400/403 to an anonymous GET) means it is listening.
        proc.wait_ready(http_ready(f"http://127.0.0.1:{port}/{DEV_ACCOUNT}", ok=lambda s: s > 0))
        yield Azurite(port=port, location=location)
    finally:
        proc.stop()
        shutil.rmtree(location, ignore_errors=True)
