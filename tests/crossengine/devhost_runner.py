"""Run a scenario on devhost's engine (the real azure-functions-durable SDK, virtual time).

What devhost did is read where devhost itself records it: the SDK handle is wrapped (the
engine's public seam, ``name -> handle(context JSON) -> state JSON``) so each episode's context
history (the engine's events of the current execution) and the custom status it is handed are
kept. Steps come from the history's ``TaskScheduled`` / ``TaskCompleted`` / ``TaskFailed`` /
``TimerCreated`` events, execution by execution.
"""

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from devhost.engine import Engine, VirtualClock, parse_time
from orchestrators import batch_run
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
from tests.orchestration.conftest import T0, handle

# DTFx ``EventType`` numbers (DurableTask.Core ``EventType``), as the SDK's context JSON has them.
_TASK_SCHEDULED, _TASK_COMPLETED, _TASK_FAILED = 4, 5, 6
_TIMER_CREATED, _ORCHESTRATOR_STARTED, _EXECUTION_STARTED = 10, 12, 0
#: azure-functions-durable's ``CreateTimer`` action type, and its failure-state marker.
_CREATE_TIMER_ACTION = 5
_OUT_OF_PROC_MARKER = "$OutOfProcData$:"


class DevhostJournal:
    """Keeps, per execution, the longest history the SDK was handed, and each episode's status."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.executions: list[tuple[str, list[dict[str, Any]]]] = []
        self.statuses: list[tuple[float, Any]] = []
        #: Fire times of timers the SDK reported already cancelled in the episode creating them.
        self.born_cancelled: set[float] = set()
        self._timers_seen: set[float] = set()

    def wrap(self, sdk_handle: Callable[[Any], str]) -> Callable[[Any], str]:
        def recorded(context: Any) -> str:
            # devhost hands the worker's OrchestrationContext (devhost.worker_io); its body is
            # the context JSON.
            context_json: str = getattr(context, "body", context)
            try:
                result = sdk_handle(context)
            except Exception as exc:
                # A failing orchestrator: the SDK raises "<message>$OutOfProcData$:<state JSON>".
                _, marker, data = str(exc).partition(_OUT_OF_PROC_MARKER)
                if marker:
                    self._observe(json.loads(context_json), json.loads(data))
                raise
            self._observe(json.loads(context_json), json.loads(result))
            return result

        return recorded

    def _seconds(self, value: str) -> float:
        return (parse_time(value) - self.start).total_seconds()

    def _observe(self, context: dict[str, Any], state: dict[str, Any]) -> None:
        history: list[dict[str, Any]] = context["history"]
        started = next(e for e in history if e["EventType"] == _EXECUTION_STARTED)
        key = f"{started['Timestamp']}|{started.get('Input')}"
        if self.executions and self.executions[-1][0] == key:
            self.executions[-1] = (key, history)
        else:
            self.executions.append((key, history))
        at = max(
            self._seconds(e["Timestamp"])
            for e in history
            if e["EventType"] == _ORCHESTRATOR_STARTED
        )
        self.statuses.append((at, state.get("customStatus")))
        for action in _flatten(state.get("actions") or []):
            if action.get("actionType") != _CREATE_TIMER_ACTION:
                continue
            fire = self._seconds(action["fireAt"])
            if fire not in self._timers_seen and action.get("isCanceled"):
                self.born_cancelled.add(fire)
            self._timers_seen.add(fire)

    def steps(self) -> tuple[Step, ...]:
        steps: list[Step] = []
        for number, (_, history) in enumerate(self.executions):
            if number:
                steps.append(Step(kind=CONTINUE_AS_NEW, at=self._continued_at(number)))
            steps.extend(self._execution_steps(history))
        return tuple(steps)

    def _continued_at(self, number: int) -> float:
        _, history = self.executions[number]
        started = next(e for e in history if e["EventType"] == _EXECUTION_STARTED)
        return self._seconds(started["Timestamp"])

    def _execution_steps(self, history: list[dict[str, Any]]) -> list[Step]:
        steps: list[Step] = []
        index: dict[int, int] = {}
        for event in history:
            kind = event["EventType"]
            if kind == _TASK_SCHEDULED:
                index[event["EventId"]] = len(steps)
                at = self._seconds(event["Timestamp"])
                steps.append(Step(kind=ACTIVITY, at=at, name=event["Name"]))
            elif kind in (_TASK_COMPLETED, _TASK_FAILED):
                i = index[event["TaskScheduledId"]]
                outcome = "completed" if kind == _TASK_COMPLETED else "failed"
                steps[i] = Step(kind=ACTIVITY, at=steps[i].at, name=steps[i].name, outcome=outcome)
            elif kind == _TIMER_CREATED:
                at, fire = self._seconds(event["Timestamp"]), self._seconds(event["FireAt"])
                cancelled = fire in self.born_cancelled
                steps.append(Step(kind=TIMER, at=at, fire=fire, cancelled_at_creation=cancelled))
        return steps


def _flatten(actions: list[Any]) -> list[dict[str, Any]]:
    """The SDK's actions, depth first through lists and WhenAny/WhenAll ``compoundActions``."""
    flat: list[dict[str, Any]] = []
    for action in actions:
        if isinstance(action, list):
            flat.extend(_flatten(action))
        elif isinstance(action, dict):
            flat.extend(_flatten(action.get("compoundActions") or []))
            if "compoundActions" not in action:
                flat.append(action)
    return flat


def _outcome(status: dict[str, Any]) -> Outcome:
    if status["runtimeStatus"] == "Completed":
        return Outcome(status="Completed", output=status["output"])
    return Outcome(status=status["runtimeStatus"], message=status["output"])


def run_on_devhost(scenario: Scenario, *, timeout: float = 60.0) -> Trace:
    """Run ``scenario`` on devhost's engine and return what it recorded."""
    journal = DevhostJournal(T0)
    clock = VirtualClock(start=T0, auto_advance=False)  # held still until every instance exists
    orchestrators = {
        batch_run.ORCHESTRATOR_NAME: journal.wrap(handle(batch_run.batch_endpoint_run)),
        SLEEPER: handle(xeng_clock_stop),
    }
    engine = Engine(":memory:", orchestrators, ACTIVITIES, clock=clock)
    iid = scenario.instance_id

    def raise_cancel() -> None:
        engine.raise_event(iid, "cancel", {"reason": "cross-engine"})

    with scripted_service(scenario, raise_cancel) as service:
        engine.start()
        try:
            hold_at = install_clock_hooks(scenario, clock, service, raise_cancel)
            if hold_at is not None:
                engine.start_new(SLEEPER, instance_id=f"{iid}-clock", input=hold_at)
            engine.start_new(
                batch_run.ORCHESTRATOR_NAME, instance_id=iid, input=scenario.run_input()
            )
            clock.auto_advance = True
            clock.advance(0)  # wake the scheduler
            status = engine.wait_for_completion(iid, timeout=timeout)
        finally:
            engine.stop()
        base_url = service.endpoint.base_url
    return Trace(
        engine="devhost",
        start=T0,
        steps=journal.steps(),
        statuses=scrub(dedupe(journal.statuses), base_url),
        outcome=scrub(_outcome(status), base_url),
        stored_status=scrub(status.get("customStatus"), base_url),
    )
