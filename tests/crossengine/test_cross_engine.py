"""A second opinion on the engine: the same monitor scenarios on devhost and on durabletask.

Each scenario runs the product's ``batch_endpoint_run`` generator and its real activity
bindings against the same scripted service twice: on devhost's engine (the real
azure-functions-durable SDK) and on Microsoft's ``durabletask`` in-memory backend with its real
gRPC worker (through ``tests/crossengine/adapter.py``), both in virtual time. The traces must
agree exactly, except where a named allowance (``tests/crossengine/allowances.py``) says why
they may not.
"""

import pytest

from tests.crossengine.adapter import AdaptedTask, raw_generator
from tests.crossengine.allowances import (
    ACTIVITY_FAILURE_TEXT_DEVHOST,
    ACTIVITY_FAILURE_TEXT_DURABLETASK,
    ALLOWANCES,
    CANCELLED_TIMER_NEVER_SENT,
    FAILURE_ENVELOPE,
    LONG_TIMER_SPLIT,
    MAX_TIMER_SECONDS,
    NO_TIMER_AFTER_LAST_RETRY,
    normalize,
)
from tests.crossengine.compare import compare
from tests.crossengine.devhost_runner import run_on_devhost
from tests.crossengine.durabletask_runner import run_on_durabletask
from tests.crossengine.scenarios import KNOWN_DIFFERENCES, SCENARIOS, Scenario
from tests.crossengine.trace import ACTIVITY, TIMER, Outcome, Step, Trace
from tests.orchestration.conftest import T0

pytestmark = pytest.mark.crossengine


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_devhost_and_durabletask_agree(scenario: Scenario) -> None:
    devhost = run_on_devhost(scenario)
    durabletask = run_on_durabletask(scenario)

    comparison = compare(devhost, durabletask)

    assert not comparison.differences, comparison.report()
    assert devhost.outcome.status == durabletask.outcome.status == scenario.ends
    assert devhost.steps  # the journals saw the run
    assert devhost.statuses


# --- a difference no allowance covers: a devhost bug (issue 11 section 1) -------------------------


@pytest.fixture(scope="module")
def renamed_activity() -> tuple[Trace, Trace]:
    """A new release renames the status-check activity while an instance waits on its timer."""
    (scenario,) = KNOWN_DIFFERENCES
    return run_on_devhost(scenario), run_on_durabletask(scenario)


def test_durabletask_fails_a_replay_whose_activity_was_renamed(renamed_activity) -> None:
    _, durabletask = renamed_activity

    assert durabletask.outcome.status == "Failed"
    message = durabletask.outcome.message or ""
    assert "history mismatch" in message
    assert "name='get_batch_job'" in message
    assert "get_batch_job_v2" in message


def test_devhost_fails_a_replay_whose_activity_was_renamed(renamed_activity) -> None:
    """Issue 11 section 1: devhost, like DTFx (TaskOrchestrationContext.cs,
    NonDeterministicOrchestrationException), fails a replay whose activity was renamed."""
    devhost, durabletask = renamed_activity

    assert devhost.outcome.status == "Failed"
    assert normalize(devhost).steps == normalize(durabletask).steps


# --- the harness itself --------------------------------------------------------------------------


def _trace(engine: str, steps: list[Step], **kw) -> Trace:
    return Trace(
        engine=engine,
        start=T0,
        steps=tuple(steps),
        statuses=kw.pop("statuses", ()),
        outcome=kw.pop("outcome", Outcome(status="Completed")),
        **kw,
    )


def _get(at: float, outcome: str) -> Step:
    return Step(kind=ACTIVITY, at=at, name="get_batch_job", outcome=outcome)


def _timer(at: float, fire: float, **kw) -> Step:
    return Step(kind=TIMER, at=at, fire=fire, **kw)


def test_a_real_difference_is_reported() -> None:
    left = _trace("devhost", [_get(0, "completed"), _timer(0, 60)])
    right = _trace("durabletask", [_get(0, "completed"), _timer(0, 61)])

    comparison = compare(left, right)

    assert comparison.differences
    assert any("timer fires at +61s" in line for line in comparison.differences)


def test_allowances_touch_only_their_own_engine() -> None:
    for allowance in ALLOWANCES:
        assert allowance.why
        other = "durabletask" if allowance.engine == "devhost" else "devhost"
        trace = _trace(other, [_get(0, "failed"), _timer(0, 15, cancelled_at_creation=True)])
        assert allowance(trace) == trace


def test_no_timer_after_last_retry_removes_only_the_timer_after_the_last_attempt() -> None:
    attempts = [_get(0, "failed"), _timer(0, 15), _get(15, "failed"), _timer(15, 30)]
    attempts += [_get(30, "failed"), _timer(30, 45), _get(45, "failed")]
    # devhost, as DTFx: the timer after the last attempt fires when it is created.
    steps = [*attempts, _timer(45, 45), _timer(45, 105), _get(105, "completed")]
    status = {"phase": "waiting", "next_check": "2026-11-25T02:01:45+00:00"}
    trace = _trace("devhost", steps, statuses=((45.0, status),))

    fixed = NO_TIMER_AFTER_LAST_RETRY(trace)

    assert fixed.steps == (*attempts, _timer(45, 105), _get(105, "completed"))
    assert fixed.statuses == ((45.0, status),)
    assert fixed.applied == ("NO_TIMER_AFTER_LAST_RETRY",)
    fewer = _trace("devhost", [*attempts[:3], _timer(30, 30), _timer(30, 90)])
    assert NO_TIMER_AFTER_LAST_RETRY(fewer) == fewer


def test_long_timer_split_merges_only_three_day_chunks() -> None:
    day3 = MAX_TIMER_SECONDS
    chain = _trace("durabletask", [_timer(0, day3), _timer(day3, 2 * day3), _timer(2 * day3, 7e5)])
    short = _trace("durabletask", [_timer(0, 60), _timer(60, 120)])

    assert LONG_TIMER_SPLIT(chain).steps == (_timer(0, 7e5),)
    assert LONG_TIMER_SPLIT(short) == short


def test_text_allowances_rewrite_exactly_the_engine_wording() -> None:
    devhost = _trace(
        "devhost",
        [],
        statuses=(
            (
                0.0,
                {
                    "last_poll_error": "Activity function 'get_batch_job' failed: "
                    "TransportError: reset "
                },
            ),
        ),
        outcome=Outcome(
            status="Failed", message="Orchestrator function 'batch_endpoint_run' failed: Gave up"
        ),
    )
    durabletask = _trace(
        "durabletask",
        [],
        statuses=((0.0, {"last_poll_error": "xeng-a: Activity task #7 failed: reset "}),),
    )

    rewritten = ACTIVITY_FAILURE_TEXT_DEVHOST(FAILURE_ENVELOPE(devhost))
    assert rewritten.outcome.message == "Gave up"
    assert rewritten.statuses == ACTIVITY_FAILURE_TEXT_DURABLETASK(durabletask).statuses
    assert rewritten.statuses[0][1]["last_poll_error"] == "<activity failed>: reset "


def test_cancelled_timer_allowance_needs_the_sdk_flag() -> None:
    plain = _trace("devhost", [_timer(0, 60)])
    flagged = _trace("devhost", [_timer(0, 60, cancelled_at_creation=True)])

    assert CANCELLED_TIMER_NEVER_SENT(plain) == plain
    assert CANCELLED_TIMER_NEVER_SENT(flagged).steps == ()


def test_the_adapter_drives_the_products_own_generator() -> None:
    from orchestrators import batch_run

    fn = raw_generator(batch_run.batch_endpoint_run)

    assert fn.__name__ == "batch_endpoint_run"
    assert fn.__module__ == "orchestrators.batch_run"
    assert {"is_completed", "result", "cancel"} <= set(dir(AdaptedTask))
