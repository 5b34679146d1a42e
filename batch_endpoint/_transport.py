"""The last guard before a token leaves: bearer auth that checks the request's real target.

:class:`BearerTokenAuth` is a ``requests`` auth hook. ``requests`` calls it while preparing a
request, after the final URL is built, so it sees exactly the URL that the transport will
connect to. It reads that URL the way ``requests``' ``HTTPAdapter`` does to choose the
connection (``urllib.parse.urlparse``: scheme, ``hostname``, ``port``), cross-checks it with
urllib3's ``parse_url``, and attaches ``Authorization`` only when the :class:`HostGuard` permits
that host and port. Otherwise it raises :class:`HostNotAllowedError` before a byte is sent.

:class:`GuardedAdapter` repeats the check at send time: a request that carries
``Authorization`` must still target the host the auth hook approved (so a URL changed after
preparation, or a header added by other code, never leaves), and a plain-``http`` request with a
token is never sent through a proxy, which would see it in clear text.
"""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from requests.utils import select_proxy
from urllib3.util import parse_url

from batch_endpoint._allowlist import host_allowed
from batch_endpoint._auth import TokenProvider
from batch_endpoint._errors import HostNotAllowedError
from batch_endpoint._url import ServiceUrl, is_loopback

logger = logging.getLogger(__name__)

_DEFAULT_PORTS = {"https": 443, "http": 80}
_APPROVED = "_batch_endpoint_token_target"

Target = tuple[str, str, int]


def connection_target(url: str | None) -> Target | None:
    """``(scheme, host, port)`` that ``requests`` connects to for ``url``, or None if unclear.

    None when the URL cannot be read, has no host, or when urllib3 reads another host or port
    than the standard library does (a parser differential).
    """
    if not url:
        return None
    try:
        split = urlparse(url)
        port = split.port
        u3 = parse_url(url)
    except ValueError:
        return None
    scheme = split.scheme.lower()
    host = (split.hostname or "").lower()
    if not host or scheme not in _DEFAULT_PORTS:
        return None
    effective = port if port is not None else _DEFAULT_PORTS[scheme]
    u3_host = (u3.host or "").lower().strip("[]")
    u3_port = u3.port if u3.port is not None else _DEFAULT_PORTS.get((u3.scheme or "").lower())
    if u3_host != host or u3_port != effective:
        return None
    return scheme, host, effective


@dataclass(frozen=True, slots=True)
class HostGuard:
    """Which hosts may receive one token.

    Attributes:
        allowed_hosts: Allowlist patterns (see :mod:`batch_endpoint._allowlist`).
        loopback_only: Also require a loopback host (the development token).
        purpose: Names the token in refusals, e.g. ``"the Azure ML token"``.
    """

    allowed_hosts: tuple[str, ...]
    loopback_only: bool = False
    purpose: str = "the app's token"

    @classmethod
    def exact(cls, url: ServiceUrl, *, purpose: str) -> "HostGuard":
        """A guard that permits only ``url``'s host and effective port."""
        host = f"[{url.host}]" if ":" in url.host else url.host
        return cls((f"{host}:{url.effective_port}",), purpose=purpose)

    def permits(self, scheme: str, host: str, port: int) -> bool:
        """Whether a request to ``scheme://host:port`` may carry the token."""
        if self.loopback_only and not is_loopback(host):
            return False
        if scheme == "http" and not is_loopback(host):
            return False
        return host_allowed(host, port, self.allowed_hosts)

    def refuse(self, target: Target | None, url: str | None) -> HostNotAllowedError:
        """The error (logged once, without the token) for a refused request."""
        shown = f"{target[1]}:{target[2]}" if target else "an unreadable host"
        logger.warning("refused to send %s to %s: host not allowed", self.purpose, shown)
        return HostNotAllowedError(
            shown,
            reason=(
                f"refused to send {self.purpose} to {shown}: the host is not allowed "
                "(BATCH_ENDPOINT_ALLOWED_HOSTS, auth mode and scheme rules)"
            ),
        )


class BearerTokenAuth(AuthBase):
    """Attach ``Authorization: Bearer <token>`` only for targets the guard permits.

    Args:
        tokens: Supplies the token (fetched per request; providers cache it).
        guard: Which hosts may receive it.
    """

    def __init__(self, tokens: TokenProvider, guard: HostGuard) -> None:
        self._tokens = tokens
        self.guard = guard

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        target = connection_target(r.url)
        if target is None or not self.guard.permits(*target):
            raise self.guard.refuse(target, r.url)
        r.headers["Authorization"] = f"Bearer {self._tokens.get_token()}"
        setattr(r, _APPROVED, target)
        return r


class GuardedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` that sends a request with ``Authorization`` only to its approved host."""

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        if "Authorization" in request.headers:
            target = connection_target(request.url)
            approved = getattr(request, _APPROVED, None)
            if target is None or target != approved:
                logger.warning(
                    "refused to send a request with a token: its target changed after approval"
                )
                raise HostNotAllowedError(
                    target[1] if target else "an unreadable host",
                    reason="refused to send a token to a host that was not approved for it",
                )
            if target[0] == "http" and select_proxy(request.url or "", dict(proxies or {})):
                raise HostNotAllowedError(
                    target[1], reason="refused to send a token over plain http through a proxy"
                )
        return super().send(
            request,
            stream=stream,
            timeout=timeout,
            verify=verify,
            cert=cert,
            proxies=dict(proxies or {}),
        )


def data_plane_guard(allowed_hosts: Sequence[str], auth_mode: str) -> HostGuard:
    """The guard for the Azure ML data-plane token under ``auth_mode``."""
    return HostGuard(
        tuple(allowed_hosts),
        loopback_only=auth_mode == "none",
        purpose="the Azure ML token" if auth_mode != "none" else "the development token",
    )
