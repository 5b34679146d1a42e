"""Which hosts may receive the app's bearer token (``BATCH_ENDPOINT_ALLOWED_HOSTS``).

A caller may name any ``endpoint_uri``; without this check a caller could make the app send its
Azure ML token to a server of their choice. Patterns are:

- an exact host, e.g. ``myendpoint.westeurope.inference.ml.azure.com`` or ``127.0.0.1``;
- ``*.suffix``: one or more labels before ``suffix`` (never the bare suffix itself);
- either form with ``:port``, which must then match the URL's port exactly.

A lone ``*`` is refused by the settings loader as too broad.
"""

import ipaddress
import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from batch_endpoint._errors import HostNotAllowedError

if TYPE_CHECKING:
    from batch_endpoint._settings import Settings

logger = logging.getLogger(__name__)

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_DEFAULT_PORTS = {"https": 443, "http": 80}


def is_loopback(host: str) -> bool:
    """Whether ``host`` is the local machine (``localhost``, ``127.0.0.0/8`` or ``::1``).

    Args:
        host: A host name or IP literal, optionally in IPv6 brackets.

    Returns:
        True for loopback hosts only.
    """
    name = host.strip().lower().strip("[]").rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
    port: int | None = None
    host = text
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{pattern!r} has an unclosed '['")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{pattern!r} has text after ']'")
            port = _parse_port(rest[1:], pattern)
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise ValueError(f"{pattern!r} is not a valid IPv6 address") from exc
        return host, port
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


def _host_and_port(uri: str) -> tuple[str, int | None, str]:
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise ValueError("endpoint URI is not a valid URL") from exc
    host = parts.hostname or ""
    if not host:
        raise ValueError("endpoint URI has no host")
    scheme = parts.scheme.lower()
    return host, port if port is not None else _DEFAULT_PORTS.get(scheme), scheme


def check_host(uri: str, allowed_hosts: Sequence[str], auth_mode: str) -> None:
    """Refuse ``uri`` unless its host may receive a token under ``auth_mode``.

    Args:
        uri: The endpoint URI.
        allowed_hosts: Allowlist patterns.
        auth_mode: ``"azure"`` or ``"none"``; ``"none"`` is only for loopback hosts.

    Raises:
        ValueError: ``uri`` has no parsable host.
        HostNotAllowedError: The host fails the allowlist, or auth ``none`` with a remote host.
    """
    host, port, _ = _host_and_port(uri)
    shown = f"{host}:{port}" if port not in (None, 443, 80) else host
    if not host_allowed(host, port, allowed_hosts):
        raise HostNotAllowedError(shown)
    if auth_mode == "none" and not is_loopback(host):
        raise HostNotAllowedError(
            shown,
            reason=(
                f"host {shown!r} is not a loopback host; BATCH_ENDPOINT_AUTH=none (the development "
                "token) is only allowed for 127.0.0.1, localhost and ::1"
            ),
        )


def check_endpoint(uri: str, settings: "Settings") -> None:
    """Refuse ``uri`` unless its host passes ``settings.allowed_hosts`` and the auth mode.

    Args:
        uri: The endpoint URI.
        settings: Supplies ``allowed_hosts`` and ``auth_mode``.

    Raises:
        ValueError: ``uri`` has no parsable host.
        HostNotAllowedError: The host fails the allowlist, or auth ``none`` with a remote host.
    """
    check_host(uri, settings.allowed_hosts, settings.auth_mode)
