"""Runs in flight across a deploy: histories recorded by the first release replay unchanged.

``data/history_v1.json`` was recorded from the pre-refactor code (commit f0f2307's parent, the
orchestrator whose activity outcomes were untyped dicts and whose RunState carried raw run
parameters): every orchestrator episode's context JSON, exactly as the devhost engine handed it
to the SDK, and the result JSON that code returned. Recorded cases: a run that polls through
``continue_as_new`` (including the first episode of the new execution, whose input is the old
``{"resume": RunState}`` shape) and completes, and a run cancelled while in flight.

Durable replays an in-flight instance against the newly deployed code; if the new code decides
anything differently for the same history (other actions, another custom status, other
activity inputs), the instance breaks in Azure. So each recorded context is fed to today's
orchestrator and the result must be the one recorded.
"""

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from batch_runs import state
from orchestrators import batch_run
from tests.orchestration.conftest import handle

#: The out-of-process protocol's action type of ``continue_as_new`` (azure-functions-durable
#: ``models/actions/ActionType.py``: ``CONTINUE_AS_NEW: int = 4``).
CONTINUE_AS_NEW = 4
RECORDED = json.loads((Path(__file__).parent / "data" / "history_v1.json").read_text())
EPISODES = [
    pytest.param(episode, id=f"{case}-{i}")
    for case, data in RECORDED.items()
    for i, episode in enumerate(data["episodes"])
]


def _normalised(result: dict[str, Any]) -> dict[str, Any]:
    """The result with JSON-encoded inputs decoded, so key order inside them does not matter."""

    def decode(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (json.loads(v) if k == "input" and isinstance(v, str) else decode(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    decoded: dict[str, Any] = decode(result)
    return decoded


def _widened(recorded: Any, today: Any) -> Any:
    """``today`` with keys the recording lacks dropped from continue-as-new inputs.

    The state carried by ``continue_as_new`` may gain fields (read back with defaults by
    ``RunState.from_dict``); it must keep every field the old code wrote, with the same value.
    DTFx's replay check compares action kinds and names, never this input. The custom status
    may gain keys too (``started``, the run's own start); DTFx never compares it on replay.
    So may a completed run's output (``job_ended_after``): it is written once, when the run
    ends under the new code, and every key the old code wrote keeps its value.
    """
    if isinstance(recorded, dict) and isinstance(today, dict):
        if recorded.get("actionType") == CONTINUE_AS_NEW and "input" in recorded:
            today = {**today, "input": _subset(recorded["input"], today.get("input"))}
        if recorded.get("isDone") and isinstance(recorded.get("output"), dict):
            today = {**today, "output": _subset(recorded["output"], today.get("output"))}
        if isinstance(recorded.get("customStatus"), dict):
            today = {
                **today,
                "customStatus": _subset(recorded["customStatus"], today.get("customStatus")),
            }
        return {k: _widened(recorded.get(k), v) for k, v in today.items()}
    if isinstance(recorded, list) and isinstance(today, list) and len(recorded) == len(today):
        return [_widened(r, t) for r, t in zip(recorded, today, strict=True)]
    return today


def _subset(recorded: Any, today: Any) -> Any:
    if isinstance(recorded, dict) and isinstance(today, dict):
        return {k: _subset(recorded[k], today[k]) for k in recorded if k in today}
    return today


#: ``POLLS_PER_EXECUTION`` of the code that made the recording.
RECORDED_POLLS_PER_EXECUTION = 20

#: History event types that answer an action (DTFx ``EventType``: TaskScheduled 4, TimerCreated 10).
SCHEDULED_EVENT_TYPES = {4, 10}


def _replay_today(episode: dict[str, Any]) -> dict[str, Any]:
    # As in the Functions worker (and devhost), SDK warnings are logged, not raised.
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        result: dict[str, Any] = json.loads(
            handle(batch_run.batch_endpoint_run)(json.dumps(episode["context"]))
        )
    return result


@pytest.mark.parametrize("episode", EPISODES)
def test_recorded_episode_replays_to_the_recorded_decision(
    episode: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state, "POLLS_PER_EXECUTION", RECORDED_POLLS_PER_EXECUTION)
    today = _replay_today(episode)

    if _first_episode(episode["context"]):
        # Nothing is replayed in an instance's very first episode: one that starts after the
        # deploy runs today's code from the start, which plans an endpoint slot first
        # (admission control, orchestrators/admission.py). Every later episode must replay.
        assert "plan_admission" in json.dumps(today["actions"])
        return
    recorded = _normalised(episode["result"])
    if _ends_the_run(recorded) and not today["isDone"]:
        # The run's ending now asks whether NOTIFY_QUEUE is on (orchestrators/notify_queue.py):
        # one new action after every recorded one. DTFx checks new code against the history's
        # events; an action no event answers yet is just scheduled, not a replay mismatch. So
        # the recorded actions must come first, unchanged, then only that call.
        today = _normalised(today)
        *kept, new = today["actions"][-1]
        assert new.get("functionName") == "plan_run_summary_queue"
        assert new.get("actionType") == 0  # CallActivity
        kept_actions = [*today["actions"][:-1], kept]
        assert _widened(recorded["actions"], kept_actions) == recorded["actions"]
        assert _subset(recorded["customStatus"], today["customStatus"]) == recorded["customStatus"]
        return
    assert _widened(recorded, _normalised(today)) == recorded


def _ends_the_run(result: dict[str, Any]) -> bool:
    """A recorded episode that completed or failed the run (not a ``continue_as_new``)."""
    done = bool(result.get("isDone"))
    as_new = any(
        a.get("actionType") == CONTINUE_AS_NEW for group in result["actions"] for a in group
    )
    return done and not as_new


def _first_episode(context: dict[str, Any]) -> bool:
    history = context["history"]
    return "resume" not in json.loads(context["input"]) and not any(
        e["EventType"] == 4
        for e in history  # TaskScheduled
    )


@pytest.mark.parametrize("episode", EPISODES)
def test_recorded_episode_replays_deterministically_with_todays_polls_per_execution(
    episode: dict[str, Any],
) -> None:
    """With today's smaller ``POLLS_PER_EXECUTION`` an execution recorded at 20 polls may only
    end at the live edge: every action the history already answers is decided as recorded
    (else DTFx raises ``NonDeterministicOrchestrationException``, Azure/durabletask
    ``src/DurableTask.Core/TaskOrchestrationContext.cs`` ``HandleTimerCreatedEvent``). The new
    decisions are the recorded ones, or ``continue_as_new`` at the live edge."""
    if _first_episode(episode["context"]):
        return  # nothing replayed (see the test above)
    today = _flat(_widened(_normalised(episode["result"]), _normalised(_replay_today(episode))))
    recorded = _flat(_normalised(episode["result"]))
    answered = sum(
        1 for e in episode["context"]["history"] if e["EventType"] in SCHEDULED_EVENT_TYPES
    )
    assert today[:answered] == recorded[:answered]
    new = today[answered:]
    if new != recorded[answered:]:
        assert [a["actionType"] for a in new] == [CONTINUE_AS_NEW]


def _flat(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for group in result["actions"] for a in group]


def test_the_recording_covers_resume_from_the_old_state_shape_and_both_endings() -> None:
    resumed = [
        e
        for data in RECORDED.values()
        for e in data["episodes"]
        if "resume" in json.loads(e["context"]["input"])
    ]
    assert resumed, "no episode starts from a RunState written by the old code"
    assert "run_parameters" in json.loads(resumed[0]["context"]["input"])["resume"]
    assert {data["status"] for data in RECORDED.values()} == {"Completed", "Failed"}
