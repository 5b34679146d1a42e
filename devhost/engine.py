"""Durable engine: runs orchestrations by driving the real Durable Functions SDK.

The engine plays the part of the Durable extension (DTFx + ``OutOfProcOrchestrationShim``): it
keeps each instance's history in SQLite, builds an *episode* context JSON (history, input,
instance id, schema version) exactly as the extension does, calls the SDK's orchestrator handle
with it, and diffs the SDK's cumulative action list to schedule what is new (activities, timers,
sub-orchestrations, with-retry attempts). It never re-implements the orchestrator side.

Persistence: every state transition is one SQLite transaction (WAL), so a ``kill -9`` at any point
followed by a restart resumes every instance: pending episodes run again, activities that were
scheduled without a recorded completion run again (at-least-once, as on Azure), timers re-arm.

Sequence ids: the SDK numbers tasks itself while replaying. The engine allocates the same ids:
one per new action (activity, timer, sub-orchestration, continue-as-new) in action-list order,
and for ``*_with_retry`` one per retry timer (when the SDK processes the attempt's failure) and
one per re-attempt (when the SDK processes that timer). Bookkeeping events of retries are placed
first among an episode's new events, so the ids the SDK hands out while processing them come
before any id the resumed generator hands out, whatever the mix of concurrent tasks.
"""

import contextlib
import inspect
import json
import logging
import sqlite3
import threading
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devhost.aio import LoopThread
from devhost.clock import Clock, RealClock, VirtualClock
from devhost.errors import (
    InstanceExistsError,
    InstanceGoneError,
    InstanceNotFoundError,
    OrchestratorNotFoundError,
)
from devhost.logs import function_invocation

__all__ = [
    "TERMINAL_STATUSES",
    "Engine",
    "InstanceExistsError",
    "InstanceGoneError",
    "InstanceNotFoundError",
    "OrchestratorNotFoundError",
    "RealClock",
    "VirtualClock",
]

logger = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Terminated", "Canceled"})
ACTIVE_STATUSES = frozenset({"Pending", "Running", "Suspended", "ContinuedAsNew"})
OUT_OF_PROC_MARKER = "$OutOfProcData$:"

# History event types (DTFx ``EventType``).
EXECUTION_STARTED = 0
EXECUTION_COMPLETED = 1
EXECUTION_FAILED = 2
EXECUTION_TERMINATED = 3
TASK_SCHEDULED = 4
TASK_COMPLETED = 5
TASK_FAILED = 6
SUB_ORCH_CREATED = 7
SUB_ORCH_COMPLETED = 8
SUB_ORCH_FAILED = 9
TIMER_CREATED = 10
TIMER_FIRED = 11
ORCHESTRATOR_STARTED = 12
ORCHESTRATOR_COMPLETED = 13
EVENT_RAISED = 15
CONTINUE_AS_NEW = 16
EXECUTION_SUSPENDED = 19
EXECUTION_RESUMED = 20

EVENT_NAMES = {
    0: "ExecutionStarted",
    1: "ExecutionCompleted",
    2: "ExecutionFailed",
    3: "ExecutionTerminated",
    4: "TaskScheduled",
    5: "TaskCompleted",
    6: "TaskFailed",
    7: "SubOrchestrationInstanceCreated",
    8: "SubOrchestrationInstanceCompleted",
    9: "SubOrchestrationInstanceFailed",
    10: "TimerCreated",
    11: "TimerFired",
    12: "OrchestratorStarted",
    13: "OrchestratorCompleted",
    14: "EventSent",
    15: "EventRaised",
    16: "ContinueAsNew",
    17: "GenericEvent",
    18: "HistoryState",
    19: "ExecutionSuspended",
    20: "ExecutionResumed",
}

# Action types (``azure.durable_functions.models.actions.ActionType``).
A_CALL_ACTIVITY = 0
A_CALL_ACTIVITY_RETRY = 1
A_CALL_SUB = 2
A_CALL_SUB_RETRY = 3
A_CONTINUE_AS_NEW = 4
A_CREATE_TIMER = 5
A_WAIT_EVENT = 6
A_CALL_ENTITY = 7
A_CALL_HTTP = 8
A_SIGNAL_ENTITY = 9
A_WHEN_ANY = 11
A_WHEN_ALL = 12

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


def format_time(value: datetime) -> str:
    """ISO-8601 UTC with microseconds and ``Z``, the form the SDK and extension exchange."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_status_time(value: str) -> str:
    """The management API's time format (``2026-01-01T00:00:00Z``)."""
    return parse_time(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    """Parse an ISO-8601 time (``Z`` or offset; naive = UTC) to an aware UTC datetime."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python 3.11 fromisoformat accepts up to 6 fractional digits; .NET sends 7.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{tz}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _event(event_type: int, timestamp: str, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    return {
        "EventType": event_type,
        "EventId": event_id,
        "IsPlayed": False,
        "Timestamp": timestamp,
        **fields,
    }


def _flatten(actions: Iterable[Any]) -> list[dict[str, Any]]:
    """Depth-first flattening of the SDK's action list through WhenAny/WhenAll."""
    flat: list[dict[str, Any]] = []
    for action in actions:
        if isinstance(action, list):
            flat.extend(_flatten(action))
        elif isinstance(action, dict):
            if action.get("actionType") in (A_WHEN_ANY, A_WHEN_ALL):
                flat.extend(_flatten(action.get("compoundActions") or []))
            else:
                flat.append(action)
    return flat


def _decode(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value


class Engine:
    """The durable engine (a local stand-in for the Durable Task extension).

    Args:
        state_path: SQLite file (created with its folder) or ``":memory:"``.
        orchestrators: orchestrator name → SDK handle (context JSON str → result JSON str).
        activities: activity name → callable taking the decoded input (may return a coroutine).
        clock: ``RealClock()`` (default) or a ``VirtualClock``.
        max_concurrent_activities: activity thread-pool size (host.json
            ``maxConcurrentActivityFunctions``).
        max_concurrent_orchestrations: episodes dispatched at once.
        task_hub: task hub name (reported only).
        loop: the asyncio loop thread for ``async def`` activities (default: one of its own,
            created on first use).
        replace_running: host.json ``overridableExistingInstanceStates: AnyState`` (``start_new``
            replaces active instances too); default ``NonRunningStates``.
    """

    def __init__(
        self,
        state_path: Path | str,
        orchestrators: Mapping[str, Callable[[str], str]],
        activities: Mapping[str, Callable[[Any], Any]],
        clock: Clock | None = None,
        max_concurrent_activities: int = 10,
        max_concurrent_orchestrations: int = 10,
        task_hub: str = "devhost",
        loop: LoopThread | None = None,
        replace_running: bool = False,
    ) -> None:
        if max_concurrent_activities < 1:
            raise ValueError("max_concurrent_activities: must be >= 1")
        if max_concurrent_orchestrations < 1:
            raise ValueError("max_concurrent_orchestrations: must be >= 1")
        self.orchestrators = dict(orchestrators)
        self.activities = dict(activities)
        self.clock = clock or RealClock()
        self.task_hub = task_hub
        self.replace_running = replace_running
        self.max_concurrent_activities = max_concurrent_activities
        self.max_concurrent_orchestrations = max_concurrent_orchestrations
        path = str(state_path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self._sdk_lock = threading.Lock()
        self._status_cv = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._inflight_episodes: set[str] = set()
        self._inflight_work: set[int] = set()
        self._thread: threading.Thread | None = None
        self._episode_pool: ThreadPoolExecutor | None = None
        self._activity_pool: ThreadPoolExecutor | None = None
        self._loop = loop
        self._owns_loop = False
        self._closed = False
        self.clock.subscribe(self._wake.set)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the scheduler thread and the worker pools (resumes persisted instances)."""
        if self._thread is not None:
            return
        self._episode_pool = ThreadPoolExecutor(
            self.max_concurrent_orchestrations, thread_name_prefix="devhost-orch"
        )
        self._activity_pool = ThreadPoolExecutor(
            self.max_concurrent_activities, thread_name_prefix="devhost-activity"
        )
        self._thread = threading.Thread(target=self._scheduler, name="devhost-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the scheduler, wait for running episodes, close the state store (idempotent)."""
        if self._closed:
            return
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._episode_pool is not None:
            self._episode_pool.shutdown(wait=True, cancel_futures=True)
        if self._activity_pool is not None:
            # Running activities cannot be interrupted; their completions are dropped (an
            # activity without a recorded completion runs again on the next start).
            self._activity_pool.shutdown(wait=False, cancel_futures=True)
        self.clock.unsubscribe(self._wake.set)
        with self._lock:
            self._closed = True
            self._db.close()
        if self._loop is not None and self._owns_loop:
            self._loop.close()

    def __enter__(self) -> "Engine":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ db helpers

    @contextlib.contextmanager
    def _tx(self) -> Any:
        with self._lock:
            if self._closed:
                raise RuntimeError("engine is stopped")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _now(self) -> datetime:
        return self.clock.now()

    def _append_new(self, db: sqlite3.Connection, iid: str, events: list[dict[str, Any]]) -> None:
        row = db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM history WHERE instance_id = ?", (iid,)
        ).fetchone()
        seq = int(row[0])
        for event in events:
            seq += 1
            db.execute(
                "INSERT INTO history (instance_id, seq, is_new, event) VALUES (?, ?, 1, ?)",
                (iid, seq, json.dumps(event)),
            )
        db.execute(
            "UPDATE instances SET has_new = 1, updated = ? WHERE instance_id = ?",
            (format_time(self._now()), iid),
        )

    def kv_get(self, key: str) -> str | None:
        """Read a small persisted value (used by the host for keys and trigger state)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def kv_set(self, key: str, value: str) -> None:
        """Persist a small value."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------------ client API

    def start_new(
        self,
        name: str,
        instance_id: str | None = None,
        input: Any = None,
        *,
        input_json: str | None = None,
    ) -> str:
        """Start an orchestration and return its instance id.

        Args:
            name: orchestrator function name.
            instance_id: the id to use (default: a new GUID without dashes).
            input: JSON-serializable input (ignored when ``input_json`` is given).
            input_json: the input already serialized (as the management API receives it).

        Raises:
            OrchestratorNotFoundError: the app has no orchestrator of that name.
            InstanceExistsError: the id is Pending, Running or Suspended.
            ValueError: bad instance id.
        """
        if name not in self.orchestrators:
            raise OrchestratorNotFoundError(
                f"The function '{name}' doesn't exist, is disabled, or is not an orchestrator "
                "function."
            )
        iid = instance_id if instance_id is not None else uuid.uuid4().hex
        if not iid or any(ch in iid for ch in "/\\#?") or len(iid) > 256:
            raise ValueError(f"instance_id: invalid value {iid!r}")
        if input_json is None:
            input_json = None if input is None else json.dumps(input)
        with self._tx() as db:
            self._create_instance(db, name, iid, input_json, parent=None)
        logger.info("Started orchestration %s (instance %s)", name, iid)
        self._wake.set()
        return iid

    def _create_instance(
        self,
        db: sqlite3.Connection,
        name: str,
        iid: str,
        input_json: str | None,
        parent: tuple[str, str, int] | None,
    ) -> None:
        row = db.execute("SELECT status FROM instances WHERE instance_id = ?", (iid,)).fetchone()
        if row is not None and row["status"] in ACTIVE_STATUSES and not self.replace_running:
            raise InstanceExistsError(
                f"An Orchestration instance with the status {row['status']} already exists."
            )
        if row is not None:
            self._delete_instance(db, iid)
        now = format_time(self._now())
        execution_id = uuid.uuid4().hex
        db.execute(
            "INSERT INTO instances (instance_id, name, execution_id, status, input, created, "
            "updated, parent_instance_id, parent_execution_id, parent_task_id) "
            "VALUES (?, ?, ?, 'Pending', ?, ?, ?, ?, ?, ?)",
            (
                iid,
                name,
                execution_id,
                input_json,
                now,
                now,
                parent[0] if parent else None,
                parent[1] if parent else None,
                parent[2] if parent else None,
            ),
        )
        started = _event(
            EXECUTION_STARTED,
            now,
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
        self._append_new(db, iid, [started])

    def _delete_instance(self, db: sqlite3.Connection, iid: str) -> None:
        db.execute("DELETE FROM history WHERE instance_id = ?", (iid,))
        db.execute("DELETE FROM work WHERE instance_id = ?", (iid,))
        db.execute("DELETE FROM instances WHERE instance_id = ?", (iid,))

    def get_status(
        self,
        instance_id: str,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = True,
    ) -> dict[str, Any] | None:
        """Return the extension's status JSON for an instance, or ``None`` for an unknown id."""
        with self._lock:
            if self._closed:
                raise RuntimeError("engine is stopped")
            row = self._db.execute(
                "SELECT * FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
            if row is None:
                return None
            status = self._status_dict(row, show_input=show_input)
            if show_history:
                events = [
                    json.loads(r[0])
                    for r in self._db.execute(
                        "SELECT event FROM history WHERE instance_id = ? AND is_new = 0 "
                        "ORDER BY seq",
                        (instance_id,),
                    )
                ]
                status["history"] = self._history_view(row, events, show_history_output)
        return status

    def get_history_events(self, instance_id: str) -> list[dict[str, Any]]:
        """The raw DTFx history of the current execution (played events, then pending ones).

        This is what the next episode's context JSON is built from; tests replay it through the
        SDK to check that the engine's history is one the SDK accepts.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT event FROM history WHERE instance_id = ? ORDER BY is_new, seq",
                (instance_id,),
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def _status_dict(self, row: sqlite3.Row, *, show_input: bool) -> dict[str, Any]:
        status = row["status"]
        output: Any = row["output"]
        if status != "Failed":
            output = _decode(output)
        return {
            "name": row["name"],
            "instanceId": row["instance_id"],
            "runtimeStatus": status,
            "input": _decode(row["input"]) if show_input else None,
            "customStatus": _decode(row["custom_status"]),
            "output": output,
            "createdTime": format_status_time(row["created"]),
            "lastUpdatedTime": format_status_time(row["updated"]),
        }

    def _history_view(
        self, row: sqlite3.Row, events: list[dict[str, Any]], with_output: bool
    ) -> list[dict[str, Any]]:
        """History in the management API's shape (``EventType`` names, scheduled names)."""
        names: dict[int, str] = {}
        view: list[dict[str, Any]] = []
        for event in events:
            etype = event["EventType"]
            if etype in (ORCHESTRATOR_STARTED, ORCHESTRATOR_COMPLETED):
                continue
            item: dict[str, Any] = {
                "EventType": EVENT_NAMES.get(etype, str(etype)),
                "Timestamp": format_status_time(event["Timestamp"]),
            }
            if etype in (TASK_SCHEDULED, SUB_ORCH_CREATED):
                names[event["EventId"]] = event.get("Name", "")
                item["EventId"] = event["EventId"]
                item["Name"] = event.get("Name")
            elif etype in (TASK_COMPLETED, TASK_FAILED, SUB_ORCH_COMPLETED, SUB_ORCH_FAILED):
                item["TaskScheduledId"] = event["TaskScheduledId"]
                item["FunctionName"] = names.get(event["TaskScheduledId"])
                if etype in (TASK_FAILED, SUB_ORCH_FAILED):
                    item["Reason"] = event.get("Reason")
                elif with_output:
                    item["Result"] = _decode(event.get("Result"))
            elif etype == EXECUTION_STARTED:
                item["FunctionName"] = event.get("Name")
                if with_output:
                    item["Input"] = _decode(event.get("Input"))
            elif etype in (TIMER_CREATED, TIMER_FIRED):
                item["FireAt"] = event.get("FireAt")
                item["TimerId"] = event.get("TimerId", event.get("EventId"))
            elif etype == EVENT_RAISED:
                item["Name"] = event.get("Name")
                if with_output:
                    item["Input"] = _decode(event.get("Input"))
            elif etype in (EXECUTION_COMPLETED, EXECUTION_FAILED, EXECUTION_TERMINATED):
                item["OrchestrationStatus"] = event.get("OrchestrationStatus")
                if with_output:
                    item["Result"] = _decode(event.get("Result"))
            view.append(item)
        return view

    def list_instances(
        self,
        runtime_status: Iterable[str] | str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        top: int | None = None,
        instance_id_prefix: str | None = None,
        show_input: bool = False,
    ) -> list[dict[str, Any]]:
        """Status dicts of instances matching every given filter (oldest first)."""
        if isinstance(runtime_status, str):
            runtime_status = [s for s in runtime_status.split(",") if s]
        statuses = set(runtime_status) if runtime_status else None
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM instances ORDER BY created, instance_id"
            ).fetchall()
            result: list[dict[str, Any]] = []
            for row in rows:
                if statuses is not None and row["status"] not in statuses:
                    continue
                created = parse_time(row["created"])
                if created_from is not None and created < created_from:
                    continue
                if created_to is not None and created > created_to:
                    continue
                if instance_id_prefix and not row["instance_id"].startswith(instance_id_prefix):
                    continue
                result.append(self._status_dict(row, show_input=show_input))
                if top is not None and len(result) >= top:
                    break
        return result

    def wait_for_completion(self, instance_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Block until the instance is terminal; return its status.

        Raises:
            TimeoutError: not terminal within ``timeout`` real seconds.
        """
        import time

        deadline = time.monotonic() + timeout
        with self._status_cv:
            while True:
                status = self.get_status(instance_id)
                if status is not None and status["runtimeStatus"] in TERMINAL_STATUSES:
                    return status
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    shown = status["runtimeStatus"] if status else "unknown"
                    raise TimeoutError(
                        f"instance {instance_id} not finished after {timeout}s (status {shown})"
                    )
                self._status_cv.wait(min(remaining, 0.5))

    def raise_event(self, instance_id: str, event_name: str, data: Any = None) -> None:
        """Deliver an external event.

        Raises:
            InstanceNotFoundError: unknown id.
            InstanceGoneError: the instance is terminal.
        """
        self.raise_event_json(instance_id, event_name, None if data is None else json.dumps(data))

    def raise_event_json(self, instance_id: str, event_name: str, data_json: str | None) -> None:
        """``raise_event`` with the payload already serialized."""
        if not event_name:
            raise ValueError("event_name: must not be empty")
        with self._tx() as db:
            row = self._require(db, instance_id)
            if row["status"] in TERMINAL_STATUSES:
                raise InstanceGoneError(f"instance {instance_id} is {row['status']}")
            event = _event(
                EVENT_RAISED, format_time(self._now()), Name=event_name, Input=data_json
            )
            self._append_new(db, instance_id, [event])
        self._wake.set()

    def _require(self, db: sqlite3.Connection, instance_id: str) -> sqlite3.Row:
        row = db.execute(
            "SELECT * FROM instances WHERE instance_id = ?", (instance_id,)
        ).fetchone()
        if row is None:
            raise InstanceNotFoundError(f"No instance with ID '{instance_id}' found.")
        return row  # type: ignore[no-any-return]

    def terminate(self, instance_id: str, reason: str = "") -> None:
        """Terminate an instance (running activities are not stopped, as on Azure).

        Raises:
            InstanceNotFoundError: unknown id.
            InstanceGoneError: the instance is already terminal.
        """
        with self._tx() as db:
            row = self._require(db, instance_id)
            if row["status"] in TERMINAL_STATUSES:
                raise InstanceGoneError(f"instance {instance_id} is {row['status']}")
            self._finish(db, row, "Terminated", json.dumps(reason), None)
        logger.info("Terminated instance %s: %s", instance_id, reason)
        self._notify_status()
        self._wake.set()

    def suspend(self, instance_id: str, reason: str = "") -> None:
        """Suspend: events are kept but no episode runs until ``resume``."""
        with self._tx() as db:
            row = self._require(db, instance_id)
            if row["status"] in TERMINAL_STATUSES:
                raise InstanceGoneError(f"instance {instance_id} is {row['status']}")
            if row["status"] != "Suspended":
                meta = json.loads(row["meta"])
                meta["suspended_from"] = row["status"]
                db.execute(
                    "UPDATE instances SET status = 'Suspended', meta = ?, updated = ? "
                    "WHERE instance_id = ?",
                    (json.dumps(meta), format_time(self._now()), instance_id),
                )
        self._notify_status()

    def resume(self, instance_id: str, reason: str = "") -> None:
        """Resume a suspended instance."""
        with self._tx() as db:
            row = self._require(db, instance_id)
            if row["status"] in TERMINAL_STATUSES:
                raise InstanceGoneError(f"instance {instance_id} is {row['status']}")
            if row["status"] == "Suspended":
                meta = json.loads(row["meta"])
                previous = meta.pop("suspended_from", "Running")
                db.execute(
                    "UPDATE instances SET status = ?, meta = ?, updated = ? WHERE instance_id = ?",
                    (previous, json.dumps(meta), format_time(self._now()), instance_id),
                )
        self._notify_status()
        self._wake.set()

    def purge(self, instance_id: str) -> bool:
        """Delete a terminal instance's state; False if unknown or still active."""
        with self._tx() as db:
            row = db.execute(
                "SELECT status FROM instances WHERE instance_id = ?", (instance_id,)
            ).fetchone()
            if row is None or row["status"] not in TERMINAL_STATUSES:
                return False
            self._delete_instance(db, instance_id)
        return True

    def purge_by(
        self,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        runtime_status: Iterable[str] | str | None = None,
    ) -> int:
        """Purge every terminal instance matching the filters; return how many."""
        count = 0
        for status in self.list_instances(runtime_status, created_from, created_to):
            if self.purge(status["instanceId"]):
                count += 1
        return count

    # ------------------------------------------------------------------ scheduler

    def _notify_status(self) -> None:
        with self._status_cv:
            self._status_cv.notify_all()

    def _scheduler(self) -> None:
        while not self._stopping.is_set():
            # Clear before the pass, not after the wait: a wake-up that arrives while the pass
            # runs must not be lost (it would cost a full idle timeout).
            self._wake.clear()
            try:
                timeout = self._tick()
            except Exception:
                if self._stopping.is_set():
                    return
                logger.exception("devhost engine scheduler error")
                timeout = 0.5
            self._wake.wait(timeout)

    def _tick(self) -> float:
        """One scheduling pass; returns how long to sleep (real seconds) at most."""
        now = self._now()
        now_s = format_time(now)
        with self._tx() as db:
            due = db.execute(
                "SELECT * FROM work WHERE kind = 'timer' AND due <= ? ORDER BY due, work_id",
                (now_s,),
            ).fetchall()
            for work in due:
                self._fire_timer(db, work)
        runnable: list[str]
        activities: list[sqlite3.Row]
        with self._lock:
            runnable = [
                r[0]
                for r in self._db.execute(
                    "SELECT instance_id FROM instances WHERE has_new = 1 "
                    "AND status IN ('Pending', 'Running')"
                )
            ]
            activities = self._db.execute(
                "SELECT * FROM work WHERE kind IN ('activity') ORDER BY work_id"
            ).fetchall()
            next_timer = self._db.execute(
                "SELECT MIN(due) FROM work WHERE kind = 'timer'"
            ).fetchone()[0]
            for iid in runnable:
                if iid not in self._inflight_episodes and self._episode_pool is not None:
                    self._inflight_episodes.add(iid)
                    self._episode_pool.submit(self._run_episode_safely, iid)
            for work in activities:
                if work["work_id"] not in self._inflight_work and self._activity_pool is not None:
                    self._inflight_work.add(work["work_id"])
                    self._activity_pool.submit(self._run_activity, dict(work))
            idle = not self._inflight_episodes and not self._inflight_work and not runnable
        if next_timer is None:
            return 1.0
        due_at = parse_time(next_timer)
        if isinstance(self.clock, VirtualClock):
            if self.clock.auto_advance and idle:
                self.clock.advance_to(due_at)
                return 0.0
            return 1.0
        return max(0.0, min(1.0, (due_at - now).total_seconds()))

    def _fire_timer(self, db: sqlite3.Connection, work: sqlite3.Row) -> None:
        db.execute("DELETE FROM work WHERE work_id = ?", (work["work_id"],))
        row = db.execute(
            "SELECT status, execution_id FROM instances WHERE instance_id = ?",
            (work["instance_id"],),
        ).fetchone()
        if row is None or row["execution_id"] != work["execution_id"]:
            return
        if row["status"] in TERMINAL_STATUSES:
            return
        payload = json.loads(work["payload"])
        event = _event(
            TIMER_FIRED,
            format_time(self._now()),
            TimerId=work["task_id"],
            FireAt=payload["fire_at"],
        )
        self._append_new(db, work["instance_id"], [event])

    # ------------------------------------------------------------------ activities

    def _run_activity(self, work: dict[str, Any]) -> None:
        payload = json.loads(work["payload"])
        name = payload["name"]
        event_fields = self._invoke_activity(name, payload.get("input"))
        try:
            with self._tx() as db:
                exists = db.execute(
                    "DELETE FROM work WHERE work_id = ?", (work["work_id"],)
                ).rowcount
                row = db.execute(
                    "SELECT status, execution_id FROM instances WHERE instance_id = ?",
                    (work["instance_id"],),
                ).fetchone()
                if (
                    exists
                    and row is not None
                    and row["execution_id"] == work["execution_id"]
                    and row["status"] not in TERMINAL_STATUSES
                ):
                    etype, fields = event_fields
                    event = _event(
                        etype,
                        format_time(self._now()),
                        TaskScheduledId=work["task_id"],
                        **fields,
                    )
                    self._append_new(db, work["instance_id"], [event])
        except (RuntimeError, sqlite3.ProgrammingError):
            if not self._closed:
                raise
        finally:
            with self._lock:
                self._inflight_work.discard(work["work_id"])
            self._wake.set()

    def _invoke_activity(self, name: str, input_json: str | None) -> tuple[int, dict[str, Any]]:
        fn = self.activities.get(name)
        if fn is None:
            reason = f"The function '{name}' doesn't exist, is disabled, or is not an activity"
            return TASK_FAILED, {"Reason": reason, "Details": ""}
        try:
            with function_invocation(name, "(null)"):
                value = _decode(input_json)
                result = fn(value)
                if inspect.isawaitable(result):
                    result = self._get_loop().run(_await(result))
                result_json = json.dumps(result)
        except Exception as exc:
            reason = f"Activity function '{name}' failed: {type(exc).__name__}: {exc}"
            details = "".join(traceback.format_exception(exc))[-4000:]
            logger.warning("Activity %s failed: %s", name, exc)
            return TASK_FAILED, {"Reason": reason, "Details": details}
        return TASK_COMPLETED, {"Result": result_json}

    def _get_loop(self) -> LoopThread:
        with self._lock:
            if self._loop is None:
                self._loop = LoopThread()
                self._owns_loop = True
            return self._loop

    # ------------------------------------------------------------------ episodes

    def _run_episode_safely(self, iid: str) -> None:
        try:
            self._run_episode(iid)
        except Exception:
            if not self._closed:
                logger.exception("episode of instance %s failed inside devhost", iid)
        finally:
            with self._lock:
                self._inflight_episodes.discard(iid)
            self._wake.set()

    def _run_episode(self, iid: str) -> None:
        with self._lock:
            if self._closed or self._stopping.is_set():
                return
            row = self._db.execute(
                "SELECT * FROM instances WHERE instance_id = ?", (iid,)
            ).fetchone()
            if row is None or row["status"] not in ("Pending", "Running"):
                return
            past_rows = self._db.execute(
                "SELECT event FROM history WHERE instance_id = ? AND is_new = 0 ORDER BY seq",
                (iid,),
            ).fetchall()
            new_rows = self._db.execute(
                "SELECT seq, event FROM history WHERE instance_id = ? AND is_new = 1 ORDER BY seq",
                (iid,),
            ).fetchall()
        if not new_rows:
            with self._tx() as db:
                db.execute("UPDATE instances SET has_new = 0 WHERE instance_id = ?", (iid,))
            return
        name = row["name"]
        execution_id = row["execution_id"]
        meta: dict[str, Any] = json.loads(row["meta"])
        tasks: dict[str, Any] = meta.setdefault("tasks", {})
        groups: dict[str, Any] = meta.setdefault("groups", {})
        action_ids: list[int | None] = meta.setdefault("action_ids", [])
        next_id = int(row["next_id"])
        now = self._now()
        now_s = format_time(now)
        past = [json.loads(r[0]) for r in past_rows]
        new = [json.loads(r[1]) for r in new_rows]
        consumed_seqs = [int(r[0]) for r in new_rows]

        # Order: retry bookkeeping events that make the SDK allocate ids without resuming the
        # generator come first (see module docstring), the rest keep their arrival order.
        bookkeeping: list[dict[str, Any]] = []
        others: list[dict[str, Any]] = []
        new_work: list[tuple[str, int, str, dict[str, Any]]] = []  # kind, task id, due, payload
        new_children: list[tuple[str, str, str | None, int]] = []  # name, iid, input, task id
        scheduled_events: list[dict[str, Any]] = []
        for event in new:
            etype = event["EventType"]
            key = None
            if etype in (TASK_FAILED, SUB_ORCH_FAILED):
                key = str(event["TaskScheduledId"])
                task = tasks.get(key)
                if task and task.get("group") is not None:
                    group = groups[task["group"]]
                    timer_id = next_id
                    next_id += 1
                    fire_at = now + timedelta(milliseconds=group["first_ms"])
                    tasks[str(timer_id)] = {"kind": "retry_timer", "group": task["group"]}
                    new_work.append(("timer", timer_id, format_time(fire_at), {
                        "fire_at": format_time(fire_at)}))
                    scheduled_events.append(_event(
                        TIMER_CREATED, now_s, timer_id, FireAt=format_time(fire_at)))
                    bookkeeping.append(event)
                    continue
            elif etype == TIMER_FIRED:
                task = tasks.get(str(event["TimerId"]))
                if task and task.get("kind") == "retry_timer":
                    group = groups[task["group"]]
                    if group["attempts"] < group["max"]:
                        attempt_id = next_id
                        next_id += 1
                        group["attempts"] += 1
                        tasks[str(attempt_id)] = {"kind": group["kind"], "group": task["group"]}
                        self._schedule_call(
                            group, attempt_id, now_s, iid, new_work, new_children,
                            scheduled_events,
                        )
                        bookkeeping.append(event)
                        continue
            others.append(event)
        ordered_new = bookkeeping + others

        history = [
            {**e, "IsPlayed": True} for e in past
        ] + [_event(ORCHESTRATOR_STARTED, now_s)] + ordered_new
        context = {
            "history": history,
            "instanceId": iid,
            "isReplaying": False,
            "parentInstanceId": row["parent_instance_id"],
            "input": row["input"],
            "upperSchemaVersion": 1,
            "upperSchemaVersionNew": 2,
        }
        handler = self.orchestrators.get(name)
        state: dict[str, Any]
        if handler is None:
            state = {"isDone": False, "actions": [], "error": f"orchestrator '{name}' not found"}
        else:
            state = self._call_orchestrator(name, handler, json.dumps(context))

        # Diff the cumulative action list.
        flat = _flatten(state.get("actions") or [])
        continue_input: tuple[bool, str | None] = (False, None)
        unsupported: str | None = None
        canceled_timers: list[int] = []
        for index, action in enumerate(flat):
            atype = action.get("actionType")
            if index < len(action_ids):
                task_id = action_ids[index]
                if atype == A_CREATE_TIMER and action.get("isCanceled") and task_id is not None:
                    canceled_timers.append(task_id)
                continue
            task_id = None
            if atype in (A_CALL_ACTIVITY, A_CALL_ACTIVITY_RETRY, A_CALL_SUB, A_CALL_SUB_RETRY):
                task_id = next_id
                next_id += 1
                is_sub = atype in (A_CALL_SUB, A_CALL_SUB_RETRY)
                retry = action.get("retryOptions") if atype in (
                    A_CALL_ACTIVITY_RETRY, A_CALL_SUB_RETRY) else None
                group_key = None
                call = {
                    "kind": "suborch" if is_sub else "activity",
                    "name": action.get("functionName"),
                    "input": action.get("input"),
                    "instance_id": action.get("instanceId") if is_sub else None,
                    "attempts": 1,
                    "max": int(retry["maxNumberOfAttempts"]) if retry else 1,
                    "first_ms": int(retry["firstRetryIntervalInMilliseconds"]) if retry else 0,
                }
                if retry:
                    group_key = str(task_id)
                    groups[group_key] = call
                tasks[str(task_id)] = {"kind": call["kind"], "group": group_key}
                self._schedule_call(
                    call, task_id, now_s, iid, new_work, new_children, scheduled_events
                )
            elif atype == A_CREATE_TIMER:
                task_id = next_id
                next_id += 1
                fire_at = parse_time(action["fireAt"])
                tasks[str(task_id)] = {"kind": "timer"}
                if not action.get("isCanceled"):
                    new_work.append(("timer", task_id, format_time(fire_at), {
                        "fire_at": action["fireAt"]}))
                scheduled_events.append(_event(TIMER_CREATED, now_s, task_id,
                                               FireAt=action["fireAt"]))
            elif atype == A_CONTINUE_AS_NEW:
                next_id += 1
                continue_input = (True, action.get("input"))
            elif atype == A_WAIT_EVENT:
                pass
            else:
                if atype == A_SIGNAL_ENTITY:
                    next_id += 1
                unsupported = (
                    f"devhost does not support action type {atype} "
                    "(durable entities and call_http are not emulated)"
                )
            action_ids.append(task_id)

        custom_status = state.get("customStatus")
        with self._tx() as db:
            current = db.execute(
                "SELECT * FROM instances WHERE instance_id = ?", (iid,)
            ).fetchone()
            if current is None or current["execution_id"] != execution_id:
                return  # purged or restarted meanwhile
            if current["status"] in TERMINAL_STATUSES:
                return  # terminated while the episode ran: its decisions are dropped
            placeholders = ",".join("?" for _ in consumed_seqs)
            db.execute(
                f"DELETE FROM history WHERE instance_id = ? AND seq IN ({placeholders})",
                (iid, *consumed_seqs),
            )
            seq = int(db.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM history WHERE instance_id = ?", (iid,)
            ).fetchone()[0])
            for event in [
                _event(ORCHESTRATOR_STARTED, now_s),
                *ordered_new,
                *scheduled_events,
                _event(ORCHESTRATOR_COMPLETED, now_s),
            ]:
                seq += 1
                db.execute(
                    "INSERT INTO history (instance_id, seq, is_new, event) VALUES (?, ?, 0, ?)",
                    (iid, seq, json.dumps({**event, "IsPlayed": True})),
                )
            for timer_id in canceled_timers:
                db.execute(
                    "DELETE FROM work WHERE instance_id = ? AND kind = 'timer' AND task_id = ?",
                    (iid, timer_id),
                )
            has_more = db.execute(
                "SELECT COUNT(*) FROM history WHERE instance_id = ? AND is_new = 1", (iid,)
            ).fetchone()[0]
            status = current["status"]
            if status == "Pending":
                status = "Running"
            db.execute(
                "UPDATE instances SET next_id = ?, meta = ?, has_new = ?, status = ?, "
                "custom_status = COALESCE(?, custom_status), updated = ? WHERE instance_id = ?",
                (
                    next_id,
                    json.dumps(meta),
                    1 if has_more else 0,
                    status,
                    None if custom_status is None else json.dumps(custom_status),
                    now_s,
                    iid,
                ),
            )
            current = db.execute(
                "SELECT * FROM instances WHERE instance_id = ?", (iid,)
            ).fetchone()
            error = state.get("error")
            if unsupported and not error:
                error = unsupported
            if error is not None:
                message = f"Orchestrator function '{name}' failed: {error}"
                self._finish(db, current, "Failed", message, message)
            elif continue_input[0]:
                self._continue_as_new(db, current, continue_input[1])
            elif state.get("isDone"):
                output = state.get("output")
                self._finish(db, current, "Completed", json.dumps(output), None)
            else:
                for kind, task_id, due, payload in new_work:
                    db.execute(
                        "INSERT INTO work (instance_id, execution_id, kind, task_id, due, payload)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (iid, execution_id, kind, task_id, due, json.dumps(payload)),
                    )
                for child_name, child_iid, child_input, task_id in new_children:
                    try:
                        self._create_instance(
                            db, child_name, child_iid, child_input, (iid, execution_id, task_id)
                        )
                    except InstanceExistsError as exc:
                        self._append_new(db, iid, [_event(
                            SUB_ORCH_FAILED, now_s, TaskScheduledId=task_id,
                            Reason=str(exc), Details="")])
        self._notify_status()

    def _schedule_call(
        self,
        call: dict[str, Any],
        task_id: int,
        now_s: str,
        iid: str,
        new_work: list[tuple[str, int, str, dict[str, Any]]],
        new_children: list[tuple[str, str, str | None, int]],
        scheduled_events: list[dict[str, Any]],
    ) -> None:
        if call["kind"] == "activity":
            new_work.append(("activity", task_id, now_s, {
                "name": call["name"], "input": call["input"]}))
            scheduled_events.append(_event(TASK_SCHEDULED, now_s, task_id,
                                           Name=call["name"], Input=call["input"]))
            return
        # Without an explicit id the extension picks one; a deterministic "<parent>:<task id>"
        # keeps children easy to find (list_instances(instance_id_prefix=parent + ":")).
        child_iid = call.get("instance_id") or f"{iid}:{task_id:04d}"
        new_children.append((call["name"], child_iid, call["input"], task_id))
        scheduled_events.append(_event(SUB_ORCH_CREATED, now_s, task_id, Name=call["name"],
                                       InstanceId=child_iid, Input=call["input"]))

    def _call_orchestrator(
        self, name: str, handler: Callable[[str], str], context_json: str
    ) -> dict[str, Any]:
        with self._sdk_lock, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with function_invocation(name, "(null)"):
                    result = handler(context_json)
            except Exception as exc:
                text = str(exc)
                if OUT_OF_PROC_MARKER in text:
                    data = text.split(OUT_OF_PROC_MARKER, 1)[1]
                    try:
                        parsed: dict[str, Any] = json.loads(data)
                    except ValueError:
                        parsed = {"isDone": False, "actions": [], "error": text}
                    if not parsed.get("error"):
                        parsed["error"] = text.split(OUT_OF_PROC_MARKER, 1)[0].strip()
                    return parsed
                logger.warning("orchestrator %s raised outside the SDK: %s", name, exc)
                return {"isDone": False, "actions": [], "error": f"{type(exc).__name__}: {exc}"}
        for warning in caught:
            logger.debug("SDK warning in %s: %s", name, warning.message)
        try:
            state = json.loads(result)
        except (TypeError, ValueError):
            return {"isDone": False, "actions": [], "error": "orchestrator returned non-JSON"}
        if not isinstance(state, dict):
            return {"isDone": False, "actions": [], "error": "orchestrator returned non-object"}
        return state

    def _finish(
        self,
        db: sqlite3.Connection,
        row: sqlite3.Row,
        status: str,
        output_json: str | None,
        error: str | None,
    ) -> None:
        iid = row["instance_id"]
        now_s = format_time(self._now())
        db.execute(
            "UPDATE instances SET status = ?, output = ?, has_new = 0, updated = ? "
            "WHERE instance_id = ?",
            (status, output_json, now_s, iid),
        )
        # Pending timers die with the instance; scheduled activities are not started any more
        # (one already running finishes, as on Azure, and its result is dropped).
        db.execute("DELETE FROM work WHERE instance_id = ?", (iid,))
        etype = {"Completed": EXECUTION_COMPLETED, "Failed": EXECUTION_FAILED}.get(
            status, EXECUTION_TERMINATED
        )
        seq = int(db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM history WHERE instance_id = ?", (iid,)
        ).fetchone()[0])
        db.execute("DELETE FROM history WHERE instance_id = ? AND is_new = 1", (iid,))
        db.execute(
            "INSERT INTO history (instance_id, seq, is_new, event) VALUES (?, ?, 0, ?)",
            (iid, seq + 1, json.dumps(_event(
                etype, now_s, OrchestrationStatus=status, Result=output_json))),
        )
        parent = row["parent_instance_id"]
        if parent:
            prow = db.execute(
                "SELECT status, execution_id FROM instances WHERE instance_id = ?", (parent,)
            ).fetchone()
            if (
                prow is not None
                and prow["execution_id"] == row["parent_execution_id"]
                and prow["status"] not in TERMINAL_STATUSES
            ):
                if status == "Completed":
                    event = _event(SUB_ORCH_COMPLETED, now_s,
                                   TaskScheduledId=row["parent_task_id"], Result=output_json)
                else:
                    reason = error or f"Sub-orchestration '{iid}' was {status.lower()}"
                    event = _event(SUB_ORCH_FAILED, now_s,
                                   TaskScheduledId=row["parent_task_id"],
                                   Reason=reason, Details="")
                self._append_new(db, parent, [event])
        logger.info("Instance %s (%s) is %s", iid, row["name"], status)
        self._wake.set()

    def _continue_as_new(
        self, db: sqlite3.Connection, row: sqlite3.Row, input_json: str | None
    ) -> None:
        iid = row["instance_id"]
        now_s = format_time(self._now())
        execution_id = uuid.uuid4().hex
        db.execute("DELETE FROM work WHERE instance_id = ?", (iid,))
        # Events raised between executions are carried over (DTFx keeps unprocessed messages).
        carried = [
            json.loads(r[0])
            for r in db.execute(
                "SELECT event FROM history WHERE instance_id = ? AND is_new = 1 ORDER BY seq",
                (iid,),
            )
        ]
        db.execute("DELETE FROM history WHERE instance_id = ?", (iid,))
        db.execute(
            "UPDATE instances SET execution_id = ?, input = ?, next_id = 0, meta = '{}', "
            "status = 'Running', output = NULL, updated = ? WHERE instance_id = ?",
            (execution_id, input_json, now_s, iid),
        )
        started = _event(
            EXECUTION_STARTED,
            now_s,
            Name=row["name"],
            Input=input_json,
            Version="",
            OrchestrationInstance={"InstanceId": iid, "ExecutionId": execution_id},
        )
        self._append_new(
            db, iid, [started, *[e for e in carried if e["EventType"] == EVENT_RAISED]]
        )
        logger.info("Instance %s continued as new", iid)


async def _await(awaitable: Any) -> Any:
    return await awaitable
