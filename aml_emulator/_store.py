"""SQLite job store: every job and its state machine position survive a restart (even SIGKILL).

One connection guarded by a lock (requests and the worker use it from several threads).
Updates are optimistic: :meth:`JobStore.update` only writes when the stored ``version`` still
matches, so a cancel that lands while the worker is scoring is never overwritten.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from aml_emulator._jobs import JobRecord, JobSpec

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    endpoint TEXT NOT NULL,
    deployment TEXT NOT NULL,
    spec TEXT NOT NULL,
    request_id TEXT,
    created_at REAL NOT NULL,
    status TEXT NOT NULL,
    terminal INTEGER NOT NULL,
    phase_index INTEGER NOT NULL,
    phase_started_at REAL NOT NULL,
    script TEXT NOT NULL,
    outcome TEXT NOT NULL,
    outcome_message TEXT,
    prepared INTEGER NOT NULL,
    error_message TEXT,
    start_time REAL,
    end_time REAL,
    rows_scored INTEGER NOT NULL,
    files_scored INTEGER NOT NULL,
    version INTEGER NOT NULL,
    due_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (terminal, due_at);
CREATE INDEX IF NOT EXISTS jobs_request ON jobs (endpoint, request_id);
"""
_COLUMNS = (
    "name",
    "endpoint",
    "deployment",
    "spec",
    "request_id",
    "created_at",
    "status",
    "terminal",
    "phase_index",
    "phase_started_at",
    "script",
    "outcome",
    "outcome_message",
    "prepared",
    "error_message",
    "start_time",
    "end_time",
    "rows_scored",
    "files_scored",
    "version",
    "due_at",
)


class JobExistsError(Exception):
    """A job with this name already exists."""


def _to_row(job: JobRecord) -> tuple[Any, ...]:
    return (
        job.name,
        job.endpoint,
        job.deployment,
        json.dumps(job.spec.to_dict()),
        job.request_id,
        job.created_at,
        job.status,
        int(job.terminal),
        job.phase_index,
        job.phase_started_at,
        json.dumps([list(p) for p in job.script]),
        job.outcome,
        job.outcome_message,
        int(job.prepared),
        job.error_message,
        job.start_time,
        job.end_time,
        job.rows_scored,
        job.files_scored,
        job.version,
        _due_at(job),
    )


def _due_at(job: JobRecord) -> float | None:
    """When the current phase ends (None once final): lets the worker query only due jobs."""
    if job.terminal or not job.script:
        return None
    index = min(job.phase_index, len(job.script) - 1)
    return job.phase_started_at + job.script[index][1]


def _from_row(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        name=row["name"],
        endpoint=row["endpoint"],
        deployment=row["deployment"],
        spec=JobSpec.from_dict(json.loads(row["spec"])),
        request_id=row["request_id"],
        created_at=row["created_at"],
        status=row["status"],
        phase_index=row["phase_index"],
        phase_started_at=row["phase_started_at"],
        script=tuple((str(s), float(d)) for s, d in json.loads(row["script"])),
        outcome=row["outcome"],
        outcome_message=row["outcome_message"],
        prepared=bool(row["prepared"]),
        error_message=row["error_message"],
        start_time=row["start_time"],
        end_time=row["end_time"],
        rows_scored=row["rows_scored"],
        files_scored=row["files_scored"],
        version=row["version"],
    )


class JobStore:
    """Thread-safe persistent job table."""

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # isolation_level=None: autocommit, so each statement is durable on its own.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            self._active = self._peak = self._count_active()

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def get(self, name: str) -> JobRecord | None:
        """Return the job or ``None``."""
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE name = ?", (name,)).fetchone()
        return None if row is None else _from_row(row)

    def find_by_request_id(self, endpoint: str, request_id: str) -> JobRecord | None:
        """The job an earlier POST with this ``repeatability_request-id`` created, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE endpoint = ? AND request_id = ?", (endpoint, request_id)
            ).fetchone()
        return None if row is None else _from_row(row)

    def insert(self, job: JobRecord) -> None:
        """Insert a new job.

        Raises:
            JobExistsError: the name is taken.
        """
        placeholders = ", ".join("?" for _ in _COLUMNS)
        with self._lock:
            try:
                self._db.execute(
                    f"INSERT INTO jobs ({', '.join(_COLUMNS)}) VALUES ({placeholders})",
                    _to_row(job),
                )
            except sqlite3.IntegrityError:
                raise JobExistsError(job.name) from None
            self._track_active()

    def update(self, job: JobRecord) -> JobRecord | None:
        """Write ``job`` if nobody changed it since it was read; return the stored copy or None."""
        new = replace(job, version=job.version + 1)
        assignments = ", ".join(f"{c} = ?" for c in _COLUMNS)
        with self._lock:
            cursor = self._db.execute(
                f"UPDATE jobs SET {assignments} WHERE name = ? AND version = ?",
                (*_to_row(new), job.name, job.version),
            )
            self._track_active()
        return new if cursor.rowcount == 1 else None

    # --- concurrently active jobs (``GET /admin/stats``, ``GET /admin/active-jobs``) ----------

    def _count_active(self) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM jobs WHERE terminal = 0").fetchone()
        return int(row[0])

    def _track_active(self) -> None:
        """After a write, under the lock: every change of the count is seen (an exact peak)."""
        self._active = self._count_active()
        self._peak = max(self._peak, self._active)

    def active_stats(self) -> dict[str, int]:
        """``{"active_jobs": n, "peak_active_jobs": n}`` (non-final jobs; peak since start)."""
        with self._lock:
            return {"active_jobs": self._active, "peak_active_jobs": self._peak}

    def active_jobs(self) -> dict[str, int]:
        """The same two figures as ``{"active", "peak"}`` (the admission tests' shape)."""
        with self._lock:
            return {"active": self._active, "peak": self._peak}

    def reset_peak(self) -> None:
        """Start the peak again from the current number of active jobs (reset-counters)."""
        with self._lock:
            self._peak = self._active

    def list_due(self, now: float) -> list[str]:
        """Names of the non-final jobs whose current phase has ended by ``now``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name FROM jobs WHERE terminal = 0 AND due_at <= ? ORDER BY due_at", (now,)
            ).fetchall()
        return [str(r["name"]) for r in rows]

    def list_endpoint(
        self, endpoint: str, *, deployment: str | None, offset: int, limit: int
    ) -> list[JobRecord]:
        """Jobs of an endpoint (optionally one deployment), oldest first."""
        sql = "SELECT * FROM jobs WHERE endpoint = ?"
        args: list[Any] = [endpoint]
        if deployment is not None:
            sql += " AND deployment = ?"
            args.append(deployment)
        sql += " ORDER BY seq LIMIT ? OFFSET ?"
        args += [limit, offset]
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_from_row(r) for r in rows]

    def list_workspace(self, *, before_seq: int | None = None) -> list[tuple[int, JobRecord]]:
        """Every job of the workspace, newest first, with its sequence number.

        ``before_seq`` continues a listing: only jobs created before that one are returned.
        """
        sql = "SELECT * FROM jobs"
        args: list[Any] = []
        if before_seq is not None:
            sql += " WHERE seq < ?"
            args.append(before_seq)
        sql += " ORDER BY seq DESC"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [(int(r["seq"]), _from_row(r)) for r in rows]
