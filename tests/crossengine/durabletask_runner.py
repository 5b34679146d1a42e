"""Run a scenario on Microsoft's ``durabletask`` (its in-memory backend and real gRPC worker).

The backend is ``durabletask.testing.InMemoryOrchestrationBackend`` (the package's own test
backend: a gRPC sidecar servicer kept in memory, served in-process on 127.0.0.1), driven by the
package's real ``TaskHubGrpcWorker`` and ``TaskHubGrpcClient``. Two things are changed, both to
run it in virtual time, neither in what it decides:

- its clock: the module's ``datetime.now`` (used for ``OrchestratorStarted`` timestamps, i.e.
  the orchestrator's ``current_utc_datetime``) reads a :class:`VirtualClock`;
- its timers: instead of a thread that sleeps until ``fireAt``, a timer is queued and fired
  when the clock reaches it; the clock jumps to the next timer only when the backend is idle
  (no orchestration queued or in flight, no activity scheduled and not yet completed), as
  devhost's ``auto_advance`` does.

What the engine did is read where it records it: the actions of each ``CompleteOrchestratorTask``
(``scheduleTask``, ``createTimer``, ``completeOrchestration``), each ``CompleteActivityTask`` and
the custom status stored after each episode.
"""

import heapq
import itertools
import json
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from typing import Any, Self

import grpc  # type: ignore[import-untyped]  # (no stubs; only server calls)
import pytest
from durabletask import client as dt_client
from durabletask import worker as dt_worker
from durabletask.internal import helpers
from durabletask.internal import orchestrator_service_pb2 as pb
from durabletask.internal import orchestrator_service_pb2_grpc as stubs
from durabletask.testing import in_memory_backend
from durabletask.testing.in_memory_backend import InMemoryOrchestrationBackend

from devhost.engine import VirtualClock
from orchestrators import batch_run
from tests.crossengine.adapter import as_durabletask_orchestrator, raw_generator
from tests.crossengine.scenarios import (
    ACTIVITIES,
    SLEEPER,
    Scenario,
    install_clock_hooks,
    scripted_service,
    xeng_clock_stop,
)
from tests.crossengine.trace import (
    ACTIVITY,
    CONTINUE_AS_NEW,
    TIMER,
    Outcome,
    Step,
    Trace,
    dedupe,
    scrub,
)
from tests.orchestration.conftest import T0

_quiet = logging.getLogger("tests.crossengine.durabletask")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


class DurableTaskJournal:
    """The actions, activity results and custom statuses of one instance, in order."""

    def __init__(self, instance_id: str, start: datetime) -> None:
        self.instance_id = instance_id
        self.start = start
        self.steps: list[Step] = []
        self.statuses: list[tuple[float, Any]] = []
        self._execution = 0
        self._index: dict[tuple[int, int], int] = {}

    def _seconds(self, when: datetime) -> float:
        return (when - self.start).total_seconds()

    def episode(self, request: pb.OrchestratorResponse, custom_status: str | None, now: datetime):
        if request.instanceId != self.instance_id:
            return
        at = self._seconds(now)
        for action in request.actions:
            if action.HasField("scheduleTask"):
                self._index[(self._execution, action.id)] = len(self.steps)
                self.steps.append(Step(kind=ACTIVITY, at=at, name=action.scheduleTask.name))
            elif action.HasField("createTimer"):
                fire = self._seconds(action.createTimer.fireAt.ToDatetime(tzinfo=UTC))
                self.steps.append(Step(kind=TIMER, at=at, fire=fire))
            elif action.HasField("completeOrchestration") and (
                action.completeOrchestration.orchestrationStatus
                == pb.ORCHESTRATION_STATUS_CONTINUED_AS_NEW
            ):
                self.steps.append(Step(kind=CONTINUE_AS_NEW, at=at))
                self._execution += 1
        self.statuses.append((at, json.loads(custom_status) if custom_status else None))

    def activity_done(self, request: pb.ActivityResponse) -> None:
        if request.instanceId != self.instance_id:
            return
        i = self._index[(self._execution, request.taskId)]
        failed = bool(request.failureDetails.errorMessage)
        step = self.steps[i]
        outcome = "failed" if failed else "completed"
        self.steps[i] = Step(kind=ACTIVITY, at=step.at, name=step.name, outcome=outcome)


class VirtualTimeBackend(InMemoryOrchestrationBackend):
    """durabletask's in-memory backend on a virtual clock, served on 127.0.0.1 only."""

    def __init__(self, clock: VirtualClock, journal: DurableTaskJournal) -> None:
        super().__init__(port=0)
        self.clock = clock
        self.journal = journal
        self.address = ""
        self._timers: list[tuple[datetime, int, str, int]] = []
        self._order = itertools.count()
        self._open_activities = 0

    def start(self) -> str:
        """As the base class, but bound to 127.0.0.1 on a free port (the base binds ``[::]``)."""
        self._shutdown_event.clear()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
        stubs.add_TaskHubSidecarServiceServicer_to_server(self, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        self.address = f"127.0.0.1:{port}"
        return self.address

    # -- virtual timers ---------------------------------------------------------------------
    def _process_create_timer_action(
        self, instance: in_memory_backend.OrchestrationInstance, action: pb.OrchestratorAction
    ) -> None:
        """The base class's bookkeeping; the firing is queued instead of slept for."""
        fire_at = action.createTimer.fireAt.ToDatetime(tzinfo=UTC)
        instance.history.append(helpers.new_timer_created_event(action.id, fire_at))
        if instance.status == pb.ORCHESTRATION_STATUS_PENDING:
            instance.status = pb.ORCHESTRATION_STATUS_RUNNING
        heapq.heappush(self._timers, (fire_at, next(self._order), instance.instance_id, action.id))

    def idle_next_due(self) -> datetime | None:
        """The next timer's time if nothing is queued or running, else None."""
        with self._lock:
            busy = (
                self._orchestration_queue or self._orchestration_in_flight or self._open_activities
            )
            if busy or not self._timers:
                return None
            return self._timers[0][0]

    def fire_due(self) -> None:
        """Fire every timer due at the clock's time (as the base class's timer thread does)."""
        with self._lock:
            now = self.clock.now()
            while self._timers and self._timers[0][0] <= now:
                fire_at, _, iid, timer_id = heapq.heappop(self._timers)
                instance = self._instances.get(iid)
                if instance is None or self._is_terminal_status(instance.status):
                    continue
                instance.pending_events.append(helpers.new_timer_fired_event(timer_id, fire_at))
                instance.last_updated_at = now
                self._enqueue_orchestration(iid)

    # -- what the engine did ----------------------------------------------------------------
    def _process_schedule_task_action(
        self, instance: in_memory_backend.OrchestrationInstance, action: pb.OrchestratorAction
    ) -> None:
        super()._process_schedule_task_action(instance, action)
        self._open_activities += 1

    def CompleteActivityTask(
        self, request: pb.ActivityResponse, context: grpc.ServicerContext
    ) -> pb.CompleteTaskResponse:
        with self._lock:
            self._open_activities -= 1
            self.journal.activity_done(request)
            return super().CompleteActivityTask(request, context)

    def CompleteOrchestratorTask(
        self, request: pb.OrchestratorResponse, context: grpc.ServicerContext
    ) -> pb.CompleteTaskResponse:
        with self._lock:
            response = super().CompleteOrchestratorTask(request, context)
            instance = self._instances.get(request.instanceId)
            stored = instance.custom_status if instance is not None else None
            self.journal.episode(request, stored, self.clock.now())
            return response


def _virtual_datetime(clock: VirtualClock) -> type[datetime]:
    class VirtualDatetime(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Self:
            now = clock.now()
            value = now.astimezone(tz) if tz is not None else now.replace(tzinfo=None)
            return cls.combine(value.date(), value.timetz())

    return VirtualDatetime


@contextmanager
def _clock_driver(backend: VirtualTimeBackend) -> Iterator[None]:
    """Move the clock to the next timer whenever the backend is idle (devhost's auto_advance)."""
    stop = threading.Event()

    def drive() -> None:
        while not stop.is_set():
            due = backend.idle_next_due()
            if due is None:
                stop.wait(0.002)
                continue
            backend.clock.advance_to(due)  # listeners (the cancel) run before the timers fire
            backend.fire_due()

    thread = threading.Thread(target=drive, name="xeng-clock", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _activity(name: str, binding: Callable[[Any], Any]) -> Callable[..., Any]:
    def activity(ctx: Any, input: Any) -> Any:
        return binding(input)

    activity.__name__ = name
    return activity


def _outcome(state: dt_client.OrchestrationState | None) -> Outcome:
    if state is None:
        raise TimeoutError("durabletask: the instance did not finish")
    status = state.runtime_status.name.title()
    if status == "Completed":
        output = json.loads(state.serialized_output) if state.serialized_output else None
        return Outcome(status=status, output=output)
    failure = state.failure_details
    return Outcome(status=status, message=failure.message if failure else None)


def run_on_durabletask(scenario: Scenario, *, timeout: float = 60.0) -> Trace:
    """Run ``scenario`` on durabletask's in-memory backend and return what it recorded."""
    clock = VirtualClock(start=T0)
    iid = scenario.instance_id
    journal = DurableTaskJournal(iid, T0)
    backend = VirtualTimeBackend(clock, journal)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(in_memory_backend, "datetime", _virtual_datetime(clock))
        address = backend.start()
        client = dt_client.TaskHubGrpcClient(host_address=address, logger=_quiet)
        worker = dt_worker.TaskHubGrpcWorker(host_address=address, logger=_quiet)
        worker.add_orchestrator(
            as_durabletask_orchestrator(
                raw_generator(batch_run.batch_endpoint_run), batch_run.ORCHESTRATOR_NAME
            )
        )
        worker.add_orchestrator(
            as_durabletask_orchestrator(raw_generator(xeng_clock_stop), SLEEPER)
        )
        for name, binding in ACTIVITIES.items():
            worker.add_activity(_activity(name, binding))

        def raise_cancel() -> None:
            client.raise_orchestration_event(iid, "cancel", data={"reason": "cross-engine"})

        try:
            with scripted_service(scenario, raise_cancel) as service:
                worker.start()
                hold_at = install_clock_hooks(scenario, clock, service, raise_cancel)
                if hold_at is not None:
                    client.schedule_new_orchestration(
                        SLEEPER, input=hold_at, instance_id=f"{iid}-clock"
                    )
                client.schedule_new_orchestration(
                    batch_run.ORCHESTRATOR_NAME, input=scenario.run_input(), instance_id=iid
                )
                with _clock_driver(backend):
                    state = client.wait_for_orchestration_completion(iid, timeout=int(timeout))
                base_url = service.endpoint.base_url
        finally:
            worker.stop()
            client.close()
            backend.stop()
    return Trace(
        engine="durabletask",
        start=T0,
        steps=tuple(journal.steps),
        statuses=scrub(dedupe(journal.statuses), base_url),
        outcome=scrub(_outcome(state), base_url),
        stored_status=scrub(_stored_status(state), base_url),
    )


def _stored_status(state: dt_client.OrchestrationState | None) -> Any:
    text = state.serialized_custom_status if state is not None else None
    return json.loads(text) if text else None
