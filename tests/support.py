"""Shared test support: free ports, managed child processes, readiness waits, Azurite.

Every integration and end-to-end test talks to real local servers. The process handling is the
offline stack's own (``scripts/devstack.py``, also used by ``make demo``): children start in
their own process groups, readiness is a successful probe (never a fixed sleep), and they are
always stopped, even when a test fails.
"""

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scripts.devstack import (
    DEV_ACCOUNT,
    DEV_ACCOUNT_KEY,
    PYTHON,
    REPO_ROOT,
    ManagedProcess,
    azurite_command,
    connection_string,
    free_port,
    http_ready,
    start_azurite,
    wait_until,
)

__all__ = [
    "DEV_ACCOUNT",
    "DEV_ACCOUNT_KEY",
    "PYTHON",
    "REPO_ROOT",
    "Azurite",
    "ManagedProcess",
    "azurite_command",
    "free_port",
    "http_ready",
    "run_azurite",
    "wait_until",
]


@dataclass(frozen=True)
class Azurite:
    """A running Azurite: blob service on ``port``, queue service on ``queue_port``."""

    port: int
    location: Path
    queue_port: int | None = None

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{DEV_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return connection_string(self.port, self.queue_port)


@contextlib.contextmanager
def run_azurite(port: int | None = None) -> Iterator[Azurite]:
    """Start a throw-away Azurite (blob and queue services) on free ports; stop and delete it
    afterwards."""
    port = port or free_port()
    queue_port = free_port()
    location = Path(tempfile.mkdtemp(prefix="azurite-"))
    proc = start_azurite(port=port, queue_port=queue_port, location=location, log_dir=location)
    try:
        yield Azurite(port=port, location=location, queue_port=queue_port)
    finally:
        proc.stop()
        shutil.rmtree(location, ignore_errors=True)
