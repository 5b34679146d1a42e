"""Run ``python -m devhost start`` as a child process for tests."""

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import requests

from tests.support import PYTHON, REPO_ROOT, ManagedProcess, free_port, http_ready, wait_until

SAMPLE_APP = Path(__file__).resolve().parent / "sample_app"
KEY = "devhost-test-key"


class DevhostProcess:
    """A devhost child process on a free port with its own state, settings and events folder."""

    def __init__(
        self,
        *,
        workdir: Path | None = None,
        settings: dict[str, str] | None = None,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        app_dir: Path = SAMPLE_APP,
    ) -> None:
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="devhost-test-"))
        self.events = self.workdir / "events"
        self.events.mkdir(parents=True, exist_ok=True)
        self.settings_path = self.workdir / "local.settings.json"
        self.settings_path.write_text(json.dumps({"IsEncrypted": False, "Values": settings or {}}))
        self.state = self.workdir / "state.sqlite"
        self.port = free_port()
        self.app_dir = app_dir
        self.extra_args = args or []
        self.env = {
            "DEVHOST_FUNCTION_KEY": KEY,
            "SAMPLE_EVENTS_DIR": str(self.events),
            "PYTHONPATH": str(REPO_ROOT),
            **(env or {}),
        }
        self.proc: ManagedProcess | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def rpc_base_url(self) -> str:
        """The SDK's keyless RPC listener (``.../durabletask/``), as the start banner prints it."""
        match = re.search(r"Durable SDK RPC \(loopback only, no key\): (\S+)", self.log())
        assert match, self.log()
        return match.group(1)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        return [
            PYTHON,
            "-m",
            "devhost",
            "start",
            "--app-dir",
            str(self.app_dir),
            "--port",
            str(self.port),
            "--state",
            str(self.state),
            "--settings",
            str(self.settings_path),
            *self.extra_args,
        ]

    def start(self) -> "DevhostProcess":
        self.proc = ManagedProcess(
            self.command(), name="devhost", env=self.env, log_dir=self.workdir
        ).start()
        self.proc.wait_ready(http_ready(f"{self.base}/admin/host/status", ok=lambda s: s == 200))
        wait_until(lambda: "devhost ready on" in self.log(), timeout=10, what="ready line")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def kill9(self) -> None:
        if self.proc is not None:
            self.proc.kill9()

    def log(self) -> str:
        return self.proc.log_text() if self.proc else ""

    def events_lines(self, name: str) -> list[str]:
        path = self.events / name
        return path.read_text().splitlines() if path.exists() else []

    def mgmt(self, method: str, rest: str, **kwargs: Any) -> requests.Response:
        params = {"code": KEY, **kwargs.pop("params", {})}
        return requests.request(
            method,
            f"{self.base}/runtime/webhooks/durabletask/{rest}",
            params=params,
            timeout=10,
            **kwargs,
        )

    def wait_status(self, iid: str, statuses: set[str], timeout: float = 30) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def probe() -> bool:
            r = self.mgmt("GET", f"instances/{iid}")
            if r.status_code in (200, 202):
                found.update(r.json())
                return found.get("runtimeStatus") in statuses
            return False

        wait_until(probe, timeout=timeout, what=f"{iid} to reach {statuses}")
        return found

    def url_of(self, function: str) -> str:
        match = re.search(rf"\t{function}: \[[A-Z,]+\] (\S+)", self.log())
        assert match, self.log()
        return match.group(1)
