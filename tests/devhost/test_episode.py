"""Pure tests of ``devhost.episode``: history in, decision out; no engine, threads or SQLite.

The orchestrators are the sample app's real SDK handles; ``_Run`` carries the bookkeeping from
one episode to the next as the engine does (played events, meta, next task id).
"""

import json
from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df

from devhost.app_loader import AppIndex
from devhost.episode import (
    Completed,
    ContinuedAsNew,
    Decision,
    EpisodeInput,
    Failed,
    WorkItem,
    begin,
    decide,
    run_episode,
)
from devhost.history import (
    EVENT_RAISED,
    EXECUTION_STARTED,
    ORCHESTRATOR_COMPLETED,
    ORCHESTRATOR_STARTED,
    TASK_COMPLETED,
    TASK_FAILED,
    TASK_SCHEDULED,
    TIMER_CREATED,
    TIMER_FIRED,
    Event,
    format_time,
    new_event,
    parse_time,
)
from tests.devhost.conftest import START

IID = "inst1"


def _started(name: str, input_json: str | None) -> Event:
    return new_event(
        EXECUTION_STARTED,
        format_time(START),
        Name=name,
        Input=input_json,
        Version="",
        OrchestrationInstance={"InstanceId": IID, "ExecutionId": "e1"},
        ParentInstance=None,
    )


class _Run:
    """One instance's episodes, fed by hand."""

    def __init__(
        self, handle: Callable[[str], str] | None, name: str, input_json: str | None = None
    ) -> None:
        self.handle = handle
        self.name = name
        self.input_json = input_json
        self.past: list[Event] = []
        self.meta: dict[str, Any] = {}
        self.next_id = 0

    def episode(self, new: list[Event], at: datetime = START) -> EpisodeInput:
        return EpisodeInput(
            instance_id=IID,
            name=self.name,
            input_json=self.input_json,
            parent_instance_id=None,
            past=list(self.past),
            new=new,
            meta=self.meta,
            next_id=self.next_id,
            now=at,
        )

    def step(self, new: list[Event], at: datetime = START) -> Decision:
        decision = run_episode(self.episode(new, at), self.handle)
        self.past.extend(decision.played)
        self.meta = decision.meta
        self.next_id = decision.next_id
        return decision

    def start(self) -> Decision:
        return self.step([_started(self.name, self.input_json)])


def _run(index: AppIndex, name: str, value: Any = None) -> _Run:
    # Stored as the SDK client starts it: the JSON text, posted as a JSON string.
    token = None if value is None else json.dumps(json.dumps(value))
    return _Run(index.orchestrators[name], name, token)


def test_replay_that_completes_activities_ends_completed(sample_index: AppIndex) -> None:
    run = _run(sample_index, "chain", 1)
    now_s = format_time(START)

    first = run.start()
    second = run.step([new_event(TASK_COMPLETED, now_s, TaskScheduledId=0, Result="2")])
    third = run.step([new_event(TASK_COMPLETED, now_s, TaskScheduledId=1, Result="3")])
    last = run.step(
        [new_event(TASK_COMPLETED, now_s, TaskScheduledId=2, Result=json.dumps({"echo": {"b": 3}}))]
    )

    assert first.outcome is None
    assert first.work == [
        WorkItem(kind="activity", task_id=0, due=now_s, payload={"name": "add_one", "input": "1"})
    ]
    assert [e["EventType"] for e in first.played] == [
        ORCHESTRATOR_STARTED,
        EXECUTION_STARTED,
        TASK_SCHEDULED,
        ORCHESTRATOR_COMPLETED,
    ]
    assert [w.task_id for w in second.work + third.work] == [1, 2]
    assert second.work[0].payload == {"name": "add_one", "input": "2"}
    assert last.work == []
    assert last.outcome == Completed(json.dumps({"a": 2, "b": 3, "c": {"echo": {"b": 3}}}))


def test_timer_is_scheduled_then_fires(sample_index: AppIndex) -> None:
    run = _run(sample_index, "sleeper", 30)
    due = START + timedelta(seconds=30)

    armed = run.start()
    fire_at = armed.work[0].payload["fire_at"]
    fired = run.step([new_event(TIMER_FIRED, format_time(due), TimerId=0, FireAt=fire_at)], at=due)

    assert armed.outcome is None
    assert armed.work == [
        WorkItem(kind="timer", task_id=0, due=format_time(due), payload={"fire_at": fire_at})
    ]
    assert [e["EventType"] for e in armed.played][2] == TIMER_CREATED
    assert fired.outcome == Completed("30.0")


def test_external_event_wins_and_cancels_the_timeout(sample_index: AppIndex) -> None:
    run = _run(sample_index, "approval")
    waiting = run.start()

    approved = run.step(
        [new_event(EVENT_RAISED, format_time(START), Name="Approve", Input=json.dumps("yes"))]
    )

    assert waiting.outcome is None
    assert waiting.custom_status == {"phase": "waiting"}
    assert [w.kind for w in waiting.work] == ["timer"]
    assert approved.canceled_timers == [waiting.work[0].task_id]
    assert approved.custom_status == {"phase": "approved"}
    assert approved.outcome == Completed(json.dumps({"approved": "yes"}))


def test_continue_as_new_carries_the_next_input(sample_index: AppIndex) -> None:
    run = _run(sample_index, "counter")
    armed = run.start()
    fire_at = armed.work[0].payload["fire_at"]
    later = START + timedelta(seconds=10)

    decision = run.step(
        [new_event(TIMER_FIRED, format_time(later), TimerId=0, FireAt=fire_at)], at=later
    )

    # The SDK's serialized input, stored as the JSON string token the extension keeps.
    assert decision.outcome == ContinuedAsNew(json.dumps(json.dumps({"n": 1})))
    assert decision.custom_status == {"n": 1}


def test_retry_arms_a_timer_then_reattempts_with_the_sdks_task_ids(
    sample_index: AppIndex,
) -> None:
    run = _run(sample_index, "with_retry", {"key": "k", "fail_times": 1, "attempts": 2})
    now_s = format_time(START)
    retry_at = START + timedelta(milliseconds=5000)

    run.start()
    failed = run.step(
        [new_event(TASK_FAILED, now_s, TaskScheduledId=0, Reason="flaky", Details="")]
    )
    fire_at = failed.work[0].payload["fire_at"]
    again = run.step(
        [new_event(TIMER_FIRED, format_time(retry_at), TimerId=1, FireAt=fire_at)], at=retry_at
    )
    after = run.step(
        [new_event(TASK_COMPLETED, now_s, TaskScheduledId=2, Result=json.dumps("ok after 2"))],
        at=retry_at,
    )

    assert failed.work == [
        WorkItem(
            kind="timer",
            task_id=1,
            due=format_time(retry_at),
            payload={"fire_at": format_time(retry_at)},
        )
    ]
    assert failed.outcome is None
    assert [(w.kind, w.task_id, w.payload["name"]) for w in again.work] == [
        ("activity", 2, "flaky")
    ]
    assert run.meta["groups"]["0"]["attempts"] == 2
    assert [(w.task_id, w.payload) for w in after.work] == [(3, {"name": "add_one", "input": "41"})]


def test_failed_orchestrator_and_unknown_name_are_failures(sample_index: AppIndex) -> None:
    boom = _run(sample_index, "boom")
    boom.start()

    raised = boom.step(
        [new_event(TASK_COMPLETED, format_time(START), TaskScheduledId=0, Result="2")]
    )
    missing = _Run(None, "nope").start()

    assert isinstance(raised.outcome, Failed)
    assert raised.outcome.message.startswith("Orchestrator function 'boom' failed: kaput")
    assert missing.outcome == Failed(
        "Orchestrator function 'nope' failed: orchestrator 'nope' not found"
    )


def test_decide_schedules_only_new_actions_and_refuses_unsupported_ones() -> None:
    call = {"actionType": 0, "functionName": "f", "input": "1"}
    episode = _Run(None, "fake").episode([_started("fake", None)])
    replay = begin(episode)

    first = decide(replay, {"isDone": False, "actions": [[call]]})
    again = decide(
        begin(
            EpisodeInput(
                instance_id=IID,
                name="fake",
                input_json=None,
                parent_instance_id=None,
                past=first.played,
                new=[],
                meta=first.meta,
                next_id=first.next_id,
                now=START,
            )
        ),
        {"isDone": False, "actions": [[call], [{"actionType": 8}]]},
    )

    assert [w.task_id for w in first.work] == [0]
    assert episode.meta == {}  # the input is not mutated
    assert again.work == []
    assert isinstance(again.outcome, Failed)
    assert "does not support action type 8" in again.outcome.message


def _fake(actions: list[dict[str, Any]]) -> Callable[[str], str]:
    return lambda _context: json.dumps({"isDone": False, "actions": [[a] for a in actions]})


def test_a_replay_that_schedules_another_activity_fails_as_non_deterministic() -> None:
    """A replayed action must match the recorded one by type and name (case-insensitive).

    Reproduces Azure/durabletask ``src/DurableTask.Core/TaskOrchestrationContext.cs`` lines
    277-309 (``HandleTaskScheduledEvent``: missing action, other action type, other name) and
    ``TaskOrchestrationExecutor.cs`` lines 180-183 (the instance fails with the message), tag
    durabletask.core-v2.17.1.
    """
    run = _Run(_fake([{"actionType": 0, "functionName": "check_job", "input": "1"}]), "o")
    run.start()
    cases = {
        "renamed": [{"actionType": 0, "functionName": "check_job_v2", "input": "1"}],
        "timer": [{"actionType": 5, "fireAt": format_time(START), "isCanceled": False}],
        "missing": [],
    }
    same_but_case = _Run(_fake([{"actionType": 0, "functionName": "CHECK_JOB"}]), "o")
    same_but_case.past, same_but_case.meta, same_but_case.next_id = run.past, run.meta, 1

    outcomes = {}
    for case, actions in cases.items():
        replay = _Run(_fake(actions), "o")
        replay.past, replay.meta, replay.next_id = list(run.past), run.meta, run.next_id
        outcomes[case] = replay.step([])
    ok = same_but_case.step([])

    for case, decision in outcomes.items():
        assert isinstance(decision.outcome, Failed), case
        assert decision.outcome.message.startswith("Non-Deterministic workflow detected: "), case
        assert decision.work == [], case
    assert "instead scheduled an activity task named 'check_job_v2'" in str(outcomes["renamed"])
    assert "CreateTimerOrchestratorAction" in str(outcomes["timer"])
    assert "hasn't (yet?) scheduled" in str(outcomes["missing"])
    assert ok.outcome is None


def test_the_retry_timer_after_the_last_attempt_fires_at_once(sample_index: AppIndex) -> None:
    """After the last failed attempt the retry timer is due now, not one interval later.

    Reproduces Azure/durabletask ``src/DurableTask.Core/RetryInterceptor.cs`` lines 73-82 (tag
    durabletask.core-v2.17.1): on the last retry it creates "Dummy timer for back-compat" at
    ``CurrentUtcDateTime``; the first retries still wait ``FirstRetryInterval`` (line 90).
    """
    run = _run(sample_index, "with_retry", {"key": "k", "fail_times": 5, "attempts": 2})
    now_s = format_time(START)
    retry_at = START + timedelta(milliseconds=5000)

    run.start()
    first = run.step([new_event(TASK_FAILED, now_s, TaskScheduledId=0, Reason="x", Details="")])
    fire_at = first.work[0].payload["fire_at"]
    run.step([new_event(TIMER_FIRED, format_time(retry_at), TimerId=1, FireAt=fire_at)], retry_at)
    last = run.step(
        [new_event(TASK_FAILED, format_time(retry_at), TaskScheduledId=2, Reason="y", Details="")],
        at=retry_at,
    )
    last_fire_at = last.work[0].payload["fire_at"]
    done = run.step(
        [new_event(TIMER_FIRED, format_time(retry_at), TimerId=3, FireAt=last_fire_at)], retry_at
    )

    assert first.work[0].due == format_time(retry_at)
    assert [(w.kind, w.task_id, w.due) for w in last.work] == [("timer", 3, format_time(retry_at))]
    assert done.outcome == Completed(json.dumps({"error": "y "}))


def test_the_context_carries_the_extensions_timer_fields_so_long_timers_are_split(
    sample_index: AppIndex,
) -> None:
    """A 10-day timer fires as 3-day steps, then the rest; a naive ``fire_at`` fails.

    Reproduces Azure/azure-functions-durable-extension
    ``src/WebJobs.Extensions.DurableTask/Bindings/OrchestrationTriggerAttributeBindingProvider.cs``
    lines 227-241 (v2.13.7: ``longRunningTimerIntervalDuration``, ``maximumShortTimerDuration``,
    ``defaultHttpAsyncRequestSleepTimeMillseconds`` in every context) with the Azure Storage
    values of ``AzureStorageDurabilityProvider.cs`` lines 68-70 (6 days, 3 days).
    """
    run = _run(sample_index, "sleeper", 10 * 86400)
    naive_app = df.DFApp()

    @naive_app.orchestration_trigger(context_name="context")
    def naive(context: df.DurableOrchestrationContext) -> Generator[Any, Any, Any]:
        yield context.create_timer(datetime(2027, 1, 1))

    dues = []
    decision = run.start()
    while decision.outcome is None:
        item = decision.work[0]
        dues.append(item.due)
        at = parse_time(item.due)
        fired = new_event(
            TIMER_FIRED, item.due, TimerId=item.task_id, FireAt=item.payload["fire_at"]
        )
        decision = run.step([fired], at=at)
    context = json.loads(begin(run.episode([])).context_json)
    naive_decision = _Run(naive_app.get_functions()[0].get_user_function(), "naive").start()

    assert dues == [format_time(START + timedelta(days=d)) for d in (3, 6, 10)]
    assert decision.outcome == Completed(json.dumps(10 * 86400.0))
    assert context["defaultHttpAsyncRequestSleepTimeMillseconds"] == 30000
    assert isinstance(naive_decision.outcome, Failed)
    assert "offset-naive" in naive_decision.outcome.message


def test_a_custom_status_over_16_kb_of_utf16_fails_the_orchestration() -> None:
    """More than 16 KB of UTF-16 custom status fails the instance; 16 KB and a bit passes.

    Reproduces Azure/azure-functions-durable-extension (v2.13.7)
    ``src/WebJobs.Extensions.DurableTask/ContextImplementations/DurableOrchestrationContext.cs``
    lines 221-230 and ``MessagePayloadDataConverter.cs`` lines 60-72 (compact JSON,
    ``(int)(Encoding.Unicode.GetByteCount(json) / 1024.0) > 16`` throws), failed by
    ``Listener/TaskOrchestrationShim.cs`` lines 195-196.
    """

    def answer(size: int) -> Callable[[str], str]:
        # "x" * n as a JSON string is n + 2 UTF-16 code units, 2 bytes each.
        return lambda _c: json.dumps({"isDone": False, "actions": [], "customStatus": "x" * size})

    fits = _Run(answer(17 * 512 - 3), "o").start()  # 17 KB - 2 bytes: rounds down to 16
    too_big = _Run(answer(17 * 512 - 2), "o").start()  # 17 KB exactly

    assert fits.outcome is None
    assert isinstance(too_big.outcome, Failed)
    assert too_big.outcome.message == (
        "Orchestrator function 'o' failed: The UTF-16 size of the JSON-serialized payload must "
        "not exceed 16 KB. The current payload size is 17 KB."
    )
    assert too_big.custom_status is None
