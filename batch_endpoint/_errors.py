"""The error tree of the batch endpoint client.

```
BatchEndpointError(Exception)          .retryable: bool
├── TransportError                     connect/read timeout, reset        retryable
├── HttpError(status, code, message, request_id)
│   ├── RetryableHttpError             408, 429, 5xx (+ retry_after)      retryable
│   └── ClientError                    other 4xx                          not retryable
│       ├── AuthError                  401, 403
│       ├── NotFoundError              404
│       └── ConflictError              409
└── (the credential could not produce a token: BatchEndpointError itself, retryable unless the
    credential is unavailable)

HostNotAllowedError(ValueError)        a policy refusal, not a service error: the host may
                                       not receive the token; nothing was sent
```

Every class has ``to_dict()`` so that a failure can cross an activity boundary as a plain dict.
A final ``Failed`` or ``Canceled`` job is a value (:class:`BatchJob`), not an exception.
Messages stay short (Durable surfaces them as strings) and never carry tokens or SAS query
strings: any URL put into a message goes through :func:`redact_url` first.
"""

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

_MAX_MESSAGE = 500
# A URL (any scheme: https, azureml, wasbs, abfss, ...) followed by a query string: the query
# may be a SAS token, so it is cut off.
_URL_WITH_QUERY = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s?#\"'<>]*)[?#][^\s\"'<>]*")
# Credentials that can appear in free text outside a URL's query string.
_SECRETS = (
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer <redacted>"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "<redacted-jwt>"),
    (
        re.compile(
            r"(?i)\b(sig|signature|code|access_token|refresh_token|client_secret|password|"
            r"accountkey|sharedaccesskey)=[^&;\s\"'<>]*"
        ),
        r"\1=<redacted>",
    ),
)
# Schemes whose "user@" is not a credential but a container or filesystem name.
_CONTAINER_AT_SCHEMES = frozenset({"wasb", "wasbs", "abfs", "abfss"})


def redact_url(url: str) -> str:
    """Return ``url`` without its query string, fragment and user info.

    Query strings can carry SAS tokens and user info can carry passwords, so neither is ever
    printed or logged. (For ``wasbs://`` and ``abfss://`` the part before ``@`` is the container
    or filesystem, which is kept.)

    Args:
        url: Any URL-like string.

    Returns:
        The URL with ``?...``, ``#...`` and ``user:password@`` removed.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0]
    netloc = parts.netloc
    if parts.scheme.lower() not in _CONTAINER_AT_SCHEMES:
        netloc = netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_text(text: str, *, limit: int = _MAX_MESSAGE) -> str:
    """Redact credentials in ``text`` and truncate it to ``limit`` characters.

    Query strings are cut from every URL (SAS tokens), and bearer tokens, JWTs and
    ``sig=``/``code=``/``password=``-style values are replaced. The text is cut to a few times
    ``limit`` first, so that a huge service message costs linear time.

    Args:
        text: Free text, e.g. a service error message.
        limit: Maximum length of the result.

    Returns:
        The redacted, possibly truncated text.
    """
    cleaned = _URL_WITH_QUERY.sub(lambda m: m.group(1), text[: limit * 4])
    for pattern, replacement in _SECRETS:
        cleaned = pattern.sub(replacement, cleaned)
    if len(cleaned) > limit or len(text) > limit * 4:
        cleaned = cleaned[: limit - 3] + "..."
    return cleaned


class BatchEndpointError(Exception):
    """Base class of every error raised by :mod:`batch_endpoint`.

    Attributes:
        retryable: Whether repeating the same call may succeed.
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if retryable is not None:
            self.retryable = retryable

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description: ``{"type", "message", "retryable"}`` (+ class extras)."""
        return {"type": type(self).__name__, "message": str(self), "retryable": self.retryable}


class TransportError(BatchEndpointError):
    """The request did not get an HTTP answer: connect/read timeout, connection reset, DNS."""

    retryable = True


class HttpError(BatchEndpointError):
    """The service answered with an HTTP status that the operation does not accept.

    Attributes:
        status: The HTTP status code.
        code: The service's error code (``error.code``), if it sent one.
        message: The service's error message (redacted and truncated) or raw body text.
        request_id: The service's request id from the response headers, if any.
        host: The host that answered (for the message only).
    """

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        request_id: str | None = None,
        *,
        host: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.request_id = request_id
        self.host = host
        super().__init__(redact_text(message))

    def __str__(self) -> str:
        text = f"HTTP {self.status}"
        if self.code:
            text += f" {self.code}"
        if self.host:
            text += f" from {self.host}"
        if self.message:
            text += f": {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description including ``status``, ``code`` and ``request_id``."""
        data = super().to_dict()
        data.update(status=self.status, code=self.code, request_id=self.request_id)
        return data


class RetryableHttpError(HttpError):
    """408, 429 or 5xx: the same request may succeed later.

    Attributes:
        retry_after: Seconds the service asked us to wait (``Retry-After``), if it said.
    """

    retryable = True

    def __init__(
        self,
        status: int,
        code: str | None,
        message: str,
        request_id: str | None = None,
        *,
        host: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status, code, message, request_id, host=host)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description including ``retry_after``."""
        data = super().to_dict()
        data["retry_after"] = self.retry_after
        return data


class ClientError(HttpError):
    """A 4xx answer (other than 408/429): repeating the request will not help."""

    retryable = False


class AuthError(ClientError):
    """401 or 403: the token is missing, expired, for the wrong audience, or lacks RBAC rights."""


class NotFoundError(ClientError):
    """404: the endpoint or job does not exist."""


class ConflictError(ClientError):
    """409: e.g. a job with the requested name already exists."""


class HostNotAllowedError(ValueError):
    """A host may not receive the token (allowlist, auth mode or scheme rules); nothing was sent.

    A refusal by the caller's own policy, so it is a ``ValueError`` outside the service-error
    tree, never retried.

    Attributes:
        host: The refused host (with port if one was given).
        retryable: Always False.
    """

    retryable = False

    def __init__(self, host: str, *, reason: str | None = None) -> None:
        self.host = host
        self.message = reason or (
            f"host {host!r} is not allowed by BATCH_ENDPOINT_ALLOWED_HOSTS; "
            "the app's token is only sent to allowed hosts"
        )
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        """``{"type", "message", "retryable"}``, like the service errors."""
        return {"type": type(self).__name__, "message": self.message, "retryable": False}
