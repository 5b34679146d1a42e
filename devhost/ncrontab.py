"""Timer trigger schedules: six-field NCRONTAB expressions and TimeSpan intervals.

NCRONTAB fields: ``second minute hour day month day-of-week``. Each field accepts ``*``, numbers,
lists (``1,5``), ranges (``1-5``), steps (``*/10``, ``0-30/5``) and, for month and day-of-week,
names. As NCrontab (atifaziz/NCrontab v3.3.3, the timer extension's parser):

- day-of-week is 0-6 (Sunday = 0; 7 is refused) and a name is any case-insensitive prefix of
  the full English name (``Mon``, ``monday``, ``M``: the first name it prefixes wins), as are
  month names (``NCrontab/CrontabFieldImpl.cs`` lines 43-44, 276-302);
- a day must match the day-of-month **and** the day-of-week field, unlike Vixie cron's OR
  (``NCrontab/CrontabSchedule.cs`` lines 372-379: after the day/month search, a day whose
  ``DayOfWeek`` is not in the field is skipped).
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

__all__ = ["CronSchedule", "IntervalSchedule", "Schedule", "ZonedSchedule", "parse_schedule"]

_MONTHS = (
    "JANUARY",
    "FEBRUARY",
    "MARCH",
    "APRIL",
    "MAY",
    "JUNE",
    "JULY",
    "AUGUST",
    "SEPTEMBER",
    "OCTOBER",
    "NOVEMBER",
    "DECEMBER",
)
_DAYS = ("SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY")

_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _DAYS),
)


def _parse_value(token: str, low: int, names: tuple[str, ...], field: str) -> int:
    if token.isdigit():
        return int(token)
    upper = token.upper()
    for index, name in enumerate(names):
        if upper and name.startswith(upper):
            return low + index
    raise ValueError(f"schedule field {field}: invalid value {token!r}")


def _parse_field(
    text: str, field: str, low: int, high: int, names: tuple[str, ...]
) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ValueError(f"schedule field {field}: empty list item")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"schedule field {field}: invalid step {step_text!r}")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _parse_value(a, low, names, field), _parse_value(b, low, names, field)
        else:
            start = _parse_value(base, low, names, field)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ValueError(f"schedule field {field}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed six-field NCRONTAB expression."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    def _day_matches(self, when: datetime) -> bool:
        weekday = (when.weekday() + 1) % 7  # Monday=0 in Python → Sunday=0 in NCrontab
        return when.month in self.months and when.day in self.days and weekday in self.weekdays

    def next_after(self, after: datetime) -> datetime:
        """The first occurrence strictly after ``after`` (same tzinfo).

        Raises:
            ValueError: the schedule never fires (e.g. ``0 0 0 31 2 *``).
        """
        start = after.replace(microsecond=0) + timedelta(seconds=1)
        day = start.replace(hour=0, minute=0, second=0)
        for _ in range(366 * 5):
            if self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        for second in sorted(self.seconds):
                            candidate = day.replace(hour=hour, minute=minute, second=second)
                            if candidate >= start:
                                return candidate
            day = day + timedelta(days=1)
        raise ValueError(f"schedule {self.expression!r} never fires")


@dataclass(frozen=True, slots=True)
class IntervalSchedule:
    """A TimeSpan schedule (``hh:mm:ss`` or ``d.hh:mm:ss``): fires every interval."""

    expression: str
    interval: timedelta

    def next_after(self, after: datetime) -> datetime:
        """``after`` plus the interval."""
        return after + self.interval


@dataclass(frozen=True, slots=True)
class ZonedSchedule:
    """A schedule read in a time zone (``WEBSITE_TIME_ZONE``); occurrences come back in UTC."""

    inner: CronSchedule | IntervalSchedule
    zone: tzinfo

    @property
    def expression(self) -> str:
        """The inner schedule's expression."""
        return self.inner.expression

    def next_after(self, after: datetime) -> datetime:
        """The inner schedule's next occurrence in local wall-clock time, as UTC."""
        return self.inner.next_after(after.astimezone(self.zone)).astimezone(UTC)


Schedule = CronSchedule | IntervalSchedule | ZonedSchedule


def parse_schedule(expression: str) -> CronSchedule | IntervalSchedule:
    """Parse an NCRONTAB (six fields) or TimeSpan schedule.

    Raises:
        ValueError: the expression is invalid (the message names the bad field).
    """
    text = expression.strip()
    parts = text.split()
    if len(parts) == 1 and ":" in text:
        days = 0
        body = text
        if "." in text.split(":")[0]:
            day_text, _, body = text.partition(".")
            if not day_text.isdigit():
                raise ValueError(f"schedule {expression!r}: invalid TimeSpan")
            days = int(day_text)
        pieces = body.split(":")
        if len(pieces) != 3 or not all(p.isdigit() for p in pieces):
            raise ValueError(f"schedule {expression!r}: invalid TimeSpan (use hh:mm:ss)")
        interval = timedelta(
            days=days, hours=int(pieces[0]), minutes=int(pieces[1]), seconds=int(pieces[2])
        )
        if interval <= timedelta(0):
            raise ValueError(f"schedule {expression!r}: interval must be positive")
        return IntervalSchedule(text, interval)
    if len(parts) != 6:
        raise ValueError(
            f"schedule {expression!r}: NCRONTAB needs six fields "
            "(second minute hour day month day-of-week)"
        )
    parsed = [
        _parse_field(part, name, low, high, names)
        for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True)
    ]
    return CronSchedule(
        expression=text,
        seconds=parsed[0],
        minutes=parsed[1],
        hours=parsed[2],
        days=parsed[3],
        months=parsed[4],
        weekdays=parsed[5],
    )
