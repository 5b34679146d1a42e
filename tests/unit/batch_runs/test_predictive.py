"""The predictive poll policy (``batch_runs.predictive``): its bounds, its budget and its
determinism, as properties over any history, interval and job length, on a simulated clock."""

import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_endpoint import BatchJob, JobStatus
from batch_runs import RunRequest
from batch_runs.policy import MAX_TIMER_SECONDS
from batch_runs.predictive import (
    MAX_PLANNED_CHECKS,
    MIN_SAMPLES,
    DurationModel,
    PollPlan,
    checks_for,
    fit_intervals,
    fixed_checks,
    plan_checks,
    score,
)
from batch_runs.state import RunState, next_check

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


def lognormal(median: float, sigma: float, n: int, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [median * math.exp(rng.gauss(0, sigma)) for _ in range(n)]


def simulate(plan: PollPlan | None, duration: float, poll_interval: int) -> tuple[int, float]:
    """``(checks, detection time)`` of a job ending at ``duration``, each wait taken from the
    runtime policy (``PollPlan.delay``) on a simulated clock, as the orchestrator does."""
    now, checks = 0.0, 0
    while True:
        wait = plan.delay(elapsed=now, poll_interval=poll_interval) if plan else poll_interval
        now += wait
        checks += 1
        if now >= duration:
            return checks, now


histories = st.builds(
    lognormal,
    median=st.floats(30, 86_400),
    sigma=st.floats(0.0, 1.5),
    n=st.integers(MIN_SAMPLES, 20),
    seed=st.integers(0, 1000),
)
intervals = st.integers(1, 3600)


@settings(max_examples=40, deadline=None)
@given(history=histories, poll_interval=intervals, low=st.integers(1, 600), data=st.data())
def test_every_wait_is_within_its_bounds(history, poll_interval, low, data) -> None:
    low = min(low, poll_interval)
    cap = data.draw(st.none() | st.integers(poll_interval, MAX_TIMER_SECONDS))
    plan = plan_checks(history, poll_interval=poll_interval, min_interval=low, max_interval=cap)
    if plan is None:
        return
    assert list(plan.checks) == sorted(set(plan.checks))
    assert plan.checks[0] >= low
    assert len(plan.checks) <= MAX_PLANNED_CHECKS
    for elapsed in data.draw(st.lists(st.floats(0, plan.checks[-1] * 2 + 10), max_size=20)):
        wait = plan.delay(elapsed=elapsed, poll_interval=poll_interval, max_interval=cap)
        assert low <= wait <= MAX_TIMER_SECONDS  # never faster than POLL_INTERVAL_MIN
        if cap is not None:
            assert wait <= cap
        if elapsed >= plan.expected_end:  # never slower than poll_interval past the end
            assert wait <= poll_interval
        if elapsed >= plan.checks[-1]:  # the plan is spent: the fixed policy
            assert wait == poll_interval


@settings(max_examples=40, deadline=None)
@given(history=histories, poll_interval=intervals, low=st.integers(1, 600))
def test_expected_checks_never_exceed_the_fixed_policy_under_the_estimate(
    history, poll_interval, low
) -> None:
    low = min(low, poll_interval)
    plan = plan_checks(history, poll_interval=poll_interval, min_interval=low)
    model = DurationModel.fit(history)
    assert model is not None
    grid = model.grid()
    fixed = sum(fixed_checks(d, poll_interval) for d in grid) / len(grid)
    if plan is not None:
        assert score(plan.checks, grid, poll_interval)[1] <= fixed + 1e-9


@settings(max_examples=40, deadline=None)
@given(
    history=histories,
    poll_interval=intervals,
    low=st.integers(1, 600),
    duration=st.floats(1, 400_000),
)
def test_the_runtime_waits_follow_the_plan_for_any_job_length(
    history, poll_interval, low, duration
) -> None:
    low = min(low, poll_interval)
    plan = plan_checks(history, poll_interval=poll_interval, min_interval=low)
    checks, seen = simulate(plan, duration, poll_interval)
    assert (checks, seen) == checks_for(plan.checks if plan else (), duration, poll_interval)
    assert seen >= duration
    if plan is not None and duration >= plan.expected_end:
        assert seen - duration <= poll_interval  # detection past the expected end: <= interval
    if plan is None:
        assert checks == fixed_checks(duration, poll_interval)


@pytest.mark.parametrize("history", [[], [600.0], [600.0, 610.0], [0.0, -1.0, math.nan, 5.0]])
def test_cold_start_polls_as_fixed(history) -> None:
    assert plan_checks(history, poll_interval=120, min_interval=10) is None


def test_jobs_much_shorter_than_the_interval_get_no_plan() -> None:
    """One check is all the fixed policy spends on them: nothing left to plan with."""
    assert plan_checks(lognormal(20, 0.2, 20), poll_interval=120, min_interval=10) is None


def test_a_plan_is_sparse_before_the_expected_end_and_dense_around_it() -> None:
    plan = plan_checks(lognormal(600, 0.1, 20), poll_interval=120, min_interval=10, seed="r")
    assert plan is not None
    first, gaps = (
        plan.checks[0],
        [b - a for a, b in zip(plan.checks, plan.checks[1:], strict=False)],
    )
    assert first > 3 * 120  # no check in the first minutes: nothing ends there
    assert all(10 <= gap < 120 for gap in gaps)  # dense around the end, never under 10 s
    assert plan.checks[0] < plan.expected_end < plan.checks[-1]


def test_plans_are_deterministic_and_the_seed_only_shifts_them() -> None:
    history = lognormal(600, 0.2, 20)
    a = plan_checks(history, poll_interval=120, min_interval=10, seed="run-a")
    b = plan_checks(history, poll_interval=120, min_interval=10, seed="run-b")
    assert a == plan_checks(history, poll_interval=120, min_interval=10, seed="run-a")
    assert a is not None
    assert b is not None
    shift = {x - y for x, y in zip(a.checks, b.checks, strict=False)}
    assert len(shift) == 1
    assert abs(shift.pop()) < 10


def test_predictive_beats_fixed_on_its_own_distribution() -> None:
    """Median latency at most a quarter of the fixed policy's with fewer checks (sigma 0.1)."""
    plan = plan_checks(lognormal(600, 0.1, 20, seed=3), poll_interval=120, min_interval=10)
    assert plan is not None
    jobs = lognormal(600, 0.1, 2000, seed=4)
    fixed = score((), jobs, 120)
    predictive = score(plan.checks, jobs, 120)
    assert predictive[0] <= fixed[0] / 4
    assert predictive[1] <= fixed[1]


def test_censored_intervals_are_imputed_inside_their_bounds() -> None:
    narrow = [(d - 5, d + 5) for d in lognormal(600, 0.1, 15)]
    wide = [(0.0, 500.0), (0.0, 520.0)]  # jobs that ended before a plan's first check
    values = fit_intervals(narrow + wide)
    assert all(lo <= v <= hi for v, (lo, hi) in zip(values, narrow + wide, strict=False))
    assert all(v > 350 for v in values[-2:])  # not the midpoints (250, 260): the model's median
    assert fit_intervals([(1.0, 3.0)]) == [2.0]


@pytest.mark.parametrize(
    "data",
    [
        "x",
        {"checks": [5, 3], "expected_end": 4, "min_interval": 1},
        {"checks": [0], "expected_end": 4, "min_interval": 1},
        {"checks": [True], "expected_end": 4, "min_interval": 1},
        {"checks": [1], "expected_end": "4", "min_interval": 1},
        {"checks": list(range(1, 200)), "expected_end": 4, "min_interval": 1},
    ],
)
def test_a_damaged_plan_is_refused(data) -> None:
    with pytest.raises(ValueError, match="PollPlan"):
        PollPlan.from_dict(data)


def _predictive_state() -> RunState:
    request = RunRequest(
        endpoint_uri="https://x.westeurope.inference.ml.azure.com/jobs",
        input_uri="azureml://datastores/ws/paths/in/",
        input_type="UriFolder",
        output_uri="azureml://datastores/ws/paths/o/p.csv",
        poll_interval=120,
        timeout=86400,
        poll_policy="predictive",
    )
    job = BatchJob(name="bs-1", id="bs-1", status=JobStatus.RUNNING)
    plan = PollPlan((500, 560, 600, 640), expected_end=600, min_interval=10)
    return RunState.begin(request=request, job=job, started=T0).with_plan(plan)


def test_the_run_state_carries_the_plan_and_waits_by_it() -> None:
    state = _predictive_state()
    assert RunState.from_dict(state.to_dict()) == state
    assert next_check(state, T0) == T0 + timedelta(seconds=500)
    assert next_check(state, T0 + timedelta(seconds=501)) == T0 + timedelta(seconds=560)
    assert next_check(state, T0 + timedelta(seconds=555)) == T0 + timedelta(seconds=565)
    assert next_check(state, T0 + timedelta(seconds=700)) == T0 + timedelta(seconds=820)


def test_a_cancel_waits_as_fixed_whatever_the_plan() -> None:
    state = _predictive_state().cancelling(T0, "requested")
    assert next_check(state, T0) == T0 + timedelta(seconds=120)


def test_the_output_says_when_the_job_was_last_seen_running() -> None:
    from batch_runs.state import completed_output

    state = _predictive_state().with_job(
        BatchJob(name="bs-1", id="bs-1", status=JobStatus.RUNNING), T0 + timedelta(seconds=560)
    )
    done = state.with_job(
        BatchJob(name="bs-1", id="bs-1", status=JobStatus.COMPLETED), T0 + timedelta(seconds=600)
    )
    out = completed_output(done, T0 + timedelta(seconds=600))
    assert out["job_ended_after"] == (T0 + timedelta(seconds=560)).isoformat()
