"""A faster reading of history timestamps for the Durable SDK (applied by ``function_app``).

The SDK builds every ``HistoryEvent`` of an orchestration on every replay and parses its
``Timestamp`` with ``dateutil.parser.parse`` (azure-functions-durable 1.7
``models/history/HistoryEvent.py``: ``self._timestamp = dt_parse(Timestamp)``), about 90 us an
event, most of a poll's CPU (docs/performance.md). The extension writes those timestamps with
Newtonsoft.Json's default format ``yyyy'-'MM'-'dd'T'HH':'mm':'ss.FFFFFFFK``
(JamesNK/Newtonsoft.Json ``Src/Newtonsoft.Json/JsonSerializerSettings.cs``
``DefaultDateFormatString``): seconds, then 0 to 7 fraction digits with trailing zeros trimmed
(``FFFFFFF``), then ``Z`` for UTC, ``+hh:mm``/``-hh:mm`` for local times and nothing for
unspecified ones (``K``; .NET "Custom date and time format strings"). ``datetime.fromisoformat``
reads those forms (3.11+: any fraction length, truncated to microseconds like dateutil).

The shim is a stopgap whose right home is upstream; it:

- applies only when the installed SDK is inside the range ``requirements.txt`` allows
  (checked from the installed distribution's metadata directory, at apply time);
- reads only ``Z`` and no-suffix forms itself and hands anything else (offsets, other layouts,
  non-strings) to the SDK's own parser, so nothing it does not recognise changes meaning;
- returns the same value as the SDK's parser, ``tzinfo`` class included
  (tests/unit/app/test_sdk_timestamps.py proves it on every form above, in a UTC zone and
  in a zone with daylight saving time).

devhost never applies it: its figures stand for Azure's, where the app applies it itself.
"""

import os
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime
from importlib import import_module
from typing import Any

#: ``azure-functions-durable>=1.7,<2`` in requirements.txt (a test keeps the two equal).
SUPPORTED_SDK = ((1, 7), (2, 0))
HISTORY_EVENT_MODULE = "azure.durable_functions.models.history.HistoryEvent"
DISTRIBUTION = "azure_functions_durable"

_FAST_FORM = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?Z?\Z")

Parser = Callable[[Any], datetime]


def fast_parser(fallback: Parser) -> Parser:
    """A parser equal to ``fallback`` (dateutil's) on the extension's forms, faster on them.

    For ``Z`` dateutil attaches ``tzlocal()`` when the process's zone is named UTC (as on
    Azure Functions) and ``tzutc()`` otherwise (``dateutil/parser/_parser.py``:
    ``validate`` turns ``Z`` into the name ``UTC``; ``_build_tzaware`` prefers ``tzlocal()``
    for a name in ``time.tzname``); this does the same and leaves any other case to it.
    """
    from dateutil.tz import UTC, tzlocal  # type: ignore[import-untyped]

    def parse_timestamp(text: Any) -> datetime:
        if isinstance(text, str) and _FAST_FORM.match(text):
            try:
                if not text.endswith("Z"):
                    return datetime.fromisoformat(text)
                naive = datetime.fromisoformat(text[:-1])
            except ValueError:  # e.g. month 13: let the SDK's parser raise its own error
                return fallback(text)
            if "UTC" not in time.tzname:
                return naive.replace(tzinfo=UTC)
            aware = naive.replace(tzinfo=tzlocal())
            if aware.tzname() == "UTC":
                return aware
        return fallback(text)

    parse_timestamp.fallback = fallback  # type: ignore[attr-defined]
    return parse_timestamp


def installed_sdk_version() -> tuple[int, ...] | None:
    """The installed SDK's version from its ``.dist-info`` directory name, or None.

    (``importlib.metadata`` costs about 60 ms to import; the app's cold start pays for it.)
    """
    package = sys.modules.get("azure.durable_functions") or import_module("azure.durable_functions")
    site = os.path.dirname(os.path.dirname(os.path.dirname(package.__file__ or "")))
    for name in os.listdir(site or "."):
        match = re.fullmatch(rf"{DISTRIBUTION}-(\d+(?:\.\d+)*)\.dist-info", name)
        if match:
            return tuple(int(part) for part in match.group(1).split("."))
    return None


def apply() -> bool:
    """Install the fast parser into the SDK's ``HistoryEvent`` module; True if it is active.

    Does nothing (False) outside ``SUPPORTED_SDK`` or when the module no longer reads
    timestamps through dateutil's ``parse`` under the name ``dt_parse``.
    """
    version = installed_sdk_version()
    if version is None or not SUPPORTED_SDK[0] <= version < SUPPORTED_SDK[1]:
        return False
    module = import_module(HISTORY_EVENT_MODULE)
    current = getattr(module, "dt_parse", None)
    if getattr(current, "fallback", None) is not None:
        return True  # already applied
    if current is None or getattr(current, "__module__", "") != "dateutil.parser._parser":
        return False
    module.dt_parse = fast_parser(current)  # type: ignore[attr-defined]
    return True


def remove() -> None:
    """Undo :func:`apply` (benchmarks measure with and without it in one process)."""
    module = import_module(HISTORY_EVENT_MODULE)
    fallback = getattr(getattr(module, "dt_parse", None), "fallback", None)
    if fallback is not None:
        module.dt_parse = fallback  # type: ignore[attr-defined]
