"""Durable entities: calls and signals from orchestrations, and the entity batches that run them.

devhost plays the Durable extension's part of the out-of-process entity protocol (Azure/
azure-functions-durable-extension, commit a7c6d694, under ``src/WebJobs.Extensions.DurableTask``):

- **Orchestrator side** (``schedule``). The SDK's ``CallEntityAction`` (type 7) and
  ``SignalEntityAction`` (type 9) carry ``instanceId`` ``@name@key``, ``operation`` and ``input``
  (``Listener/OutOfProcOrchestrationShim.cs`` lines 145-158 call ``CallEntityAsync`` and
  ``SignalEntity``). ``DurableOrchestrationContext.CallDurableTaskFunctionAsync`` (lines 651-698)
  then builds a ``RequestMessage`` (``EntityScheduler/RequestMessage.cs``: ``op``, ``signal``,
  ``input``, ``id`` a deterministic GUID, ``parent``, ``parentExecution``) and sends it with
  DTFx ``SendEvent`` under the event name ``op`` (``EntityMessageEventNames.cs`` line 13), which
  DTFx records as ``EventSent`` (EventId = the action's sequence id, ``InstanceId`` = the entity,
  ``Input`` = the message JSON). A call then waits for the external event named after the GUID
  (``WaitForEntityResponse``, lines 835-847). The Python SDK expects exactly that:
  ``TaskOrchestrationExecutor.process_event`` re-keys the open task of an ``EventSent`` from its
  EventId to ``json.loads(Input)["id"]``, and ``set_task_value`` reads the ``EventRaised`` of
  that name as a ``ResponseMessage`` (``result``; ``exceptionType`` marks an error), the same for
  replay schemas V1 to V3.
- **Entity side** (``EntityRunner``). Messages queue per entity (``entity_ops``, FIFO) and each
  entity runs one batch at a time. The batch is handed to the app's entity function as the JSON
  the extension builds for out-of-proc entities (``Bindings/EntityTriggerAttributeBindingProvider
  .cs`` lines 181-200: ``self`` {name, key}, ``exists``, ``state``, ``batch`` [{name, input,
  isSignal}]); the SDK answers ``entityExists``, ``entityState``, ``results`` [{isError, result,
  ...}] and ``signals`` (``Listener/TaskEntityShim.cs`` ``ExecuteOutOfProcBatch`` lines 564-700,
  ``OutOfProcResult`` lines 715-790). The state is stored, and each call gets its response
  (``ResponseMessage.cs``: ``result``, ``exceptionType`` "Error" when ``isError``) as an
  ``EventRaised`` named by the request id, sent to the calling execution; signals the entity
  sends are queued like any other. A function that throws fails the whole batch's operations
  with the error, the state unchanged (as the extension's timeout path does, lines 570-586).

State, the queue and responses are written in one transaction per batch: after a ``kill -9``
the unprocessed messages run on the next start; a committed batch never runs twice.
Not emulated: scheduled signals (type 10), critical sections (locks), entity deletion by the
client API.
"""

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from devhost.history import EVENT_RAISED, TERMINAL_STATUSES, new_event
from devhost.store import InstanceRow, Store, Tx

__all__ = ["ENTITY_WORK", "EntityRunner", "parse_entity_id", "request_message"]

logger = logging.getLogger(__name__)

#: ``WorkItem.kind`` of an entity message in an episode's decision.
ENTITY_WORK = "entity"
#: Operations handed to the entity function at once.
MAX_BATCH = 100
EVENT_SENT = 14

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entities (entity_id TEXT PRIMARY KEY, name TEXT NOT NULL, "
    "key TEXT NOT NULL, exists_ INTEGER NOT NULL, state TEXT, updated TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS entity_ops (op_id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "entity_id TEXT NOT NULL, request TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_entity_ops ON entity_ops (entity_id, op_id)",
)

#: An entity handle: context JSON in, result JSON out (``DFApp`` entity triggers).
EntityHandle = Callable[[str], str]


def parse_entity_id(scheduler_id: str) -> tuple[str, str]:
    """``@name@key`` → (name, key), as the SDK's ``EntityId.get_entity_id``.

    Raises:
        ValueError: not of that form.
    """
    parts = scheduler_id[1:].split("@", 1) if scheduler_id.startswith("@") else []
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise ValueError(f"not an entity instance id: {scheduler_id!r}")
    return parts[0].lower(), parts[1]


def request_message(
    instance_id: str, now_s: str, task_id: int, action: Mapping[str, Any], *, signal: bool
) -> dict[str, Any]:
    """The ``RequestMessage`` an orchestration sends (``parentExecution`` is added on commit).

    The id is a name-based UUID of the instance, the episode time and the sequence id, as the
    extension's ``NewGuid`` (instance id, orchestration time, counter): the same on every replay.
    """
    guid = uuid.uuid5(uuid.NAMESPACE_URL, f"{instance_id}_{now_s}_{task_id}")
    message: dict[str, Any] = {"op": action.get("operation"), "id": str(guid)}
    if signal:
        message["signal"] = True
    if action.get("input") is not None:
        # SetInput serializes the action's input (a JSON string from the SDK) once more; the
        # SDK's entity context decodes twice (``DurableEntityContext.get_input``).
        message["input"] = json.dumps(action.get("input"))
    message["parent"] = instance_id
    return message


def schedule(
    instance_id: str, now_s: str, task_id: int, action: Mapping[str, Any], *, signal: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``EventSent`` history event and the work payload of an entity call or signal."""
    target = str(action.get("instanceId") or "")
    message = request_message(instance_id, now_s, task_id, action, signal=signal)
    event = new_event(
        EVENT_SENT, now_s, task_id, InstanceId=target, Name="op", Input=json.dumps(message)
    )
    return event, {"target": target, "request": message}


class EntityRunner:
    """Runs entity batches on one thread, one entity at a time (so each entity is serial).

    Args:
        store: the engine's store (its lock and connection; the tables are created here).
        handlers: entity name (lower case) → SDK handle.
        now_s: the engine clock's time (``format_time``).
        wake_engine: called after responses were queued for orchestrations.
    """

    def __init__(
        self,
        store: Store,
        handlers: Mapping[str, EntityHandle],
        now_s: Callable[[], str],
        wake_engine: Callable[[], None],
    ) -> None:
        self._store = store
        self._handlers = {k.lower(): v for k, v in handlers.items()}
        self._now_s = now_s
        self._wake_engine = wake_engine
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        with store.transaction() as tx:
            for statement in _SCHEMA:
                tx.db.execute(statement)

    def start(self) -> None:
        """Start the entity thread (persisted messages run first)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="devhost-entities", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (a batch in progress finishes; its commit may be dropped)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # ------------------------------------------------------------------ sending

    def send(self, tx: Tx, row: InstanceRow, decision: Any) -> Any:
        """Queue the entity messages of an episode's decision (whatever its outcome: DTFx sends
        the messages of the last episode too) and return the decision without them."""
        messages = [w for w in decision.work if w.kind == ENTITY_WORK]
        if not messages:
            return decision
        for item in messages:
            request = {**item.payload["request"], "parentExecution": row.execution_id}
            self.enqueue(tx, item.payload["target"], request)
        return replace(decision, work=[w for w in decision.work if w.kind != ENTITY_WORK])

    def enqueue(self, tx: Tx, target: str, request: Mapping[str, Any]) -> None:
        """Queue one request message for the entity ``target`` (``@name@key``)."""
        tx.db.execute(
            "INSERT INTO entity_ops (entity_id, request) VALUES (?, ?)",
            (target, json.dumps(request)),
        )
        self._wake.set()

    def signal(self, target: str, operation: str, input_json: str | None) -> None:
        """A client's signal (management API): queue it in its own transaction."""
        parse_entity_id(target)
        request: dict[str, Any] = {"op": operation, "id": str(uuid.uuid4()), "signal": True}
        if input_json is not None:
            request["input"] = input_json
        with self._store.transaction() as tx:
            self.enqueue(tx, target, request)

    def read(self, target: str) -> tuple[bool, Any]:
        """``(exists, state)`` of an entity (state decoded from its JSON)."""
        with self._store.read() as tx:
            found = tx.db.execute(
                "SELECT exists_, state FROM entities WHERE entity_id = ?", (target,)
            ).fetchone()
        if found is None or not found[0]:
            return False, None
        return True, None if found[1] is None else json.loads(found[1])

    def pending(self) -> int:
        """Messages not processed yet (all entities)."""
        with self._store.read() as tx:
            return int(tx.db.execute("SELECT COUNT(*) FROM entity_ops").fetchone()[0])

    # ------------------------------------------------------------------ running

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                busy = self._run_one_round()
            except (RuntimeError, sqlite3.ProgrammingError):
                if self._store.closed:
                    return
                logger.exception("devhost entity runner error")
                busy = False
            except Exception:
                logger.exception("devhost entity runner error")
                busy = False
            if not busy:
                self._wake.wait(1.0)

    def _run_one_round(self) -> bool:
        with self._store.read() as tx:
            if self._store.closed or self._stopping.is_set():
                return False
            targets = [
                r[0]
                for r in tx.db.execute(
                    "SELECT entity_id FROM entity_ops GROUP BY entity_id ORDER BY MIN(op_id)"
                ).fetchall()
            ]
        for target in targets:
            if self._stopping.is_set():
                return False
            self._run_batch(target)
        return bool(targets)

    def _run_batch(self, target: str) -> None:
        with self._store.read() as tx:
            ops = tx.db.execute(
                "SELECT op_id, request FROM entity_ops WHERE entity_id = ? ORDER BY op_id LIMIT ?",
                (target, MAX_BATCH),
            ).fetchall()
            found = tx.db.execute(
                "SELECT exists_, state FROM entities WHERE entity_id = ?", (target,)
            ).fetchone()
        requests = [json.loads(r[1]) for r in ops]
        exists, state = (bool(found[0]), found[1]) if found else (False, None)
        result = self._invoke(target, exists, state, requests)
        with self._store.transaction() as tx:
            self._commit(tx, target, [int(r[0]) for r in ops], requests, result)
        self._wake_engine()

    def _invoke(
        self, target: str, exists: bool, state: str | None, requests: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """Call the entity function; a failure (or no such entity) fails every operation."""
        try:
            name, key = parse_entity_id(target)
            handler = self._handlers.get(name)
            if handler is None:
                raise LookupError(f"The function '{name}' doesn't exist or is not an entity.")
            context = {
                "self": {"name": name, "key": key},
                "exists": exists,
                "state": state,
                "batch": [
                    {
                        "name": r.get("op"),
                        "input": r.get("input"),
                        "isSignal": bool(r.get("signal")),
                    }
                    for r in requests
                ],
            }
            answer = json.loads(handler(json.dumps(context)))
            if not isinstance(answer, dict) or len(answer.get("results") or []) != len(requests):
                raise ValueError("the entity function returned a malformed batch result")
            return answer
        except Exception as exc:
            logger.warning("entity %s: batch failed: %s", target, exc)
            failed = {"isError": True, "result": json.dumps(f"{type(exc).__name__}: {exc}")}
            return {
                "entityExists": exists,
                "entityState": state,
                "results": [failed] * len(requests),
                "signals": [],
            }

    def _commit(
        self,
        tx: Tx,
        target: str,
        op_ids: list[int],
        requests: list[dict[str, Any]],
        result: dict[str, Any],
    ) -> None:
        now_s = self._now_s()
        name, key = parse_entity_id(target)
        tx.db.execute(
            "INSERT OR REPLACE INTO entities (entity_id, name, key, exists_, state, updated) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                target,
                name,
                key,
                int(bool(result.get("entityExists"))),
                result.get("entityState"),
                now_s,
            ),
        )
        marks = ",".join("?" for _ in op_ids)
        tx.db.execute(f"DELETE FROM entity_ops WHERE op_id IN ({marks})", op_ids)
        for request, outcome in zip(requests, result["results"], strict=True):
            if not request.get("signal"):
                self._respond(tx, request, outcome, now_s)
        for signal in result.get("signals") or []:
            self._forward_signal(tx, target, signal)

    def _respond(
        self, tx: Tx, request: dict[str, Any], outcome: dict[str, Any], now_s: str
    ) -> None:
        parent = tx.instance(str(request.get("parent") or ""))
        if (
            parent is None
            or parent.status in TERMINAL_STATUSES
            or parent.execution_id != request.get("parentExecution")
        ):
            logger.info("entity response %s dropped: its caller is gone", request.get("id"))
            return
        response: dict[str, Any] = {"result": outcome.get("result")}
        if outcome.get("isError"):
            response["exceptionType"] = "Error"
        event = new_event(EVENT_RAISED, now_s, Name=str(request["id"]), Input=json.dumps(response))
        tx.append_new(parent.instance_id, [event], now_s)

    def _forward_signal(self, tx: Tx, source: str, signal: Any) -> None:
        target = signal.get("target") if isinstance(signal, dict) else None
        if isinstance(target, dict):
            target = f"@{str(target.get('name', '')).lower()}@{target.get('key', '')}"
        try:
            parse_entity_id(str(target))
        except ValueError:
            logger.warning("entity %s: signal to an invalid target dropped", source)
            return
        request = {
            "op": signal.get("name"),
            "id": str(uuid.uuid4()),
            "signal": True,
            "parent": source,
        }
        if signal.get("input") is not None:
            request["input"] = signal["input"]
        self.enqueue(tx, str(target), request)
