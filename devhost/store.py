"""The engine's state: one SQLite file (WAL), every state transition one transaction.

Tables: ``instances`` (one row per orchestration instance, its current execution), ``history``
(the execution's events; ``is_new`` marks events no episode has played yet), ``work`` (scheduled
activities and timers) and ``kv`` (small values of the host: function key, trigger receipts).

``Store.transaction()`` yields a ``Tx`` inside ``BEGIN IMMEDIATE``; ``Store.read()`` yields one
for reads under the store's lock. Both hold the same re-entrant lock, which the engine also uses
for its own bookkeeping.
"""

import contextlib
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhost.errors import InstanceExistsError, InstanceGoneError, InstanceNotFoundError
from devhost.history import (
    ACTIVE_STATUSES,
    EVENT_RAISED,
    EXECUTION_COMPLETED,
    EXECUTION_FAILED,
    EXECUTION_STARTED,
    EXECUTION_TERMINATED,
    SUB_ORCH_COMPLETED,
    SUB_ORCH_FAILED,
    TERMINAL_STATUSES,
    Event,
    decode,
    format_status_time,
    new_event,
)

__all__ = ["InstanceRow", "Store", "Tx", "WorkRow"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER,
    next_id INTEGER NOT NULL DEFAULT 0,
    has_new INTEGER NOT NULL DEFAULT 0,
    meta TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS ix_instances_runnable ON instances (has_new, status);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    is_new INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
);
CREATE TABLE IF NOT EXISTS work (
    work_id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    due TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_work_kind_due ON work (kind, due);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRow:
    """One row of ``instances`` (JSON columns still serialized)."""

    instance_id: str
    name: str
    execution_id: str
    status: str
    input: str | None
    output: str | None
    custom_status: str | None
    created: str
    updated: str
    parent_instance_id: str | None
    parent_execution_id: str | None
    parent_task_id: int | None
    next_id: int
    has_new: bool
    meta: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "InstanceRow":
        """Build from a ``SELECT * FROM instances`` row."""
        return cls(
            instance_id=row["instance_id"],
            name=row["name"],
            execution_id=row["execution_id"],
            status=row["status"],
            input=row["input"],
            output=row["output"],
            custom_status=row["custom_status"],
            created=row["created"],
            updated=row["updated"],
            parent_instance_id=row["parent_instance_id"],
            parent_execution_id=row["parent_execution_id"],
            parent_task_id=row["parent_task_id"],
            next_id=int(row["next_id"]),
            has_new=bool(row["has_new"]),
            meta=row["meta"],
        )

    def to_status(self, *, show_input: bool) -> dict[str, Any]:
        """The extension's status JSON (management API ``GET instances/{id}``)."""
        output: Any = self.output
        if self.status != "Failed":
            output = decode(output)
        return {
            "name": self.name,
            "instanceId": self.instance_id,
            "runtimeStatus": self.status,
            "input": decode(self.input) if show_input else None,
            "customStatus": decode(self.custom_status),
            "output": output,
            "createdTime": format_status_time(self.created),
            "lastUpdatedTime": format_status_time(self.updated),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkRow:
    """One row of ``work``."""

    work_id: int
    instance_id: str
    execution_id: str
    kind: str
    task_id: int
    due: str
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> "WorkRow":
        """Build from a ``SELECT * FROM work`` row."""
        return cls(
            work_id=int(row["work_id"]),
            instance_id=row["instance_id"],
            execution_id=row["execution_id"],
            kind=row["kind"],
            task_id=int(row["task_id"]),
            due=row["due"],
            payload=json.loads(row["payload"]),
        )


class Store:
    """The SQLite state store.

    Args:
        path: SQLite file (created with its folder) or ``":memory:"``.
    """

    def __init__(self, path: Path | str) -> None:
        text = str(path)
        if text != ":memory:":
            Path(text).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(text, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if text != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self.lock = threading.RLock()
        self.closed = False

    def close(self) -> None:
        """Close the database (further use raises)."""
        with self.lock:
            self.closed = True
            self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator["Tx"]:
        """A write transaction (``BEGIN IMMEDIATE``; rolled back if the body raises).

        Raises:
            RuntimeError: the store is closed.
        """
        with self.lock:
            if self.closed:
                raise RuntimeError("engine is stopped")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator["Tx"]:
        """Reads under the store's lock (no transaction; a closed store raises on use)."""
        with self.lock:
            yield Tx(self._db)


class Tx:
    """Queries and state transitions on one connection (inside ``Store.transaction``)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for the tables of other devhost modules (``entities``)."""
        return self._db

    # ------------------------------------------------------------------ instances

    def instance(self, iid: str) -> InstanceRow | None:
        """The instance, or ``None``."""
        row = self._db.execute("SELECT * FROM instances WHERE instance_id = ?", (iid,)).fetchone()
        return None if row is None else InstanceRow.from_row(row)

    def require(self, iid: str) -> InstanceRow:
        """The instance.

        Raises:
            InstanceNotFoundError: unknown id.
        """
        row = self.instance(iid)
        if row is None:
            raise InstanceNotFoundError(f"No instance with ID '{iid}' found.")
        return row

    def require_active(self, iid: str) -> InstanceRow:
        """The instance, which must not have ended.

        Raises:
            InstanceNotFoundError: unknown id.
            InstanceGoneError: the instance has ended.
        """
        row = self.require(iid)
        if row.status in TERMINAL_STATUSES:
            raise InstanceGoneError(f"instance {iid} is {row.status}")
        return row

    def still_current(self, work: "WorkRow") -> bool:
        """Whether the work's execution is still the instance's current one and not terminal."""
        row = self.instance(work.instance_id)
        return (
            row is not None
            and row.execution_id == work.execution_id
            and row.status not in TERMINAL_STATUSES
        )

    def instances(self) -> list[InstanceRow]:
        """Every instance, oldest first."""
        rows = self._db.execute("SELECT * FROM instances ORDER BY created, instance_id")
        return [InstanceRow.from_row(r) for r in rows.fetchall()]

    def runnable(self) -> list[str]:
        """Ids of Pending/Running instances with events to play."""
        rows = self._db.execute(
            "SELECT instance_id FROM instances WHERE has_new = 1 "
            "AND status IN ('Pending', 'Running')"
        )
        return [r[0] for r in rows]

    def set_has_new(self, iid: str, has_new: bool) -> None:
        """Mark whether the instance has events to play."""
        self._db.execute(
            "UPDATE instances SET has_new = ? WHERE instance_id = ?", (int(has_new), iid)
        )

    def set_status(self, iid: str, status: str, meta: dict[str, Any], now_s: str) -> None:
        """Set status and meta (suspend, resume)."""
        self._db.execute(
            "UPDATE instances SET status = ?, meta = ?, updated = ? WHERE instance_id = ?",
            (status, json.dumps(meta), now_s, iid),
        )

    def save_episode(
        self,
        iid: str,
        *,
        next_id: int,
        meta: dict[str, Any],
        status: str,
        custom_status: Any,
        now_s: str,
    ) -> None:
        """Record an episode's bookkeeping (``custom_status`` None clears it, as in Azure)."""
        self._db.execute(
            "UPDATE instances SET next_id = ?, meta = ?, has_new = ?, status = ?, "
            "custom_status = ?, updated = ? WHERE instance_id = ?",
            (
                next_id,
                json.dumps(meta),
                1 if self.has_pending(iid) else 0,
                status,
                None if custom_status is None else json.dumps(custom_status),
                now_s,
                iid,
            ),
        )

    def create_instance(
        self,
        name: str,
        iid: str,
        input_json: str | None,
        parent: tuple[str, str, int] | None,
        *,
        now_s: str,
        replace_running: bool,
    ) -> None:
        """Create (or replace) an instance and queue its ``ExecutionStarted``.

        Args:
            parent: (instance id, execution id, task id) of a parent orchestration.
            replace_running: also replace an active instance.

        Raises:
            InstanceExistsError: the id is active and ``replace_running`` is False.
        """
        row = self.instance(iid)
        if row is not None and row.status in ACTIVE_STATUSES and not replace_running:
            raise InstanceExistsError(
                f"An Orchestration instance with the status {row.status} already exists."
            )
        if row is not None:
            self.delete_instance(iid)
        execution_id = uuid.uuid4().hex
        self._db.execute(
            "INSERT INTO instances (instance_id, name, execution_id, status, input, created, "
            "updated, parent_instance_id, parent_execution_id, parent_task_id) "
            "VALUES (?, ?, ?, 'Pending', ?, ?, ?, ?, ?, ?)",
            (iid, name, execution_id, input_json, now_s, now_s, *(parent or (None,) * 3)),
        )
        started = new_event(
            EXECUTION_STARTED,
            now_s,
            Name=name,
            Input=input_json,
            Version="",
            OrchestrationInstance={"InstanceId": iid, "ExecutionId": execution_id},
            ParentInstance=(
                {"OrchestrationInstance": {"InstanceId": parent[0]}, "TaskScheduleId": parent[2]}
                if parent
                else None
            ),
        )
        self.append_new(iid, [started], now_s)

    def delete_instance(self, iid: str) -> None:
        """Delete the instance with its history and work."""
        self._db.execute("DELETE FROM history WHERE instance_id = ?", (iid,))
        self._db.execute("DELETE FROM work WHERE instance_id = ?", (iid,))
        self._db.execute("DELETE FROM instances WHERE instance_id = ?", (iid,))

    def finish(
        self,
        row: InstanceRow,
        status: str,
        output_json: str | None,
        error: str | None,
        *,
        now_s: str,
    ) -> None:
        """End the execution (Completed, Failed or Terminated) and tell a parent.

        Pending timers die with the instance; scheduled activities are not started any more
        (one already running finishes, as on Azure, and its result is dropped).
        """
        iid = row.instance_id
        self._db.execute(
            "UPDATE instances SET status = ?, output = ?, has_new = 0, updated = ? "
            "WHERE instance_id = ?",
            (status, output_json, now_s, iid),
        )
        self._db.execute("DELETE FROM work WHERE instance_id = ?", (iid,))
        etype = {"Completed": EXECUTION_COMPLETED, "Failed": EXECUTION_FAILED}.get(
            status, EXECUTION_TERMINATED
        )
        seq = self._max_seq(iid)
        self._db.execute("DELETE FROM history WHERE instance_id = ? AND is_new = 1", (iid,))
        ended = new_event(etype, now_s, OrchestrationStatus=status, Result=output_json)
        self._insert_event(iid, seq + 1, ended, is_new=False)
        self._tell_parent(row, status, output_json, error, now_s)
        logger.info("Instance %s (%s) is %s", iid, row.name, status)

    def _tell_parent(
        self,
        row: InstanceRow,
        status: str,
        output_json: str | None,
        error: str | None,
        now_s: str,
    ) -> None:
        parent = row.parent_instance_id
        if not parent:
            return
        prow = self.instance(parent)
        if (
            prow is None
            or prow.execution_id != row.parent_execution_id
            or prow.status in TERMINAL_STATUSES
        ):
            return
        if status == "Completed":
            event = new_event(
                SUB_ORCH_COMPLETED, now_s, TaskScheduledId=row.parent_task_id, Result=output_json
            )
        else:
            reason = error or f"Sub-orchestration '{row.instance_id}' was {status.lower()}"
            event = new_event(
                SUB_ORCH_FAILED,
                now_s,
                TaskScheduledId=row.parent_task_id,
                Reason=reason,
                Details="",
            )
        self.append_new(parent, [event], now_s)

    def continue_as_new(self, row: InstanceRow, input_json: str | None, *, now_s: str) -> None:
        """Start a new execution of the instance with ``input_json``.

        Raised events are carried over (DTFx keeps unprocessed messages); ``created`` resets
        (Azure Storage's ``AzureTableTrackingStore.cs`` writes it per ``ExecutionStarted``).
        """
        iid = row.instance_id
        execution_id = uuid.uuid4().hex
        self._db.execute("DELETE FROM work WHERE instance_id = ?", (iid,))
        carried = [e for e in self.pending_events(iid) if e["EventType"] == EVENT_RAISED]
        self._db.execute("DELETE FROM history WHERE instance_id = ?", (iid,))
        self._db.execute(
            "UPDATE instances SET execution_id = ?, input = ?, next_id = 0, meta = '{}', "
            "status = 'Running', output = NULL, created = ?, updated = ? WHERE instance_id = ?",
            (execution_id, input_json, now_s, now_s, iid),
        )
        started = new_event(
            EXECUTION_STARTED,
            now_s,
            Name=row.name,
            Input=input_json,
            Version="",
            OrchestrationInstance={"InstanceId": iid, "ExecutionId": execution_id},
        )
        self.append_new(iid, [started, *carried], now_s)
        logger.info("Instance %s continued as new", iid)

    # ------------------------------------------------------------------ history

    def _max_seq(self, iid: str) -> int:
        row = self._db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM history WHERE instance_id = ?", (iid,)
        ).fetchone()
        return int(row[0])

    def _insert_event(self, iid: str, seq: int, event: Event, *, is_new: bool) -> None:
        self._db.execute(
            "INSERT INTO history (instance_id, seq, is_new, event) VALUES (?, ?, ?, ?)",
            (iid, seq, int(is_new), json.dumps(event)),
        )

    def append_new(self, iid: str, events: Sequence[Event], now_s: str) -> None:
        """Queue events for the instance's next episode."""
        seq = self._max_seq(iid)
        for event in events:
            seq += 1
            self._insert_event(iid, seq, event, is_new=True)
        self._db.execute(
            "UPDATE instances SET has_new = 1, updated = ? WHERE instance_id = ?", (now_s, iid)
        )

    def append_played(self, iid: str, events: Sequence[Event]) -> None:
        """Append events an episode played (marked ``IsPlayed``)."""
        seq = self._max_seq(iid)
        for event in events:
            seq += 1
            self._insert_event(iid, seq, {**event, "IsPlayed": True}, is_new=False)

    def played_events(self, iid: str) -> list[Event]:
        """The played events of the current execution, in order."""
        rows = self._db.execute(
            "SELECT event FROM history WHERE instance_id = ? AND is_new = 0 ORDER BY seq", (iid,)
        )
        # One decode of the whole list: per-row json.loads was devhost's largest own cost.
        events: list[Event] = json.loads("[" + ",".join(r[0] for r in rows) + "]")
        return events

    def pending_events(self, iid: str) -> list[Event]:
        """The events no episode has played yet, in arrival order."""
        return [event for _, event in self.pending_with_seq(iid)]

    def pending_with_seq(self, iid: str) -> list[tuple[int, Event]]:
        """``pending_events`` with their sequence numbers (to consume them later)."""
        rows = self._db.execute(
            "SELECT seq, event FROM history WHERE instance_id = ? AND is_new = 1 ORDER BY seq",
            (iid,),
        ).fetchall()
        return [(int(r[0]), json.loads(r[1])) for r in rows]

    def all_events(self, iid: str) -> list[Event]:
        """Played events, then pending ones."""
        rows = self._db.execute(
            "SELECT event FROM history WHERE instance_id = ? ORDER BY is_new, seq", (iid,)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def delete_events(self, iid: str, seqs: Sequence[int]) -> None:
        """Delete the events with these sequence numbers (consumed by an episode)."""
        placeholders = ",".join("?" for _ in seqs)
        self._db.execute(
            f"DELETE FROM history WHERE instance_id = ? AND seq IN ({placeholders})",
            (iid, *seqs),
        )

    def has_pending(self, iid: str) -> bool:
        """Whether the instance has unplayed events."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM history WHERE instance_id = ? AND is_new = 1", (iid,)
        ).fetchone()
        return bool(row[0])

    # ------------------------------------------------------------------ work

    def add_work(
        self,
        iid: str,
        execution_id: str,
        kind: str,
        task_id: int,
        due: str,
        payload: dict[str, Any],
    ) -> None:
        """Schedule an activity or a timer (``kind``) due at ``due`` (``format_time``)."""
        self._db.execute(
            "INSERT INTO work (instance_id, execution_id, kind, task_id, due, payload)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (iid, execution_id, kind, task_id, due, json.dumps(payload)),
        )

    def take_work(self, work_id: int) -> bool:
        """Delete a work item; False if it was already gone."""
        cursor = self._db.execute("DELETE FROM work WHERE work_id = ?", (work_id,))
        return bool(cursor.rowcount)

    def due_timers(self, now_s: str) -> list[WorkRow]:
        """Timers due at or before ``now_s``."""
        rows = self._db.execute(
            "SELECT * FROM work WHERE kind = 'timer' AND due <= ? ORDER BY due, work_id", (now_s,)
        ).fetchall()
        return [WorkRow.from_row(r) for r in rows]

    def activities(self) -> list[WorkRow]:
        """Scheduled activities, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM work WHERE kind IN ('activity') ORDER BY work_id"
        ).fetchall()
        return [WorkRow.from_row(r) for r in rows]

    def next_timer_due(self) -> str | None:
        """The earliest timer's due time."""
        row = self._db.execute("SELECT MIN(due) FROM work WHERE kind = 'timer'").fetchone()
        return None if row[0] is None else str(row[0])

    # ------------------------------------------------------------------ kv

    def kv_get(self, key: str) -> str | None:
        """A small persisted value."""
        row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def kv_set(self, key: str, value: str) -> None:
        """Persist a small value."""
        self._db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))
