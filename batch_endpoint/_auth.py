"""Bearer tokens for the batch endpoint (data plane) and ARM (job cancel).

Tokens are cached per scope and refreshed within 5 minutes of ``expires_on``. The data-plane
(``https://ml.azure.com/.default``) and ARM scopes are separate providers: a token for one
audience is refused by the other.
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from batch_endpoint._errors import BatchEndpointError, redact_text

if TYPE_CHECKING:  # azure-core is imported on first use, not when the app is indexed
    from azure.core.credentials import AccessToken, TokenCredential

logger = logging.getLogger(__name__)

#: The bearer token sent when ``BATCH_ENDPOINT_AUTH=none`` (offline stack; loopback only).
DEV_TOKEN = "local-dev"
#: Refresh a cached token this many seconds before it expires.
REFRESH_MARGIN_SECONDS = 300.0


class TokenProvider(Protocol):
    """Something that returns a bearer token (without the ``Bearer`` prefix)."""

    def get_token(self) -> str:
        """Return a currently valid bearer token.

        Raises:
            BatchEndpointError: No token could be obtained.
        """
        ...


class StaticTokenProvider:
    """Always returns the same token (offline stack and tests)."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("token must not be empty")
        self._token = token

    def __repr__(self) -> str:
        return "StaticTokenProvider(<token>)"  # never show the token

    def get_token(self) -> str:
        """Return the fixed token."""
        return self._token


class CredentialTokenProvider:
    """Caches an azure-core ``AccessToken`` for one scope; thread-safe.

    Args:
        credential: An azure-core ``TokenCredential`` (e.g. ``DefaultAzureCredential``).
        scope: The scope to request, e.g. ``https://ml.azure.com/.default``.
        clock: Seconds since the epoch (``expires_on`` is epoch seconds); injectable for tests.
    """

    def __init__(
        self,
        credential: "TokenCredential",
        scope: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not scope:
            raise ValueError("scope must not be empty")
        self._credential = credential
        self.scope = scope
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: AccessToken | None = None

    def __repr__(self) -> str:
        return f"CredentialTokenProvider(scope={self.scope!r})"

    def get_token(self) -> str:
        """Return a token valid for at least 5 more minutes, fetching one when needed.

        Raises:
            BatchEndpointError: The credential failed; ``retryable`` is False when no
                credential is available at all (configuration problem), True otherwise.
        """
        from azure.core.exceptions import ClientAuthenticationError

        with self._lock:
            cached = self._cached
            if cached is not None and self._clock() < cached.expires_on - REFRESH_MARGIN_SECONDS:
                return cached.token
            try:
                fresh = self._credential.get_token(self.scope)
            except ClientAuthenticationError as exc:
                unavailable = type(exc).__name__ == "CredentialUnavailableError"
                logger.warning(
                    "could not get a token for scope %s: %s", self.scope, type(exc).__name__
                )
                raise BatchEndpointError(
                    f"could not get an access token for {self.scope}: "
                    f"{type(exc).__name__}: {redact_text(str(exc), limit=300)}",
                    retryable=not unavailable,
                ) from exc
            logger.debug("fetched a token for scope %s", self.scope)
            self._cached = fresh
            return fresh.token
