"""Blob and timer triggers: a polling blob scanner with receipts, and an NCRONTAB scheduler."""

import json
import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from azure.functions.blob import BlobConverter, InputStream
from azure.functions.meta import Datum
from azure.functions.timer import TimerRequest, TimerRequestConverter

from devhost.app_loader import BlobTriggerSpec, TimerTriggerSpec
from devhost.clock import Clock
from devhost.engine import Engine
from devhost.history import format_time, parse_time
from devhost.ncrontab import Schedule
from devhost.timer_monitor import (
    ScheduleStatus,
    after_invocation,
    check_past_due,
    monitor_enabled,
)

__all__ = [
    "MAX_BLOB_ATTEMPTS",
    "BlobPoller",
    "TimerScheduler",
    "blob_input_stream",
    "blob_path_regex",
]

logger = logging.getLogger(__name__)

MAX_BLOB_ATTEMPTS = 5  # then the blob is "poisoned" (the host moves it to a poison queue)

Invoker = Callable[[Any, str, dict[str, Any]], None]


def blob_path_regex(path: str) -> tuple[str, str, re.Pattern[str]]:
    """Split ``container/pattern`` into (container, literal name prefix, name regex).

    Raises:
        ValueError: no container part.
    """
    container, sep, pattern = path.partition("/")
    if not container or not sep:
        raise ValueError(f"blob trigger path {path!r}: expected 'container/{{name}}'")
    prefix = pattern.split("{", 1)[0]
    regex = ""
    for literal, name in re.findall(r"([^{]*)(?:\{([^}]*)\})?", pattern):
        regex += re.escape(literal)
        if name:
            regex += f"(?P<{name}>.+)" if name.isidentifier() else ".+"
    return container, prefix, re.compile(regex or ".+")


class BlobPoller:
    """Polls the storage account for new or changed blobs and invokes blob-triggered functions.

    Receipts (function + blob name + ETag) live in the engine's state store, so each blob version
    fires exactly once, across restarts too. Each new blob version is invoked on its own, up to
    ``concurrency`` at a time, as the host dispatches blob trigger invocations independently: the
    blob listener queues one message per blob on the shared blob-trigger queue, and a queue
    listener runs up to ``batchSize`` + ``newBatchThreshold`` of them in parallel
    (Azure/azure-sdk-for-net ``Microsoft.Azure.WebJobs.Extensions.Storage.Blobs``
    ``BlobTriggerQueueWriter`` / ``BlobQueueTriggerExecutor``; ``QueuesOptions.BatchSize``, default
    16: "the maximum number of messages processed in parallel by the job is NewBatchThreshold
    plus BatchSize"). A blob still running is not dispatched again by a later scan.
    """

    def __init__(
        self,
        engine: Engine,
        triggers: list[tuple[BlobTriggerSpec, str, str]],  # spec, resolved path, connection str
        invoke: Invoker,
        interval: float,
        concurrency: int = 24,
    ) -> None:
        self._engine = engine
        self._triggers = triggers
        self._invoke = invoke
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="devhost-blobs", daemon=True)
        self._clients: dict[str, Any] = {}
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="devhost-blob")
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start polling in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling, let running invocations finish and close storage clients."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=True)
        for client in self._clients.values():
            client.close()

    def _client(self, conn: str) -> Any:
        from azure.storage.blob import BlobServiceClient

        if conn not in self._clients:
            self._clients[conn] = BlobServiceClient.from_connection_string(conn)
        return self._clients[conn]

    def _run(self) -> None:
        while not self._stop.is_set():
            for spec, path, conn in self._triggers:
                try:
                    self.scan(spec, path, conn)
                except Exception as exc:
                    logger.warning(
                        "blob trigger %s: scan of %s failed: %s", spec.function_name, path, exc
                    )
                if self._stop.is_set():
                    return
            self._stop.wait(self._interval)

    def scan(self, spec: BlobTriggerSpec, path: str, conn: str) -> list[Future[None]]:
        """Scan once; dispatch an invocation for each blob version without a receipt that is not
        already running. Returns the dispatched invocations."""
        container, prefix, regex = blob_path_regex(path)
        service = self._client(conn)
        container_client = service.get_container_client(container)
        if not container_client.exists():
            return []
        dispatched: list[Future[None]] = []
        for item in container_client.list_blobs(
            name_starts_with=prefix or None, include=["metadata"]
        ):
            match = regex.fullmatch(item.name)
            if match is None:
                continue
            key = f"blobreceipt:{spec.function_name}:{container}/{item.name}:{item.etag}"
            with self._lock:
                if key in self._running or self._engine.kv_get(key) is not None:
                    continue
                self._running.add(key)
            blob_client = container_client.get_blob_client(item.name)
            try:
                data = blob_client.download_blob(
                    etag=item.etag, match_condition=_if_match()
                ).readall()
            except Exception as exc:
                logger.info(
                    "blob %s/%s changed while reading (%s); next scan retries",
                    container,
                    item.name,
                    type(exc).__name__,
                )
                self._done(key)
                continue
            stream = blob_input_stream(container, item, data, blob_client.url)
            binding_data = {"name": match.groupdict().get("name", item.name), **match.groupdict()}
            provided = {spec.arg_name: stream, "_binding_data": binding_data}
            reason = f"New blob detected: {container}/{item.name}"
            dispatched.append(self._pool.submit(self._invoke_once, spec, key, reason, provided))
        return dispatched

    def _done(self, key: str) -> None:
        with self._lock:
            self._running.discard(key)

    def _invoke_once(
        self, spec: BlobTriggerSpec, key: str, reason: str, provided: dict[str, Any]
    ) -> None:
        attempts_key = key.replace("blobreceipt:", "blobattempts:", 1)
        try:
            self._invoke(spec, reason, provided)
        except Exception:
            attempts = int(self._engine.kv_get(attempts_key) or "0") + 1
            self._engine.kv_set(attempts_key, str(attempts))
            if attempts >= MAX_BLOB_ATTEMPTS:
                logger.error("%s failed %d times: poisoned (no more retries)", reason, attempts)
                self._engine.kv_set(key, json.dumps({"poison": True}))
        else:
            self._engine.kv_set(key, json.dumps({"at": format_time(self._engine.clock.now())}))
        finally:
            self._done(key)


def blob_input_stream(container: str, props: Any, data: bytes, url: str) -> InputStream:
    """The ``func.InputStream`` a blob-triggered function gets, from the blob's properties
    (``BlobProperties``, listed or fetched) and content.

    Built as the Python worker builds it: ``azure.functions.blob.BlobConverter.decode`` on the
    content (``bytes``) and the host's trigger metadata (``BlobTrigger``, ``Uri``,
    ``Properties``, ``Metadata``; azure-functions 1.26 ``azure/functions/blob.py``).
    """
    properties = {
        "ETag": str(props.etag),
        "Length": props.size,
        "ContentLength": props.size,
        "ContentType": props.content_settings.content_type,
        "LastModified": props.last_modified.isoformat() if props.last_modified else None,
        "CreatedOn": props.creation_time.isoformat() if props.creation_time else None,
        "BlobType": str(props.blob_type),
    }
    metadata = {
        "BlobTrigger": Datum(f"{container}/{props.name}", "string"),
        "Uri": Datum(url, "string"),
        "Properties": Datum(json.dumps(properties), "json"),
        "Metadata": Datum(json.dumps(dict(props.metadata or {})), "json"),
    }
    stream: InputStream = BlobConverter.decode(Datum(data, "bytes"), trigger_metadata=metadata)
    return stream


def timer_request(past_due: bool, status: dict[str, Any] | None) -> TimerRequest:
    """The ``func.TimerRequest``, decoded by ``azure.functions.timer.TimerRequestConverter``
    from the host's ``TimerInfo`` JSON (``Schedule``, ``ScheduleStatus``: null without the
    schedule monitor, ``IsPastDue``; ``devhost.timer_monitor``)."""
    info = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": status, "IsPastDue": past_due}
    request: TimerRequest = TimerRequestConverter.decode(
        Datum(json.dumps(info), "json"), trigger_metadata={}
    )
    return request


def _if_match() -> Any:
    from azure.core import MatchConditions

    return MatchConditions.IfNotModified


class TimerScheduler:
    """Fires timer-triggered functions on their schedules (engine clock: real or virtual)."""

    def __init__(
        self,
        engine: Engine,
        triggers: list[tuple[TimerTriggerSpec, Schedule]],
        invoke: Invoker,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._triggers = triggers
        self._invoke = invoke
        self._clock = clock
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(
                target=self._run,
                args=(spec, schedule),
                name=f"devhost-timer-{spec.function_name}",
                daemon=True,
            )
            for spec, schedule in triggers
        ]

    def start(self) -> None:
        """Start one thread per timer trigger."""
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop the timers."""
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=30)

    def _status(self, spec: TimerTriggerSpec, schedule: Schedule) -> ScheduleStatus | None:
        """The stored status; from devhost's older ``timer:last`` record when that is all."""
        stored = self._engine.kv_get(f"timer:status:{spec.function_name}")
        if stored is not None:
            try:
                return ScheduleStatus.from_json(stored)
            except ValueError:
                return None
        last_text = self._engine.kv_get(f"timer:last:{spec.function_name}")
        if last_text is None:
            return None
        last = parse_time(last_text)
        return ScheduleStatus(next=schedule.next_after(last), last=last, last_updated=last)

    def _fire(
        self,
        spec: TimerTriggerSpec,
        schedule: Schedule,
        status: ScheduleStatus | None,
        *,
        past_due: bool,
        startup: bool,
        reason: str,
    ) -> ScheduleStatus:
        """Invoke once; return the status after it (stored when the monitor runs)."""
        now = self._clock.now()
        request = timer_request(past_due, None if status is None else status.to_info())
        try:
            self._invoke(spec, reason, {spec.arg_name: request})
        except Exception:
            logger.debug("timer %s invocation failed", spec.function_name)
        current = status or ScheduleStatus(next=schedule.next_after(now))
        after = after_invocation(current, now, schedule, scheduled=not (past_due or startup))
        if status is not None:
            self._engine.kv_set(f"timer:status:{spec.function_name}", after.to_json())
        return after

    def _run(self, spec: TimerTriggerSpec, schedule: Schedule) -> None:
        now = self._clock.now()
        status: ScheduleStatus | None = None
        past_due = False
        if monitor_enabled(spec.use_monitor, schedule, now):
            status, past_due = check_past_due(self._status(spec, schedule), now, schedule)
            self._engine.kv_set(f"timer:status:{spec.function_name}", status.to_json())
        if past_due and status is not None:
            reason = f"Timer is past due (was due {format_time(status.next)})"
            status = self._fire(spec, schedule, status, past_due=True, startup=False, reason=reason)
        elif spec.run_on_startup:
            reason = "Timer fired at startup (run_on_startup)"
            fired = self._fire(spec, schedule, status, past_due=False, startup=True, reason=reason)
            status = fired if status is not None else None
        # From the start time, not a fresh reading: a clock that moved while a past-due run was
        # firing must not skip the occurrence it moved onto.
        upcoming = schedule.next_after(now)
        logger.info("timer %s: next occurrence %s", spec.function_name, format_time(upcoming))
        while not self._stop.is_set():
            now = self._clock.now()
            if now >= upcoming:
                # A scheduled invocation is never past due, however late (HandleTimerEvent).
                reason = f"Timer fired at {format_time(now)}"
                fired = self._fire(
                    spec, schedule, status, past_due=False, startup=False, reason=reason
                )
                status = fired if status is not None else None
                upcoming = schedule.next_after(max(upcoming, self._clock.now()))
                continue
            wait = (upcoming - now).total_seconds()
            # A virtual clock can jump: poll it often instead of sleeping the full interval.
            self._stop.wait(min(wait, 0.2 if self._clock.virtual else 1.0))
