"""Unit tests: NCRONTAB/TimeSpan schedules, route templates, settings references, blob paths."""

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from devhost.app_loader import load_settings_file, resolve_setting_refs
from devhost.errors import SettingsError
from devhost.function_settings import function_disabled, timer_time_zone
from devhost.history import format_time
from devhost.ncrontab import CronSchedule, ZonedSchedule, parse_schedule
from devhost.routing import compile_route
from devhost.triggers import blob_input_stream, blob_path_regex, timer_request

T0 = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)  # a Thursday


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/5 * * * * *", T0, T0 + timedelta(seconds=5)),
        ("0 */5 * * * *", T0, T0 + timedelta(minutes=5)),
        ("0 30 9 * * *", T0, datetime(2026, 1, 1, 9, 30, tzinfo=UTC)),
        (
            "0 0 9 * * MON-FRI",
            datetime(2026, 1, 2, 10, tzinfo=UTC),
            datetime(2026, 1, 5, 9, tzinfo=UTC),
        ),
        ("0 0 0 1 JAN,JUL *", T0, datetime(2026, 7, 1, tzinfo=UTC)),
        ("0 0 12 * * 0", T0, datetime(2026, 1, 4, 12, tzinfo=UTC)),
        ("10,20 0-1 0 * * *", T0, T0 + timedelta(seconds=10)),
        ("0 0 0 29 2 *", T0, datetime(2028, 2, 29, tzinfo=UTC)),
        ("00:05:00", T0, T0 + timedelta(minutes=5)),
        ("1.00:00:00", T0, T0 + timedelta(days=1)),
    ],
)
def test_next_occurrence(expression, after, expected):
    assert parse_schedule(expression).next_after(after) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * * *", "six fields"),
        ("60 * * * * *", "second"),
        ("* * 25 * * *", "hour"),
        ("* * * * FOO *", "month"),
        ("*/0 * * * * *", "step"),
        ("00:00:00", "positive"),
    ],
)
def test_invalid_schedules_name_the_problem(expression, message):
    with pytest.raises(ValueError, match=message):
        parse_schedule(expression)


def test_route_templates():
    route = compile_route("runs/{instance_id}/cancel")
    optional = compile_route("items/{id:int}/{name?}")
    catch_all = compile_route("files/{*path}")

    assert route.match("runs/abc/cancel") == {"instance_id": "abc"}
    assert route.match("RUNS/abc/Cancel") == {"instance_id": "abc"}
    assert route.match("runs/abc") is None
    assert optional.match("items/5") == {"id": "5"}
    assert optional.match("items/5/x") == {"id": "5", "name": "x"}
    assert optional.match("items/x") is None
    assert catch_all.match("files/a/b/c.csv") == {"path": "a/b/c.csv"}
    with pytest.raises(ValueError, match="unsupported segment"):
        compile_route("bad/{x")


def test_setting_references_and_settings_file(tmp_path):
    settings = tmp_path / "local.settings.json"
    settings.write_text('{"Values": {"A": "1", "FLAG": true}}')
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")

    values = load_settings_file(settings)

    assert values == {"A": "1", "FLAG": "true"}
    assert load_settings_file(tmp_path / "missing.json") == {}
    assert resolve_setting_refs("in/%A%/{name}", values, what="x") == "in/1/{name}"
    with pytest.raises(SettingsError, match="'MISSING'"):
        resolve_setting_refs("%MISSING%", values, what="function 'f' path")
    with pytest.raises(SettingsError, match="not valid JSON"):
        load_settings_file(bad)


def test_blob_path_patterns():
    container, prefix, regex = blob_path_regex("scoring-input/batch/{name}.csv")

    assert (container, prefix) == ("scoring-input", "batch/")
    match = regex.fullmatch("batch/day1.csv")
    assert match is not None
    assert match.group("name") == "day1"
    assert regex.fullmatch("other/day1.csv") is None
    with pytest.raises(ValueError, match="container"):
        blob_path_regex("no-container")


def test_timer_scheduler_past_due_on_restart_then_on_schedule(tmp_path):
    from devhost.app_loader import TimerTriggerSpec
    from devhost.engine import Engine, VirtualClock, format_time
    from devhost.triggers import TimerScheduler
    from tests.support import wait_until

    clock = VirtualClock(start=T0 + timedelta(minutes=5, seconds=30))
    engine = Engine(tmp_path / "t.sqlite", {}, {}, clock=clock)
    engine.kv_set("timer:last:tick", format_time(T0))  # the last run was 5 minutes ago
    calls: list[tuple[str, bool]] = []
    spec = TimerTriggerSpec(
        function_name="tick",
        schedule="0 * * * * *",
        run_on_startup=False,
        arg_name="timer",
        function=None,
    )
    scheduler = TimerScheduler(
        engine,
        [(spec, parse_schedule(spec.schedule))],
        lambda s, reason, kwargs: calls.append((reason, kwargs["timer"].past_due)),
        clock,
    )
    try:
        scheduler.start()
        wait_until(lambda: len(calls) == 1, timeout=5, what="past-due run")
        clock.advance(30)  # reaches the next whole minute
        wait_until(lambda: len(calls) == 2, timeout=5, what="scheduled run")
    finally:
        scheduler.stop()
        engine.stop()

    assert calls[0][1] is True
    assert "past due" in calls[0][0]
    assert calls[1][1] is False


def test_load_app_errors_name_the_file_and_function(tmp_path):
    from devhost.app_loader import load_app
    from devhost.errors import AppLoadError

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "function_app.py").write_text("import json\nraise RuntimeError('bad setup')\n")
    bad_activity = tmp_path / "bad_activity"
    bad_activity.mkdir()
    (bad_activity / "function_app.py").write_text(
        "import azure.durable_functions as df\n"
        "app = df.DFApp()\n"
        "@app.activity_trigger(input_name='payload')\n"
        "def act(other):\n"
        "    return other\n"
    )

    with pytest.raises(AppLoadError, match=r"function_app.py:2: RuntimeError: bad setup"):
        load_app(broken)
    with pytest.raises(AppLoadError, match="function 'act'"):
        load_app(bad_activity)


def test_timer_scheduler_run_on_startup(tmp_path):
    from devhost.app_loader import TimerTriggerSpec
    from devhost.engine import Engine, VirtualClock
    from devhost.triggers import TimerScheduler
    from tests.support import wait_until

    clock = VirtualClock(start=T0)
    engine = Engine(tmp_path / "t.sqlite", {}, {}, clock=clock)
    calls: list[tuple[str, bool]] = []
    spec = TimerTriggerSpec(
        function_name="boot",
        schedule="0 0 0 * * *",
        run_on_startup=True,
        arg_name="timer",
        function=None,
    )
    scheduler = TimerScheduler(
        engine,
        [(spec, parse_schedule(spec.schedule))],
        lambda s, reason, kwargs: calls.append((reason, kwargs["timer"].past_due)),
        clock,
    )
    try:
        scheduler.start()
        wait_until(lambda: len(calls) == 1, timeout=5, what="startup run")
        stored = engine.kv_get("timer:status:boot")
    finally:
        scheduler.stop()
        engine.stop()

    assert calls == [("Timer fired at startup (run_on_startup)", False)]
    assert stored is not None
    assert json.loads(stored)["Last"] == format_time(T0)  # the startup invocation's time


def _cron(expression: str) -> CronSchedule:
    schedule = parse_schedule(expression)
    assert isinstance(schedule, CronSchedule)
    return schedule


def test_ncrontab_day_fields_are_anded_days_are_0_to_6_and_names_are_prefixes():
    """Day-of-month AND day-of-week; 7 is refused; ``M``/``mon``/``Monday`` all name Monday.

    Reproduces atifaziz/NCrontab v3.3.3 ``NCrontab/CrontabSchedule.cs`` lines 372-379 (a day
    whose ``DayOfWeek`` is not in the field is skipped after the day-of-month search) and
    ``NCrontab/CrontabFieldImpl.cs`` lines 43-44 (day-of-week 0-6, full English names) and
    276-302 (a name is any case-insensitive prefix, the first match wins).
    """
    friday_13th = parse_schedule("0 0 0 13 * Fri")
    names = [_cron(f"0 0 9 * * {d}").weekdays for d in ("M", "mon", "MONDAY", "1")]

    assert friday_13th.next_after(T0) == datetime(2026, 2, 13, tzinfo=UTC)
    assert names == [frozenset({1})] * 4
    assert _cron("0 0 0 1 jan,July *").months == frozenset({1, 7})
    with pytest.raises(ValueError, match="outside 0-6"):
        parse_schedule("0 0 12 * * 7")
    with pytest.raises(ValueError, match="day-of-week"):
        parse_schedule("0 0 12 * * Mondays")


def test_website_time_zone_reads_the_schedule_in_local_time():
    """``0 0 9 * * *`` with ``WEBSITE_TIME_ZONE=Europe/Paris`` fires at 08:00 UTC in winter.

    Reproduces the Functions timer trigger's documented ``WEBSITE_TIME_ZONE`` ("NCRONTAB time
    zones": the schedule is evaluated in that zone instead of UTC; Linux takes tz names).
    """
    zone = timer_time_zone({"WEBSITE_TIME_ZONE": "Europe/Paris"})
    assert zone is not None
    schedule = ZonedSchedule(parse_schedule("0 0 9 * * *"), zone)

    assert schedule.next_after(T0) == datetime(2026, 1, 1, 8, tzinfo=UTC)
    assert schedule.next_after(datetime(2026, 7, 1, tzinfo=UTC)) == datetime(
        2026, 7, 1, 7, tzinfo=UTC
    )
    assert timer_time_zone({}) is None
    with pytest.raises(SettingsError, match="IANA"):
        timer_time_zone({"WEBSITE_TIME_ZONE": "Eastern Standard Time"})
    assert function_disabled("f", {"AzureWebJobs_f_Disabled": "1"})
    assert not function_disabled("f", {"AzureWebJobs.f.Disabled": "false"})


def test_timer_and_blob_arguments_come_from_the_workers_converters():
    """``TimerRequest`` and ``InputStream`` are decoded by ``azure.functions``' own converters
    from host-shaped payloads, as the Python worker does (azure-functions 1.26
    ``azure/functions/timer.py`` ``TimerRequestConverter.decode``: ``IsPastDue``,
    ``ScheduleStatus``, ``Schedule``; ``azure/functions/blob.py`` ``BlobConverter.decode``:
    ``BlobTrigger``, ``Uri``, ``Properties``, ``Metadata``)."""
    props = SimpleNamespace(
        name="in/a.csv",
        etag='"0x1"',
        size=3,
        content_settings=SimpleNamespace(content_type="text/csv"),
        last_modified=T0,
        creation_time=T0,
        blob_type="BlockBlob",
        metadata={"k": "v"},
    )

    timer = timer_request(True, {"Last": None, "Next": "2026-01-01T00:00:00Z"})
    stream = blob_input_stream("data", props, b"a,b", "http://127.0.0.1:10000/acct/data/in/a.csv")

    assert (timer.past_due, timer.schedule_status["Next"]) == (True, "2026-01-01T00:00:00Z")
    assert (stream.name, stream.length, stream.read()) == ("data/in/a.csv", 3, b"a,b")
    assert stream.uri == "http://127.0.0.1:10000/acct/data/in/a.csv"
    assert stream.blob_properties is not None
    assert stream.blob_properties["ETag"] == '"0x1"'
    assert stream.metadata == {"k": "v"}
