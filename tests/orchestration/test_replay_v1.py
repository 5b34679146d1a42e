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


@pytest.mark.parametrize("episode", EPISODES)
def test_recorded_episode_replays_to_the_recorded_decision(episode: dict[str, Any]) -> None:
    # As in the Functions worker (and devhost), SDK warnings are logged, not raised.
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        today = json.loads(handle(batch_run.batch_endpoint_run)(json.dumps(episode["context"])))

    recorded = _normalised(episode["result"])
    assert _widened(recorded, _normalised(today)) == recorded


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
