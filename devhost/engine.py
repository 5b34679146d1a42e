"""Durable engine: runs orchestrations by driving the real Durable Functions SDK.

The engine plays the part of the Durable extension (DTFx + ``OutOfProcOrchestrationShim``). It
owns the threads and the client API; the pieces are elsewhere:

- ``devhost.history``: event and action types, time formats;
- ``devhost.store``: the SQLite state (every state transition is one transaction);
- ``devhost.episode``: one episode, pure (history in, decision out), around the SDK's
  orchestrator handle. The engine never re-implements the orchestrator side.

Persistence: a ``kill -9`` at any point followed by a restart resumes every instance: pending
episodes run again, activities that were scheduled without a recorded completion run again
(at-least-once, as on Azure), timers re-arm.
"""

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from devhost import episode as episodes
from devhost.activity import RunCoroutine, invoke_activity
from devhost.aio import LoopThread
from devhost.clock import Clock, RealClock, VirtualClock
from devhost.entities import EntityRunner
from devhost.errors import (
    InstanceExistsError,
    InstanceGoneError,
    InstanceNotFoundError,
    OrchestratorNotFoundError,
)
from devhost.history import (
    EVENT_RAISED,
    EXECUTION_TERMINATED,
    SUB_ORCH_FAILED,
    TERMINAL_STATUSES,
    TIMER_FIRED,
    format_time,
    history_view,
    new_event,
    parse_time,
)
from devhost.instance_filter import instance_filter
from devhost.store import InstanceRow, Store, Tx, WorkRow
from devhost.terminate import apply_terminate_request, request_terminate

__all__ = [
    "TERMINAL_STATUSES",
    "Engine",
    "InstanceExistsError",
    "InstanceGoneError",
    "InstanceNotFoundError",
    "OrchestratorNotFoundError",
    "RealClock",
    "VirtualClock",
    "format_time",
    "parse_time",
]

logger = logging.getLogger(__name__)


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
        entities: entity name → SDK handle (``devhost.entities``).
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
        function_timeout: timedelta | None = None,
        entities: Mapping[str, Callable[[str], str]] | None = None,
    ) -> None:
        if max_concurrent_activities < 1:
            raise ValueError("max_concurrent_activities: must be >= 1")
        if max_concurrent_orchestrations < 1:
            raise ValueError("max_concurrent_orchestrations: must be >= 1")
        self.orchestrators = dict(orchestrators)
        self.activities = dict(activities)
        self.clock = clock or RealClock()
        self.function_timeout = function_timeout  # host.json functionTimeout, for activities
        self.task_hub = task_hub
        self.replace_running = replace_running
        self.max_concurrent_activities = max_concurrent_activities
        self.max_concurrent_orchestrations = max_concurrent_orchestrations
        self._store = Store(state_path)
        self._lock = self._store.lock
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
        self.clock.subscribe(self._wake.set)
        self.entities = EntityRunner(self._store, entities or {}, self._now_s, self._wake.set)

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
        self.entities.start()

    def stop(self) -> None:
        """Stop the scheduler, wait for running episodes, close the state store (idempotent)."""
        if self._store.closed:
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
        self.entities.stop()
        self._store.close()
        if self._loop is not None and self._owns_loop:
            self._loop.close()

    def __enter__(self) -> "Engine":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _now_s(self) -> str:
        return format_time(self.clock.now())

    def kv_get(self, key: str) -> str | None:
        """Read a small persisted value (used by the host for keys and trigger state)."""
        with self._store.read() as tx:
            return tx.kv_get(key)

    def kv_set(self, key: str, value: str) -> None:
        """Persist a small value."""
        with self._store.transaction() as tx:
            tx.kv_set(key, value)

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
            input: JSON-serializable input, started as the SDK client starts it
                (``DurableOrchestrationClient.start_new`` posts ``json.dumps(input)`` as a JSON
                string, so the status shows ``input`` as that text; ignored when ``input_json``
                is given).
            input_json: the stored JSON token itself (the management API's request body).

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
            input_json = None if input is None else json.dumps(json.dumps(input))
        with self._store.transaction() as tx:
            tx.create_instance(
                name,
                iid,
                input_json,
                None,
                now_s=self._now_s(),
                replace_running=self.replace_running,
            )
        logger.info("Started orchestration %s (instance %s)", name, iid)
        self._wake.set()
        return iid

    def get_status(
        self,
        instance_id: str,
        show_history: bool = False,
        show_history_output: bool = False,
        show_input: bool = True,
    ) -> dict[str, Any] | None:
        """Return the extension's status JSON for an instance, or ``None`` for an unknown id."""
        with self._store.read() as tx:
            if self._store.closed:
                raise RuntimeError("engine is stopped")
            row = tx.instance(instance_id)
            if row is None:
                return None
            status = row.to_status(show_input=show_input)
            if show_history:
                status["history"] = history_view(tx.played_events(instance_id), show_history_output)
        return status

    def get_history_events(self, instance_id: str) -> list[dict[str, Any]]:
        """The raw DTFx history of the current execution (played events, then pending ones).

        This is what the next episode's context JSON is built from; tests replay it through the
        SDK to check that the engine's history is one the SDK accepts.
        """
        with self._store.read() as tx:
            return tx.all_events(instance_id)

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
        wanted = instance_filter(runtime_status, created_from, created_to, instance_id_prefix)
        with self._store.read() as tx:
            rows = tx.instances()
        result: list[dict[str, Any]] = []
        for row in filter(wanted, rows):
            result.append(row.to_status(show_input=show_input))
            if top is not None and len(result) >= top:
                break
        return result

    def wait_for_completion(self, instance_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """Block until the instance is terminal; return its status.

        Raises:
            TimeoutError: not terminal within ``timeout`` real seconds.
        """
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
        with self._store.transaction() as tx:
            tx.require_active(instance_id)
            now_s = self._now_s()
            event = new_event(EVENT_RAISED, now_s, Name=event_name, Input=data_json)
            tx.append_new(instance_id, [event], now_s)
        self._wake.set()

    def terminate(self, instance_id: str, reason: str = "") -> None:
        """Ask an instance to terminate, applied by its next episode (``devhost.terminate``);
        running activities are not stopped, as on Azure.

        Raises:
            InstanceNotFoundError: unknown id.
            InstanceGoneError: the instance is already terminal.
        """
        with self._store.transaction() as tx:
            request_terminate(tx, tx.require_active(instance_id), json.dumps(reason), self._now_s())
        logger.info("Terminating instance %s: %s", instance_id, reason)
        self._notify_status()
        self._wake.set()

    def suspend(self, instance_id: str, reason: str = "") -> None:
        """Suspend: events are kept but no episode runs until ``resume``."""
        with self._store.transaction() as tx:
            row = tx.require_active(instance_id)
            if row.status != "Suspended":
                meta = json.loads(row.meta)
                meta["suspended_from"] = row.status
                tx.set_status(instance_id, "Suspended", meta, self._now_s())
        self._notify_status()

    def resume(self, instance_id: str, reason: str = "") -> None:
        """Resume a suspended instance."""
        with self._store.transaction() as tx:
            row = tx.require_active(instance_id)
            if row.status == "Suspended":
                meta = json.loads(row.meta)
                previous = meta.pop("suspended_from", "Running")
                tx.set_status(instance_id, previous, meta, self._now_s())
        self._notify_status()
        self._wake.set()

    def purge(self, instance_id: str) -> bool:
        """Delete a terminal instance's state; False if unknown or still active."""
        with self._store.transaction() as tx:
            row = tx.instance(instance_id)
            if row is None or row.status not in TERMINAL_STATUSES:
                return False
            tx.delete_instance(instance_id)
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
        now = self.clock.now()
        with self._store.transaction() as tx:
            for work in tx.due_timers(format_time(now)):
                self._fire_timer(tx, work)
        with self._store.read() as tx:
            runnable = tx.runnable()
            activities = tx.activities()
            next_timer = tx.next_timer_due()
            self._dispatch(runnable, activities)
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

    def _dispatch(self, runnable: list[str], activities: list[WorkRow]) -> None:
        """Submit episodes and activities not already in flight (under the store lock)."""
        if self._episode_pool is None or self._activity_pool is None:
            return
        for iid in runnable:
            if iid not in self._inflight_episodes:
                self._inflight_episodes.add(iid)
                self._episode_pool.submit(self._run_episode_safely, iid)
        for work in activities:
            if work.work_id not in self._inflight_work:
                self._inflight_work.add(work.work_id)
                self._activity_pool.submit(self._run_activity, work)

    def _fire_timer(self, tx: Tx, work: WorkRow) -> None:
        tx.take_work(work.work_id)
        if not tx.still_current(work):
            return
        now_s = self._now_s()
        event = new_event(TIMER_FIRED, now_s, TimerId=work.task_id, FireAt=work.payload["fire_at"])
        tx.append_new(work.instance_id, [event], now_s)

    # ------------------------------------------------------------------ activities

    def _run_activity(self, work: WorkRow) -> None:
        name = work.payload["name"]
        etype, fields = invoke_activity(
            name,
            self.activities.get(name),
            work.payload.get("input"),
            self._runner,
            timeout=self.function_timeout,
        )
        try:
            with self._store.transaction() as tx:
                if tx.take_work(work.work_id) and tx.still_current(work):
                    now_s = self._now_s()
                    event = new_event(etype, now_s, TaskScheduledId=work.task_id, **fields)
                    tx.append_new(work.instance_id, [event], now_s)
        except (RuntimeError, sqlite3.ProgrammingError):  # the engine stopped meanwhile
            if not self._store.closed:
                raise
        finally:
            with self._lock:
                self._inflight_work.discard(work.work_id)
            self._wake.set()

    def _runner(self) -> RunCoroutine:
        """The asyncio loop's ``run`` (the loop is created on first use)."""
        with self._lock:
            if self._loop is None:
                self._loop = LoopThread()
                self._owns_loop = True
            return self._loop.run

    # ------------------------------------------------------------------ episodes

    def _run_episode_safely(self, iid: str) -> None:
        try:
            self._run_episode(iid)
        except Exception:
            if not self._store.closed:
                logger.exception("episode of instance %s failed inside devhost", iid)
        finally:
            with self._lock:
                self._inflight_episodes.discard(iid)
            self._wake.set()

    def _run_episode(self, iid: str) -> None:
        loaded = self._load_episode(iid)
        if loaded is None:
            return
        row, episode, consumed = loaded
        replay = episodes.begin(episode)
        with self._sdk_lock:
            state = episodes.invoke_orchestrator(
                row.name, self.orchestrators.get(row.name), replay.context_json
            )
        decision = episodes.decide(replay, state)
        with self._store.transaction() as tx:
            self._commit(tx, row, consumed, decision)
        self._notify_status()

    def _load_episode(
        self, iid: str
    ) -> tuple[InstanceRow, episodes.EpisodeInput, list[int]] | None:
        """The instance and its episode input, or None when there is nothing to play."""
        with self._store.read() as tx:
            if self._store.closed or self._stopping.is_set():
                return None
            row = tx.instance(iid)
            if row is None or row.status not in ("Pending", "Running"):
                return None
            past = tx.played_events(iid)
            pending = tx.pending_with_seq(iid)
        if not pending or any(e.get("EventType") == EXECUTION_TERMINATED for _, e in pending):
            with self._store.transaction() as wtx:
                ended = apply_terminate_request(wtx, iid, [e for _, e in pending], self._now_s())
                wtx.set_has_new(iid, False)
            if ended:
                self._notify_status()
            return None
        episode = episodes.EpisodeInput(
            instance_id=iid,
            name=row.name,
            input_json=row.input,
            parent_instance_id=row.parent_instance_id,
            past=past,
            new=[event for _, event in pending],
            meta=json.loads(row.meta),
            next_id=row.next_id,
            now=self.clock.now(),
        )
        return row, episode, [seq for seq, _ in pending]

    def _commit(
        self, tx: Tx, row: InstanceRow, consumed: list[int], decision: episodes.Decision
    ) -> None:
        """Store an episode's decision, unless the instance changed meanwhile."""
        iid = row.instance_id
        current = tx.instance(iid)
        if current is None or current.execution_id != row.execution_id:
            return  # purged or restarted meanwhile
        if current.status in TERMINAL_STATUSES:
            return  # terminated while the episode ran: its decisions are dropped
        tx.delete_events(iid, consumed)
        decision = self.entities.send(tx, current, decision)
        tx.append_played(iid, decision.played)
        tx.save_episode(
            iid,
            next_id=decision.next_id,
            meta=decision.meta,
            status="Running" if current.status == "Pending" else current.status,
            custom_status=decision.custom_status,
            now_s=decision.at,
        )
        self._end_or_schedule(tx, tx.require(iid), decision)

    def _end_or_schedule(self, tx: Tx, row: InstanceRow, decision: episodes.Decision) -> None:
        outcome = decision.outcome
        if isinstance(outcome, episodes.Failed):
            tx.finish(row, "Failed", outcome.message, outcome.message, now_s=self._now_s())
        elif isinstance(outcome, episodes.ContinuedAsNew):
            tx.continue_as_new(row, outcome.input_json, now_s=self._now_s())
        elif isinstance(outcome, episodes.Completed):
            tx.finish(row, "Completed", outcome.output_json, None, now_s=self._now_s())
        else:
            self._schedule(tx, row, decision)
        if outcome is not None:
            self._wake.set()

    def _schedule(self, tx: Tx, row: InstanceRow, decision: episodes.Decision) -> None:
        iid, execution_id = row.instance_id, row.execution_id
        for item in decision.work:
            tx.add_work(iid, execution_id, item.kind, item.task_id, item.due, item.payload)
        for child in decision.children:
            try:
                tx.create_instance(
                    child.name,
                    child.instance_id,
                    child.input_json,
                    (iid, execution_id, child.task_id),
                    now_s=self._now_s(),
                    replace_running=self.replace_running,
                )
            except InstanceExistsError as exc:
                now_s = self._now_s()
                failed = new_event(
                    SUB_ORCH_FAILED,
                    now_s,
                    TaskScheduledId=child.task_id,
                    Reason=str(exc),
                    Details="",
                )
                tx.append_new(iid, [failed], now_s)
