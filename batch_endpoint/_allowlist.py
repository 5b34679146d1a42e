"""Which hosts may receive the app's bearer token (``BATCH_ENDPOINT_ALLOWED_HOSTS``).

A caller may name any ``endpoint_uri``; without this check a caller could make the app send its
Azure ML token to a server of their choice. Patterns are:

- an exact host, e.g. ``myendpoint.westeurope.inference.ml.azure.com`` or ``127.0.0.1``;
- ``*.suffix``: one or more labels before ``suffix`` (never the bare suffix itself);
- either form with ``:port``, which must then match the URL's port exactly.

A lone ``*`` is refused by the settings loader as too broad.
"""

import ipaddress
import re
from collections.abc import Sequence

from batch_endpoint._errors import HostNotAllowedError
from batch_endpoint._url import ServiceUrl, is_loopback

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*\Z")
_DEFAULT_PORTS = {"https": 443, "http": 80}


def parse_host_pattern(pattern: str) -> tuple[str, int | None]:
    """Split and validate one allowlist pattern.

    Args:
        pattern: ``host``, ``*.suffix``, ``[v6]`` or any of these with ``:port``.

    Returns:
        ``(host_part, port)`` with the host part lower-cased (brackets removed for IPv6).

    Raises:
        ValueError: The pattern is empty, ``*``, has a misplaced wildcard or a bad port.
    """
    text = pattern.strip().lower()
    if not text:
        raise ValueError("empty host pattern")
    if text in {"*", "*.*"} or text.startswith("*:"):
        raise ValueError(f"{pattern!r} is too broad; name a host or '*.suffix'")
    if text.startswith("["):
        return _ipv6_pattern(text, pattern)
    port: int | None = None
    host = text
    if text.count(":") == 1:
        host, port_text = text.split(":")
        port = _parse_port(port_text, pattern)
    elif ":" in text:
        raise ValueError(f"{pattern!r}: put IPv6 addresses in brackets, e.g. [::1]:5100")
    name = host[2:] if host.startswith("*.") else host
    if "*" in name:
        raise ValueError(f"{pattern!r}: '*' is only allowed as a leading '*.' label")
    if not _HOSTNAME.match(name):
        raise ValueError(f"{pattern!r} is not a valid host name")
    if host.startswith("*.") and "." not in name:
        raise ValueError(f"{pattern!r} is too broad; use at least two labels after '*.'")
    return host, port


def _ipv6_pattern(text: str, pattern: str) -> tuple[str, int | None]:
    end = text.find("]")
    if end < 0:
        raise ValueError(f"{pattern!r} has an unclosed '['")
    host, rest = text[1:end], text[end + 1 :]
    port: int | None = None
    if rest:
        if not rest.startswith(":"):
            raise ValueError(f"{pattern!r} has text after ']'")
        port = _parse_port(rest[1:], pattern)
    try:
        ipaddress.IPv6Address(host)
    except ValueError as exc:
        raise ValueError(f"{pattern!r} is not a valid IPv6 address") from exc
    return host, port


def _parse_port(text: str, pattern: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{pattern!r} has an invalid port {text!r}")
    return int(text)


def host_allowed(host: str, port: int | None, patterns: Sequence[str]) -> bool:
    """Whether ``host``/``port`` matches one of ``patterns``.

    Args:
        host: The URL's host (case-insensitive; IPv6 with or without brackets).
        port: The URL's effective port, or None if unknown. A pattern with a port never
            matches a None port.
        patterns: Allowlist patterns (see module docstring). Invalid patterns never match.

    Returns:
        True if some pattern matches.
    """
    name = host.strip().lower().strip("[]").rstrip(".")
    if not name:
        return False
    for pattern in patterns:
        try:
            p_host, p_port = parse_host_pattern(pattern)
        except ValueError:
            continue
        if p_port is not None and p_port != port:
            continue
        if p_host.startswith("*."):
            suffix = p_host[1:]  # ".suffix"
            label_part = name[: -len(suffix)]
            if name.endswith(suffix) and label_part and not label_part.endswith("."):
                return True
        elif name == p_host:
            return True
    return False


def check_host(uri: "str | ServiceUrl", allowed_hosts: Sequence[str], auth_mode: str) -> None:
    """Refuse ``uri`` unless its host may receive a token under ``auth_mode``.

    The host is taken from the one strict reading of the URL (:class:`ServiceUrl`), the same
    parts every request to it is built from.

    Args:
        uri: The endpoint URI, as text or already parsed.
        allowed_hosts: Allowlist patterns.
        auth_mode: ``"azure"`` or ``"none"``; ``"none"`` is only for loopback hosts.

    Raises:
        ValueError: ``uri`` is not a valid service URL.
        HostNotAllowedError: The host fails the allowlist, or auth ``none`` with a remote host.
    """
    url = uri if isinstance(uri, ServiceUrl) else ServiceUrl.parse(uri)
    port = url.effective_port
    shown = url.netloc if port not in (443, 80) else url.host
    if not host_allowed(url.host, port, allowed_hosts):
        raise HostNotAllowedError(shown)
    if auth_mode == "none" and not is_loopback(url.host):
        raise HostNotAllowedError(
            shown,
            reason=(
                f"host {shown!r} is not a loopback host; BATCH_ENDPOINT_AUTH=none (the development "
                "token) is only allowed for 127.0.0.1, localhost and ::1"
            ),
        )
