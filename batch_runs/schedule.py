"""Schedule slots: which occurrence of ``SCORING_SCHEDULE`` a timer invocation stands for.

A scheduled run's instance id is its slot (``schedule-20261125T020000Z``), so a duplicate fire
of one occurrence starts nothing. The slot is the latest occurrence of the schedule at or before
the invocation time, read in ``WEBSITE_TIME_ZONE`` when that is set (the Functions host reads
schedules in that zone), not the invocation time itself, which differs between duplicate fires.

NCRONTAB as the Functions host reads it (NCrontab 3.x, ``CrontabSchedule.cs``): six fields,
``second minute hour day month day-of-week``; ``*``, numbers, ``a-b``, ``*/n``, ``a-b/n`` and
lists; month and day names by their first three letters; days of week 0-6 (Sunday = 0); a time
matches only when the day of month AND the day of week both match. Anything else (``L``, ``W``,
``#``) is not understood here, and the caller falls back to the invocation time.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (low, high, names whose index + offset is the value)
_FIELDS = (
    (0, 59, (), 0),
    (0, 59, (), 0),
    (0, 23, (), 0),
    (1, 31, (), 0),
    (1, 12, _MONTHS, 1),
    (0, 6, _DAYS, 0),
)
logger = logging.getLogger(__name__)

#: How far back a slot is looked for (a schedule that fires less than yearly has no slot).
_LOOKBACK = timedelta(days=366)


def _value(text: str, names: tuple[str, ...], offset: int) -> int:
    key = text[:3].upper()
    if text.isalpha() and key in names:  # "Mon", "Monday", "JAN", "January"
        return names.index(key) + offset
    if not text.isdigit():
        raise ValueError(f"not a number: {text!r}")
    return int(text)


def _field(text: str, spec: tuple[int, int, tuple[str, ...], int]) -> frozenset[int]:
    low, high, names, offset = spec
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError("a step must be >= 1")
        if body in ("*", "?"):
            first, last = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            first, last = _value(a, names, offset), _value(b, names, offset)
        else:
            first = _value(body, names, offset)
            last = high if step_text else first
        if not low <= first <= last <= high:
            raise ValueError(f"{part!r} is out of {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed six-field NCRONTAB expression."""

    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> "Schedule":
        """Raises: ValueError for anything but six fields of the supported syntax."""
        fields = expression.split()
        if len(fields) != 6:
            raise ValueError("an NCRONTAB expression has six fields")
        return cls(*(_field(text, spec) for text, spec in zip(fields, _FIELDS, strict=True)))

    def _day_matches(self, t: datetime) -> bool:
        weekday = (t.weekday() + 1) % 7  # Python: Monday = 0; NCRONTAB: Sunday = 0
        return t.month in self.months and t.day in self.days and weekday in self.weekdays

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        """The latest occurrence at or before ``t`` (same zone as ``t``), within a year."""
        t = t.replace(microsecond=0)
        stop = t - _LOOKBACK
        while t >= stop:
            if not self._day_matches(t):
                t = t.replace(hour=23, minute=59, second=59) - timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=59, second=59) - timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=59) - timedelta(minutes=1)
            elif t.second not in self.seconds:
                t -= timedelta(seconds=1)
            else:
                return t
        return None


def schedule_slot(expression: str, now: datetime, time_zone: str | None = None) -> datetime:
    """The occurrence of ``expression`` that an invocation at ``now`` stands for (UTC).

    Falls back to ``now`` (to the second) when the expression or the zone is not understood, or
    the schedule has no occurrence in the past year.
    """
    zone = schedule_zone(time_zone)
    try:
        slot = (
            Schedule.parse(expression).latest_at_or_before(now.astimezone(zone))
            if zone is not None
            else None
        )
    except ValueError:
        logger.warning(
            "the schedule %r is not understood here; the run's slot is the invocation time",
            expression,
        )
        slot = None
    return (slot or now).astimezone(UTC).replace(microsecond=0)


def schedule_zone(time_zone: str | None) -> tzinfo | None:
    """The zone schedules are read in (UTC without ``WEBSITE_TIME_ZONE``); None, with a warning
    naming the setting, when the zone is unknown here (e.g. a Windows zone name such as
    ``W. Europe Standard Time`` on Linux, where only IANA names such as ``Europe/Berlin``
    exist): the caller then falls back to the invocation time."""
    if not time_zone:
        return UTC
    try:
        return ZoneInfo(time_zone)
    except (ValueError, ZoneInfoNotFoundError):
        logger.warning(
            "WEBSITE_TIME_ZONE=%r is not a time zone known here (on Linux use an IANA name "
            "such as Europe/Berlin); the schedule slot falls back to the invocation time",
            time_zone[:64],
        )
        return None
