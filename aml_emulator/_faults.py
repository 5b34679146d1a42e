"""Fault injection and request counters (in memory; config faults are re-armed on start).

``http_error``, ``slow`` and ``drop`` faults are consumed by the next matching requests (one of
each kind at most per request); ``job`` faults are consumed by the next jobs created on the
endpoint and become that job's stored phase script.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from typing import Any

from aml_emulator._config import FaultSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFaults:
    """What to do to one request: delay it, answer with an error, or drop the answer.

    ``drop`` is None (answer normally) or how many seconds to hold the connection, after the
    request took effect, before closing it without an answer.
    """

    delay: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    code: str | None = None
    message: str | None = None
    drop: float | None = None


class FaultRegistry:
    """Armed faults, consumed in the order they were added."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[FaultSpec] = []

    def add(self, fault: FaultSpec) -> None:
        """Arm a fault."""
        with self._lock:
            self._faults.append(fault)
        logger.info("fault armed: %s", fault.to_dict())

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        """The armed faults with their remaining counts."""
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def _take(self, index: int) -> FaultSpec:
        fault = self._faults[index]
        if fault.count <= 1:
            del self._faults[index]
        else:
            self._faults[index] = replace(fault, count=fault.count - 1)
        return fault

    def for_request(
        self, route: str, endpoint: str | None, job: str | None = None
    ) -> RequestFaults:
        """Consume the faults that apply to one request on ``route`` ("invoke", "get", ...)."""
        taken: dict[str, FaultSpec] = {}
        with self._lock:
            i = 0
            while i < len(self._faults):
                fault = self._faults[i]
                if (
                    fault.kind == "job"
                    or fault.kind in taken
                    or not _matches(fault, route, endpoint, job)
                ):
                    i += 1
                    continue
                remaining = fault.count
                taken[fault.kind] = self._take(i)
                if remaining > 1:
                    i += 1
        slow, error, drop = taken.get("slow"), taken.get("http_error"), taken.get("drop")
        return RequestFaults(
            delay=(slow.seconds or 0.0) if slow else 0.0,
            status=error.status if error else None,
            retry_after=error.retry_after if error else None,
            code=error.code if error else None,
            message=error.message if error else None,
            drop=(drop.seconds or 0.0) if drop else None,
        )

    def for_new_job(self, endpoint: str) -> FaultSpec | None:
        """Consume the first job fault for a job being created on ``endpoint``."""
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.kind == "job" and fault.endpoint in (None, endpoint):
                    return self._take(i)
        return None


def _matches(fault: FaultSpec, route: str, endpoint: str | None, job: str | None) -> bool:
    return (
        fault.route in (route, "any")
        and (fault.endpoint is None or fault.endpoint == endpoint)
        and (fault.job is None or fault.job == job)
    )


class Counters:
    """Requests per route template and per job, and jobs created."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: Counter[str] = Counter()
        self._jobs: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self._created = 0

    def count_route(self, key: str) -> None:
        """Count one request on ``"<METHOD> <route template>"``."""
        with self._lock:
            self._routes[key] += 1

    def count_job(self, name: str, action: str) -> None:
        """Count one ``get`` or ``cancel`` request about a job."""
        with self._lock:
            self._jobs[name][action] += 1

    def job_created(self) -> None:
        """Count one created job."""
        with self._lock:
            self._created += 1

    def reset(self) -> None:
        """Zero everything."""
        with self._lock:
            self._routes.clear()
            self._jobs.clear()
            self._created = 0

    def snapshot(self) -> dict[str, Any]:
        """The admin view: ``{"routes": {...}, "jobs": {...}, "jobs_created": n}``."""
        with self._lock:
            return {
                "routes": dict(self._routes),
                "jobs": {
                    name: {"get": c.get("get", 0), "cancel": c.get("cancel", 0)}
                    for name, c in self._jobs.items()
                },
                "jobs_created": self._created,
            }
