"""Schedule slots: the occurrence of SCORING_SCHEDULE a timer fire stands for (NCRONTAB as
NCrontab 3.x reads it: CrontabSchedule.cs ANDs the day fields, days of week 0-6, names)."""

from datetime import UTC, datetime

import pytest

from batch_runs.schedule import Schedule, schedule_slot

NOW = datetime(2026, 11, 30, 12, 57, 13, 500_000, tzinfo=UTC)  # a Monday


@pytest.mark.parametrize(
    ("expression", "slot"),
    [
        ("0 0 2 * * *", datetime(2026, 11, 30, 2, 0, tzinfo=UTC)),
        ("*/20 * * * * *", datetime(2026, 11, 30, 12, 57, 0, tzinfo=UTC)),
        ("0 */5 * * * Mon-Fri", datetime(2026, 11, 30, 12, 55, tzinfo=UTC)),
        ("0 30 9 * * 0", datetime(2026, 11, 29, 9, 30, tzinfo=UTC)),  # Sunday = 0
        ("0 30 9 * * Sun", datetime(2026, 11, 29, 9, 30, tzinfo=UTC)),
        ("0 0 0 1 Jan *", datetime(2026, 1, 1, tzinfo=UTC)),
        ("0 0 6 1-7 * 1", datetime(2026, 11, 2, 6, tzinfo=UTC)),  # day AND weekday: 1st Monday
        ("13 57 12 30 11 1", datetime(2026, 11, 30, 12, 57, 13, tzinfo=UTC)),  # exactly now
    ],
)
def test_the_slot_is_the_latest_occurrence_at_or_before_the_fire(expression, slot):
    assert schedule_slot(expression, NOW) == slot


def test_the_slot_is_read_in_website_time_zone():
    # 02:00 in Berlin (UTC+1 in November) is 01:00 UTC.
    assert schedule_slot("0 0 2 * * *", NOW, "Europe/Berlin") == datetime(
        2026, 11, 30, 1, 0, tzinfo=UTC
    )


@pytest.mark.parametrize("expression", ["0 0 2 L * *", "0 0 2 * * 7", "* * * *", "0 0 25 * * *"])
def test_what_is_not_understood_falls_back_to_the_fire_time(expression):
    assert schedule_slot(expression, NOW) == NOW.replace(microsecond=0)


def test_an_unknown_time_zone_falls_back_to_the_fire_time():
    assert schedule_slot("0 0 2 * * *", NOW, "Mars/Olympus") == NOW.replace(microsecond=0)


def test_parse_refuses_what_ncrontab_refuses():
    for bad in ("0 0 2 * *", "0 0 2 * * 7", "0 */0 * * * *", "0 0 2 * 13 *"):
        with pytest.raises(ValueError, match=r"."):
            Schedule.parse(bad)


@pytest.mark.parametrize("zone", ["W. Europe Standard Time", "Mars/Olympus", "../etc/passwd"])
def test_an_unknown_time_zone_is_logged_naming_the_setting(zone, caplog):
    with caplog.at_level("WARNING", logger="batch_runs.schedule"):
        slot = schedule_slot("0 0 2 * * *", NOW, zone)

    assert slot == NOW.replace(microsecond=0)
    assert "WEBSITE_TIME_ZONE" in caplog.text
    assert "falls back to the invocation time" in caplog.text


def test_a_known_time_zone_logs_nothing(caplog):
    with caplog.at_level("WARNING", logger="batch_runs.schedule"):
        schedule_slot("0 0 2 * * *", NOW, "Europe/Berlin")

    assert caplog.text == ""
