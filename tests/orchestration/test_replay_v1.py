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


@pytest.mark.parametrize("episode", EPISODES)
def test_recorded_episode_replays_to_the_recorded_decision(episode: dict[str, Any]) -> None:
    # As in the Functions worker (and devhost), SDK warnings are logged, not raised.
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        today = json.loads(handle(batch_run.batch_endpoint_run)(json.dumps(episode["context"])))

    assert _normalised(today) == _normalised(episode["result"])


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
