"""The timer trigger's schedule monitor: the stored status and ``IsPastDue``.

Pure functions reproducing Azure/azure-webjobs-sdk-extensions (commit 2e7550f7):

- ``ScheduleMonitor.CheckPastDueAsync``
  (``src/WebJobs.Extensions/Extensions/Timers/Scheduling/ScheduleMonitor.cs`` lines 48-129): at
  listener start, a timer with no stored status stores ``Next`` = the next occurrence after now
  and is not past due; otherwise the ``Next`` expected from ``Last`` (or ``LastUpdated``) replaces
  a stored ``Next`` that differs (a changed schedule; moved after now when it is already past),
  and the timer is past due when now is after the stored ``Next``;
- ``TimerListener.StartAsync`` (``Listener/TimerListener.cs`` lines 83-150): a past-due timer is
  invoked at once with ``IsPastDue`` true, else ``RunOnStartup`` runs it; a scheduled invocation
  is never past due, however late (``HandleTimerEvent``, lines 209-248);
- ``TimerListener.InvokeJobFunction`` (lines 270-350): the ``TimerInfo`` carries the status as it
  was before the invocation (none without a monitor); afterwards ``Last`` = ``LastUpdated`` = the
  invocation time (moved forward to ``Next`` when a scheduled invocation fired early) and
  ``Next`` = the occurrence after it;
- ``TimerSchedule.Create`` / ``ShouldDisableScheduleMonitor`` (``Scheduling/TimerSchedule.cs``
  lines 61-130): the monitor (``useMonitor``, default true) is off for a TimeSpan under one
  minute and for a cron schedule whose minute-and-above fields are all ``*`` and that fires more
  than once in the next minute.

Times are kept in UTC; ``.NET``'s ``default(DateTime)`` (never) is ``None``.
"""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from devhost.history import format_time, parse_time
from devhost.ncrontab import CronSchedule, IntervalSchedule, Schedule, ZonedSchedule

__all__ = [
    "NEVER",
    "ScheduleStatus",
    "after_invocation",
    "check_past_due",
    "monitor_enabled",
]

#: How ``default(DateTime)`` reads in the ``TimerInfo`` JSON.
NEVER = "0001-01-01T00:00:00"


@dataclass(frozen=True, slots=True)
class ScheduleStatus:
    """The stored status of one timer (``ScheduleStatus``: Last, Next, LastUpdated)."""

    next: datetime
    last: datetime | None = None
    last_updated: datetime | None = None

    def to_info(self) -> dict[str, str]:
        """The ``ScheduleStatus`` object of the host's ``TimerInfo`` JSON."""
        return {
            "Last": _text(self.last),
            "Next": _text(self.next),
            "LastUpdated": _text(self.last_updated),
        }

    def to_json(self) -> str:
        """The stored form (devhost's state file)."""
        return json.dumps(self.to_info())

    @classmethod
    def from_json(cls, text: str) -> "ScheduleStatus":
        """Read the stored form.

        Raises:
            ValueError: not a stored status.
        """
        data: Any = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("Next"), str):
            raise ValueError("not a schedule status")
        return cls(
            next=parse_time(data["Next"]),
            last=_time(data.get("Last")),
            last_updated=_time(data.get("LastUpdated")),
        )


def _text(value: datetime | None) -> str:
    return NEVER if value is None else format_time(value)


def _time(value: object) -> datetime | None:
    return None if not isinstance(value, str) or value == NEVER else parse_time(value)


def check_past_due(
    status: ScheduleStatus | None, now: datetime, schedule: Schedule
) -> tuple[ScheduleStatus, bool]:
    """The status to store at listener start, and whether the timer is past due."""
    if status is None:
        return ScheduleStatus(next=schedule.next_after(now), last_updated=now), False
    if status.last is not None:
        expected, updated = schedule.next_after(status.last), status.last
    elif status.last_updated is not None:
        expected, updated = schedule.next_after(status.last_updated), status.last_updated
    else:
        expected, updated = schedule.next_after(now), now
    if status.next != expected:
        if now > expected:
            expected, updated = schedule.next_after(now), now
        status = ScheduleStatus(next=expected, last=None, last_updated=updated)
    return status, now > status.next


def after_invocation(
    status: ScheduleStatus, invoked: datetime, schedule: Schedule, *, scheduled: bool
) -> ScheduleStatus:
    """The status after an invocation at ``invoked`` (``scheduled``: not past due or startup)."""
    if scheduled and status.next > invoked:
        invoked = status.next
    return ScheduleStatus(next=schedule.next_after(invoked), last=invoked, last_updated=invoked)


def monitor_enabled(use_monitor: bool, schedule: Schedule, now: datetime) -> bool:
    """Whether the schedule monitor runs for this timer."""
    inner = schedule.inner if isinstance(schedule, ZonedSchedule) else schedule
    if not use_monitor:
        return False
    if isinstance(inner, IntervalSchedule):
        return inner.interval >= timedelta(minutes=1)
    return not _sub_minute(inner, now)


def _sub_minute(schedule: CronSchedule, now: datetime) -> bool:
    if any(field != "*" for field in schedule.expression.split()[1:]):
        return False
    first = schedule.next_after(now)
    return schedule.next_after(first) < now + timedelta(minutes=1)
