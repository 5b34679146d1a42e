"""App settings the Functions host reads about functions: the disable switch and the time zone.

- ``AzureWebJobs.<fn>.Disabled`` (or ``AzureWebJobs_<fn>_Disabled``, as Linux has no dots in
  variable names) true: the function's trigger listener is not started, so timers and blob
  triggers never fire (Azure/azure-webjobs-sdk
  ``src/Microsoft.Azure.WebJobs.Host/Listeners/HostListenerFactory.cs``, ``IsDisabled``:
  ``configuration.IsSettingEnabled(settingName)``, true for "true" in any case or "1").
- ``WEBSITE_TIME_ZONE``: timer schedules are read in that zone instead of UTC (Azure Functions
  timer trigger documentation, "NCRONTAB time zones"). devhost takes the Linux (IANA) form,
  ``America/New_York``; a Windows name (``Eastern Standard Time``) is refused at start-up.
- host.json ``functionTimeout``: enforced on activities (``devhost.activity``).
- ``WEBSITE_HOSTNAME``: the host name of the extensions' webhook URLs, so of the durable client
  binding's management URLs (``webhook_origin``).
"""

import re
from collections.abc import Mapping
from datetime import timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devhost.errors import SettingsError

__all__ = ["function_disabled", "function_timeout", "timer_time_zone", "webhook_origin"]

_HOST_NAME = re.compile(r"[A-Za-z0-9.\-]+(?::\d{1,5})?|\[[0-9A-Fa-f:.]+\](?::\d{1,5})?")
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})")


def _enabled(value: str | None) -> bool:
    return value is not None and (value.strip().lower() == "true" or value.strip() == "1")


def function_disabled(name: str, environ: Mapping[str, str]) -> bool:
    """Whether ``AzureWebJobs.<name>.Disabled`` (or its Linux form) is set to true."""
    return _enabled(environ.get(f"AzureWebJobs.{name}.Disabled")) or _enabled(
        environ.get(f"AzureWebJobs_{name}_Disabled")
    )


def timer_time_zone(environ: Mapping[str, str]) -> tzinfo | None:
    """The zone of ``WEBSITE_TIME_ZONE`` (None: UTC).

    Raises:
        SettingsError: not an IANA time zone name.
    """
    name = (environ.get("WEBSITE_TIME_ZONE") or "").strip()
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(
            f"WEBSITE_TIME_ZONE={name!r} is not an IANA time zone (devhost takes the Linux form, "
            "e.g. 'Europe/Paris')"
        ) from exc


def function_timeout(value: object) -> timedelta | None:
    """host.json ``functionTimeout`` (``[d.]hh:mm:ss``; ``-1`` or absent: unlimited).

    Raises:
        SettingsError: not a TimeSpan.
    """
    if value is None or str(value).strip() == "-1":
        return None
    match = _TIMESPAN.fullmatch(str(value).strip())
    if match is None:
        raise SettingsError(f"host.json functionTimeout {value!r} is not a TimeSpan (hh:mm:ss)")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def webhook_origin(environ: Mapping[str, str], default: str) -> str:
    """The scheme and authority of the extensions' webhook URLs (``default`` without
    ``WEBSITE_HOSTNAME``: devhost's own address, where Core Tools sets ``localhost:<port>``).

    As the Functions host's ``DefaultScriptWebHookProvider.GetExtensionWebHookRoute``
    (Azure/azure-functions-host ``src/WebJobs.Script.WebHost/DefaultScriptWebHookProvider.cs``):
    the host name from ``HostNameProvider`` (``WEBSITE_HOSTNAME``), ``http`` for a name
    starting ``localhost:``, else ``https``. The Durable extension builds the client binding's
    URLs from that webhook URI alone (``HttpApiHandler.GetBaseUrl``, ``HttpApiHandler.cs``
    lines 1131-1137, v2.13.7), never from a request's ``Host``.

    Raises:
        SettingsError: ``WEBSITE_HOSTNAME`` is not a host name with an optional port.
    """
    name = environ.get("WEBSITE_HOSTNAME", "").strip()
    if not name:
        return default
    if _HOST_NAME.fullmatch(name) is None:
        raise SettingsError(f"WEBSITE_HOSTNAME: {name!r} is not a host name with an optional port")
    scheme = "http" if name.lower().startswith("localhost:") else "https"
    return f"{scheme}://{name}"
