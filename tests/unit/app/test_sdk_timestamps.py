"""The app's timestamp shim reads every form the extension writes exactly as the SDK does.

Forms: Newtonsoft.Json's default ``yyyy'-'MM'-'dd'T'HH':'mm':'ss.FFFFFFFK``
(JamesNK/Newtonsoft.Json ``Src/Newtonsoft.Json/JsonSerializerSettings.cs``
``DefaultDateFormatString``): 0-7 fraction digits (``FFFFFFF`` trims trailing zeros and drops
the dot when they are all zero) and ``K`` = ``Z`` (UTC), ``+hh:mm``/``-hh:mm`` (local) or
nothing (unspecified). devhost writes 6 digits and ``Z``.
"""

import re
import sys
import time
from collections.abc import Iterator
from itertools import product
from pathlib import Path

import pytest
from dateutil.parser import parse as sdk_parse  # type: ignore[import-untyped]

from orchestrators import _sdk_timestamps

ROOT = Path(__file__).resolve().parents[3]
FAST = _sdk_timestamps.fast_parser(sdk_parse)

DATES = ["2026-11-25T02:20:00", "2024-02-29T23:59:59", "0001-01-01T00:00:00", "9999-12-31T23:59:59"]
FRACTIONS = ["", ".1", ".12", ".123", ".1234", ".12345", ".123456", ".1234567", ".9999999"]
FRACTIONS += [".0000001", ".000000", ".5"]
SUFFIXES = ["Z", "", "+00:00", "+01:00", "-05:30", "+14:00"]
EXTENSION_FORMS = [d + f + s for d, f, s in product(DATES, FRACTIONS, SUFFIXES)]
OTHER_FORMS = [
    "2026-11-25 02:20:00Z",  # not the extension's layout: the SDK's parser decides
    "2026-11-25T02:20Z",
    "20261125T022000Z",
    "2026-11-25T02:20:00.12345678Z",
    "Nov 25 2026 02:20",
    "2026-11-25T02:20:00z",
]


@pytest.fixture(params=["UTC", "Europe/London"])
def local_zone(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The process zone decides which ``tzinfo`` dateutil attaches to ``Z``: test both."""
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("text", EXTENSION_FORMS + OTHER_FORMS)
def test_the_shim_reads_each_form_as_the_sdk_parser_does(text: str, local_zone: str) -> None:
    expected, got = sdk_parse(text), FAST(text)

    assert got == expected
    assert got.tzinfo == expected.tzinfo
    assert type(got.tzinfo) is type(expected.tzinfo)
    assert got.utcoffset() == expected.utcoffset()
    assert got.isoformat() == expected.isoformat()


@pytest.mark.parametrize("text", ["2026-13-25T02:20:00Z", "2026-11-25T24:20:00Z", "nonsense", ""])
def test_what_neither_reads_fails_with_the_sdk_parsers_error(text: str) -> None:
    with pytest.raises(ValueError) as sdk_error:  # noqa: PT011 - whichever the SDK raises
        sdk_parse(text)
    with pytest.raises(ValueError) as shim_error:  # noqa: PT011
        FAST(text)
    assert type(shim_error.value) is type(sdk_error.value)


def test_the_supported_range_is_the_one_requirements_txt_allows() -> None:
    line = next(
        ln
        for ln in (ROOT / "requirements.txt").read_text().splitlines()
        if ln.startswith("azure-functions-durable")
    )
    low, high = re.fullmatch(r"azure-functions-durable>=([\d.]+),<([\d.]+)", line).groups()  # type: ignore[union-attr]

    def as_tuple(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in [*v.split("."), "0"][:2])

    assert (as_tuple(low), as_tuple(high)) == _sdk_timestamps.SUPPORTED_SDK


def test_apply_installs_the_shim_into_history_events_and_remove_undoes_it() -> None:
    from azure.durable_functions.models.history.HistoryEvent import HistoryEvent

    module = sys.modules[_sdk_timestamps.HISTORY_EVENT_MODULE]
    try:
        assert _sdk_timestamps.apply()
        assert getattr(module, "dt_parse").fallback is sdk_parse  # noqa: B009
        event = HistoryEvent(
            EventType=12, EventId=-1, IsPlayed=False, Timestamp="2026-11-25T02:20:00.1234567Z"
        )
        assert event.timestamp == sdk_parse("2026-11-25T02:20:00.1234567Z")
    finally:
        _sdk_timestamps.remove()
    assert getattr(module, "dt_parse") is sdk_parse  # noqa: B009


def test_outside_the_supported_range_nothing_is_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    module = sys.modules[_sdk_timestamps.HISTORY_EVENT_MODULE]
    for version in [(2, 0, 0), (1, 6, 9), None]:
        monkeypatch.setattr(_sdk_timestamps, "installed_sdk_version", lambda v=version: v)
        assert not _sdk_timestamps.apply()
        assert getattr(module, "dt_parse") is sdk_parse  # noqa: B009


def test_the_installed_sdk_version_is_read_from_its_metadata() -> None:
    from importlib.metadata import version

    expected = tuple(int(p) for p in version("azure-functions-durable").split("."))
    assert _sdk_timestamps.installed_sdk_version() == expected
