"""``past_due`` and the timer status as the timer extension's schedule monitor computes them.

Reproduces Azure/azure-webjobs-sdk-extensions (commit 2e7550f7)
``src/WebJobs.Extensions/Extensions/Timers/Scheduling/ScheduleMonitor.cs`` lines 48-129
(``CheckPastDueAsync``), ``Listener/TimerListener.cs`` lines 83-150 (``StartAsync``: past due
wins over ``RunOnStartup``), 209-248 (``HandleTimerEvent``: a scheduled invocation is never past
due) and 270-350 (``InvokeJobFunction``: the status before the invocation goes in ``TimerInfo``,
then ``Last``/``Next``/``LastUpdated`` move), and ``Scheduling/TimerSchedule.cs`` lines 61-130
(no monitor under one minute).
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devhost.app_loader import TimerTriggerSpec
from devhost.engine import Engine, VirtualClock
from devhost.history import format_time
from devhost.ncrontab import parse_schedule
from devhost.timer_monitor import (
    NEVER,
    ScheduleStatus,
    after_invocation,
    check_past_due,
    monitor_enabled,
)
from devhost.triggers import TimerScheduler
from tests.support import wait_until

T0 = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
MINUTELY = parse_schedule("0 * * * * *")


def test_a_new_timer_stores_its_next_occurrence_and_is_not_past_due() -> None:
    status, past_due = check_past_due(None, T0 + timedelta(seconds=30), MINUTELY)

    assert past_due is False
    assert status == ScheduleStatus(
        next=T0 + timedelta(minutes=1), last=None, last_updated=T0 + timedelta(seconds=30)
    )
    assert status.to_info()["Last"] == NEVER


def test_past_due_when_now_is_after_the_stored_next_even_if_never_fired() -> None:
    """The initial status written at the first start makes a missed first occurrence past due
    (ScheduleMonitor.cs lines 51-66, 117-121)."""
    stored, _ = check_past_due(None, T0 + timedelta(seconds=30), MINUTELY)

    at_next, due_at_next = check_past_due(stored, T0 + timedelta(minutes=1), MINUTELY)
    later, due_later = check_past_due(stored, T0 + timedelta(minutes=1, seconds=1), MINUTELY)

    assert due_at_next is False  # now > Next, strictly
    assert due_later is True
    assert later.next == at_next.next == T0 + timedelta(minutes=1)


def test_a_changed_schedule_moves_next_and_is_not_past_due_for_the_old_one() -> None:
    """``Next`` differs from the one expected from ``Last``: recomputed, and from now when the
    expected one is already past (ScheduleMonitor.cs lines 96-113)."""
    hourly = parse_schedule("0 0 * * * *")
    stored = ScheduleStatus(next=T0 + timedelta(minutes=1), last=T0, last_updated=T0)

    soon, soon_due = check_past_due(stored, T0 + timedelta(seconds=10), hourly)
    late, late_due = check_past_due(stored, T0 + timedelta(hours=2, minutes=5), hourly)

    assert (soon.next, soon.last, soon.last_updated, soon_due) == (
        T0 + timedelta(hours=1),
        None,
        T0,
        False,
    )
    assert (late.next, late_due) == (T0 + timedelta(hours=3), False)


def test_after_an_invocation_last_is_the_invocation_time_moved_to_next_if_early() -> None:
    status = ScheduleStatus(next=T0 + timedelta(minutes=1), last=T0, last_updated=T0)
    early = T0 + timedelta(seconds=59, milliseconds=500)

    scheduled = after_invocation(status, early, MINUTELY, scheduled=True)
    past_due = after_invocation(status, T0 + timedelta(minutes=5), MINUTELY, scheduled=False)

    assert (scheduled.last, scheduled.next) == (
        T0 + timedelta(minutes=1),
        T0 + timedelta(minutes=2),
    )
    assert (past_due.last, past_due.next) == (T0 + timedelta(minutes=5), T0 + timedelta(minutes=6))


def test_the_monitor_is_off_under_one_minute_and_when_use_monitor_is_false() -> None:
    assert monitor_enabled(True, MINUTELY, T0) is True
    assert monitor_enabled(True, parse_schedule("*/10 * * * * *"), T0) is False
    assert monitor_enabled(True, parse_schedule("00:00:30"), T0) is False
    assert monitor_enabled(True, parse_schedule("00:05:00"), T0) is True
    assert monitor_enabled(False, MINUTELY, T0) is False


def _scheduler(
    tmp_path: Path, clock: VirtualClock, *, run_on_startup: bool = False
) -> tuple[Engine, TimerScheduler, list[tuple[str, bool, Any]]]:
    engine = Engine(tmp_path / "t.sqlite", {}, {}, clock=clock)
    calls: list[tuple[str, bool, Any]] = []
    spec = TimerTriggerSpec(
        function_name="tick",
        schedule="0 * * * * *",
        run_on_startup=run_on_startup,
        arg_name="timer",
        function=None,
    )

    def record(spec: Any, reason: str, kwargs: dict[str, Any]) -> None:
        calls.append((reason, kwargs["timer"].past_due, kwargs["timer"].schedule_status))

    return engine, TimerScheduler(engine, [(spec, MINUTELY)], record, clock), calls


def test_a_late_scheduled_run_is_not_past_due_but_a_restart_after_a_miss_is(tmp_path):
    clock = VirtualClock(start=T0 + timedelta(seconds=30))
    engine, scheduler, calls = _scheduler(tmp_path, clock)
    try:
        scheduler.start()
        wait_until(lambda: engine.kv_get("timer:status:tick") is not None, timeout=5)
        clock.advance(90)  # one minute late for T0+1min
        wait_until(lambda: len(calls) == 1, timeout=5, what="scheduled run")
    finally:
        scheduler.stop()
        engine.stop()
    clock.advance(600)  # devhost is down across ten occurrences
    engine, restarted, calls_after = _scheduler(tmp_path, clock, run_on_startup=True)
    try:
        restarted.start()
        wait_until(lambda: len(calls_after) == 1, timeout=5, what="past-due run")
        stored = json.loads(engine.kv_get("timer:status:tick") or "{}")
    finally:
        restarted.stop()
        engine.stop()

    assert calls[0][1] is False  # late, yet not past due
    assert calls[0][2]["Next"] == format_time(T0 + timedelta(minutes=1))  # status before the run
    assert calls[0][2]["Last"] == NEVER
    assert calls_after[0][1] is True  # past due wins over run_on_startup
    assert "past due" in calls_after[0][0]
    assert stored["Last"] == format_time(T0 + timedelta(minutes=12))  # the past-due run's time
