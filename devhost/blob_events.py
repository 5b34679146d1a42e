"""Blob events delivered by Event Grid: queued, then run through the blob-triggered function.

The webhook (``devhost.listener`` with ``devhost.eventgrid``) answers 202 once the events are
queued here; a worker thread then does what the blob extension's ``BlobQueueTriggerExecutor``
does with each queued message (azure-sdk-for-net
``sdk/storage/Microsoft.Azure.WebJobs.Extensions.Storage.Blobs/src/Listeners/BlobQueueTriggerExecutor.cs``,
commit f73044515445d4c509cc61260072cd56cfe1afd5):

- a function id that no blob trigger registered: dropped, logged (lines 76-82);
- a blob that no longer exists: dropped (lines 90-99);
- the ETag is compared only for ``LogsAndContainerScan`` (lines 101-109): an Event Grid delivery
  runs the function on the blob as it is now, and there is no blob receipt on this path, so a
  repeated delivery runs the function again (Event Grid is at-least-once; the app's own
  idempotency must hold);
- otherwise the function runs (line 135); a failure is retried, up to 5 attempts in all
  (``BlobsOptions.MaxDequeueCount``), then the message is poisoned.

devhost's own additions: only functions indexed with ``"source": "EventGrid"`` take deliveries
(the poller takes the others), a blob outside the trigger's resolved path is dropped with a
warning (in Azure the subscription's subject filter keeps them away), and the queue lives in
memory, so events not yet run when devhost stops are lost (logged).
"""

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devhost.app_loader import BlobTriggerSpec
from devhost.eventgrid import BlobEvent, short_function_name
from devhost.triggers import MAX_BLOB_ATTEMPTS, blob_input_stream, blob_path_regex

__all__ = ["BlobEventQueue"]

logger = logging.getLogger(__name__)

Invoker = Callable[[Any, str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Target:
    spec: BlobTriggerSpec
    path: str  # resolved trigger path, container/pattern
    conn: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Item:
    target: _Target
    event: BlobEvent
    attempt: int


class BlobEventQueue:
    """Runs Event Grid-delivered blob events through their functions, one at a time.

    Args:
        triggers: (spec, resolved path, connection string) of the EventGrid-source triggers.
        invoke: runs a function (raises when it fails).
        retry_delay: seconds before a failed event is tried again.
        concurrency: events run at once (host.json queues ``batchSize`` + ``newBatchThreshold``).
    """

    def __init__(
        self,
        triggers: list[tuple[BlobTriggerSpec, str, str]],
        invoke: Invoker,
        *,
        retry_delay: float = 1.0,
        concurrency: int = 24,
    ) -> None:
        self._targets = {
            spec.function_name: _Target(spec=spec, path=path, conn=conn)
            for spec, path, conn in triggers
        }
        self._invoke = invoke
        self._retry_delay = retry_delay
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._stop = threading.Event()
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        # Each event runs on its own, up to ``concurrency`` at once, as the blob extension's queue
        # listener dispatches its messages (see ``devhost.triggers.BlobPoller``).
        self._threads = [
            threading.Thread(target=self._run, name=f"devhost-blob-events-{n}", daemon=True)
            for n in range(max(1, concurrency))
        ]

    @property
    def function_names(self) -> list[str]:
        """The functions that take Event Grid deliveries."""
        return sorted(self._targets)

    def start(self) -> None:
        """Start the worker threads."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the worker; events still queued are dropped (logged)."""
        self._stop.set()
        with self._lock:
            for timer in self._timers:
                timer.cancel()
            pending = len(self._timers)
            self._timers.clear()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=30)
        pending += sum(1 for item in _drain(self._queue) if item is not None)
        if pending:
            logger.warning("devhost stopping: %d queued blob event(s) dropped", pending)
        for client in self._clients.values():
            client.close()

    def enqueue(self, function_name: str | None, events: tuple[BlobEvent, ...]) -> None:
        """Queue ``events`` for the function ``functionName`` names (``Host.Functions.<fn>``
        or ``<fn>``); for no such function they are dropped with a warning, as the extension
        drops them when it dequeues them."""
        name = short_function_name(function_name)
        target = self._targets.get(name) if name else None
        if target is None:
            logger.warning(
                "Event Grid delivery for functionName=%r: no blob trigger with source EventGrid "
                "has that name (known: %s); %d event(s) dropped",
                function_name,
                ", ".join(self.function_names) or "none",
                len(events),
            )
            return
        for event in events:
            self._queue.put(_Item(target=target, event=event, attempt=1))

    # ------------------------------------------------------------------ worker

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            try:
                if item is not None and not self._stop.is_set():
                    self._handle(item)
            finally:
                self._queue.task_done()

    def _handle(self, item: _Item) -> None:
        try:
            self.process(item.target, item.event)
        except Exception as exc:
            event = item.event
            where = f"{event.container}/{event.blob_name}"
            if item.attempt >= MAX_BLOB_ATTEMPTS:
                logger.error(
                    "blob %s failed %d times in %s: poisoned (no more retries)",
                    where,
                    item.attempt,
                    item.target.spec.function_name,
                )
                return
            logger.info(
                "blob %s: attempt %d failed (%s); retrying", where, item.attempt, type(exc).__name__
            )
            self._retry(_Item(target=item.target, event=event, attempt=item.attempt + 1))

    def _retry(self, item: _Item) -> None:
        def put() -> None:
            with self._lock:
                self._timers.discard(timer)
            if not self._stop.is_set():
                self._queue.put(item)

        timer = threading.Timer(self._retry_delay, put)
        timer.daemon = True
        with self._lock:
            if self._stop.is_set():
                return
            self._timers.add(timer)
        timer.start()

    def _client(self, conn: str) -> Any:
        from azure.storage.blob import BlobServiceClient

        with self._lock:
            if conn not in self._clients:
                self._clients[conn] = BlobServiceClient.from_connection_string(conn)
            return self._clients[conn]

    def process(self, target: _Target, event: BlobEvent) -> bool:
        """Run the function for one event; False when the event is dropped.

        Raises:
            Exception: reading the blob or the function failed (the caller retries).
        """
        from azure.core.exceptions import ResourceNotFoundError

        spec = target.spec
        container, _, regex = blob_path_regex(target.path)
        match = regex.fullmatch(event.blob_name) if event.container == container else None
        where = f"{event.container}/{event.blob_name}"
        if match is None:
            logger.warning(
                "Event Grid blob %s does not match %s's path %s: dropped",
                where,
                spec.function_name,
                target.path,
            )
            return False
        blob_client = self._client(target.conn).get_blob_client(event.container, event.blob_name)
        try:
            props = blob_client.get_blob_properties()
            data = blob_client.download_blob(etag=props.etag, match_condition=_if_match()).readall()
        except ResourceNotFoundError:
            logger.info("Event Grid blob %s no longer exists: dropped", where)
            return False
        stream = blob_input_stream(event.container, props, data, blob_client.url)
        binding_data = {"name": match.groupdict().get("name", event.blob_name), **match.groupdict()}
        self._invoke(
            spec,
            f"New blob detected(EventGrid): {where}",
            {spec.arg_name: stream, "_binding_data": binding_data},
        )
        return True


def _if_match() -> Any:
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified


def _drain(q: "queue.Queue[_Item | None]") -> list[_Item | None]:
    items: list[_Item | None] = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items
