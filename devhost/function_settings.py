"""App settings the Functions host reads about functions: the disable switch and the time zone.

- ``AzureWebJobs.<fn>.Disabled`` (or ``AzureWebJobs_<fn>_Disabled``, as Linux has no dots in
  variable names) true: the function's trigger listener is not started, so timers and blob
  triggers never fire (Azure/azure-webjobs-sdk
  ``src/Microsoft.Azure.WebJobs.Host/Listeners/HostListenerFactory.cs``, ``IsDisabled``:
  ``configuration.IsSettingEnabled(settingName)``, true for "true" in any case or "1").
- ``WEBSITE_TIME_ZONE``: timer schedules are read in that zone instead of UTC (Azure Functions
  timer trigger documentation, "NCRONTAB time zones"). devhost takes the Linux (IANA) form,
  ``America/New_York``; a Windows name (``Eastern Standard Time``) is refused at start-up.
"""

from collections.abc import Mapping
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from devhost.errors import SettingsError

__all__ = ["function_disabled", "timer_time_zone"]


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
