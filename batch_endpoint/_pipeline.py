"""The HTTP plumbing both clients share: one guarded exchange, error classification, retries.

:class:`Pipeline` sends one request at a time through the shared session with the token auth
of its client, classifies every unaccepted status into the error tree, and retries transient
failures under a :class:`RetryPolicy` (bounded attempts *and* time, full jitter, ``Retry-After``).
"""

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

from batch_endpoint._errors import (
    AuthError,
    BatchEndpointError,
    ClientError,
    ConflictError,
    HttpError,
    NotFoundError,
    RetryableHttpError,
    TransportError,
    redact_url,
)
from batch_endpoint._retry import RetryPolicy, parse_retry_after
from batch_endpoint._transport import BearerTokenAuth, GuardedAdapter

logger = logging.getLogger(__name__)

_MAX_BODY_TEXT = 500
#: Largest answer read (a job resource or a Jobs list page is a few KiB).
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_REQUEST_ID_HEADERS = ("x-ms-request-id", "x-request-id", "x-ms-client-request-id")
_T = TypeVar("_T")


def create_session(*, pool_maxsize: int = 10) -> requests.Session:
    """A ``requests.Session`` whose adapter sends a token only to the host that approved it.

    Treat it as read-only: headers go on each request, not on the session. No adapter retries:
    retries are the visible loop in :class:`Pipeline`.

    Args:
        pool_maxsize: Connections kept per host (size it to the worker's thread pool).
    """
    session = requests.Session()
    adapter = GuardedAdapter(pool_connections=16, pool_maxsize=pool_maxsize)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def json_of(response: requests.Response) -> Any:
    """The decoded JSON body, or None (not JSON, or nested too deep for the parser)."""
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


def request_id_of(response: requests.Response) -> str | None:
    for header in _REQUEST_ID_HEADERS:
        value = response.headers.get(header)
        if value:
            return value[:100]
    return None


def _error_details(response: requests.Response) -> tuple[str | None, str]:
    """``(code, message)`` from an ARM-style error body, or the raw text (truncated)."""
    payload = json_of(response)
    if isinstance(payload, dict):
        error = payload.get("error") if isinstance(payload.get("error"), dict) else payload
        assert isinstance(error, dict)
        code = error.get("code") or error.get("Code")
        message = error.get("message") or error.get("Message")
        if isinstance(message, str) or isinstance(code, str):
            return (
                code if isinstance(code, str) else None,
                message if isinstance(message, str) else "",
            )
    text = response.text.strip()
    return None, text[:_MAX_BODY_TEXT]


def _classify(response: requests.Response, host: str) -> HttpError:
    """The error for a non-accepted status."""
    status = response.status_code
    code, message = _error_details(response)
    rid = request_id_of(response)
    if status in (408, 429) or status >= 500:
        return RetryableHttpError(
            status,
            code,
            message,
            rid,
            host=host,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status in (401, 403):
        return AuthError(status, code, message, rid, host=host)
    if status == 404:
        return NotFoundError(status, code, message, rid, host=host)
    if status == 409:
        return ConflictError(status, code, message, rid, host=host)
    if 400 <= status < 500:
        return ClientError(status, code, message, rid, host=host)
    # 1xx/3xx or a 2xx this operation does not expect: not retryable, not a client error.
    return HttpError(status, code or "UnexpectedStatus", message, rid, host=host)


class Pipeline:
    """One client's way of sending: session, token auth, timeout and retry policy.

    Args:
        session: The shared session (see :func:`create_session`).
        auth: Attaches the client's token after checking the request's real target.
        timeout: ``(connect, read)`` seconds for every request.
        policy: How transient failures are retried.
        host: The service's ``host[:port]``, for messages and logs.
    """

    def __init__(
        self,
        session: requests.Session,
        auth: BearerTokenAuth,
        *,
        timeout: tuple[float, float],
        policy: RetryPolicy,
        host: str,
    ) -> None:
        if len(timeout) != 2 or min(timeout) <= 0:
            raise ValueError(f"timeout must be (connect, read) > 0, got {timeout!r}")
        self._session = session
        self.auth = auth
        self._timeout = timeout
        self.policy = policy
        self._host = host

    def send_once(
        self,
        method: str,
        url: str,
        *,
        accepted: tuple[int, ...],
        headers: dict[str, str] | None = None,
        json: Any = None,
    ) -> requests.Response:
        """One HTTP exchange; raises the classified error for anything not ``accepted``.

        The auth hook attaches the token (fetched per attempt: the provider caches it, and a
        long retry may cross an expiry) only after checking the prepared request's real target.

        Raises:
            HostNotAllowedError: The target may not receive the token; nothing was sent.
        """
        host = urlsplit(url).netloc
        all_headers = {"Accept": "application/json", **(headers or {})}
        started = time.monotonic()
        try:
            response = self._session.request(
                method,
                url,
                auth=self.auth,
                headers=all_headers,
                json=json,
                data=None if json is not None else (b"" if method == "POST" else None),
                timeout=self._timeout,
                # Never follow redirects: the Authorization header must not travel elsewhere.
                allow_redirects=False,
                stream=True,  # the body is read under a size cap and a deadline below
            )
        except requests.Timeout as exc:
            raise TransportError(
                f"{method} {redact_url(url)} timed out ({type(exc).__name__})"
            ) from exc
        except requests.RequestException as exc:
            raise TransportError(
                f"{method} {redact_url(url)} failed: {type(exc).__name__}"
            ) from exc
        self._read_body(response, method, url, started)
        if response.status_code in accepted:
            return response
        raise _classify(response, host)

    def _read_body(
        self, response: requests.Response, method: str, url: str, started: float
    ) -> None:
        """Read the body now (so the connection returns to the pool), at most
        :data:`MAX_RESPONSE_BYTES` and within one overall deadline: the read timeout applies
        per socket read, so a body dripped byte by byte would otherwise never time out.

        Raises:
            TransportError: The body took longer than the deadline (retryable).
            HttpError: The body is larger than the cap (not retryable).
        """
        deadline = started + self._timeout[0] + 2 * self._timeout[1]
        body = bytearray()
        with response:
            try:
                for chunk in response.iter_content(chunk_size=65536):
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise HttpError(
                            response.status_code,
                            "ResponseTooLarge",
                            f"the answer is over {MAX_RESPONSE_BYTES} bytes",
                            request_id_of(response),
                            host=urlsplit(url).netloc,
                        )
                    if time.monotonic() > deadline:
                        raise TransportError(
                            f"{method} {redact_url(url)}: the answer took longer than "
                            f"{deadline - started:.0f} s"
                        )
            except requests.RequestException as exc:
                raise TransportError(
                    f"{method} {redact_url(url)} failed while reading: {type(exc).__name__}"
                ) from exc
        response._content = bytes(body)  # what .content/.json() read from now on

    def retrying(self, operation: str, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt`` until it succeeds, a permanent error occurs, or limits are hit."""
        started = self.policy.clock()
        for number in range(1, self.policy.max_attempts + 1):
            try:
                result = attempt()
            except (TransportError, RetryableHttpError) as exc:
                if number >= self.policy.max_attempts:
                    logger.warning(
                        "%s on %s failed after %d attempt(s): %s",
                        operation,
                        self._host,
                        number,
                        exc,
                    )
                    raise
                retry_after = exc.retry_after if isinstance(exc, RetryableHttpError) else None
                delay = self.policy.delay(number, retry_after)
                if self.policy.clock() - started + delay > self.policy.budget_seconds:
                    logger.warning(
                        "%s on %s failed, retry budget of %.0f s exhausted after %d attempt(s): %s",
                        operation,
                        self._host,
                        self.policy.budget_seconds,
                        number,
                        exc,
                    )
                    raise
                logger.debug(
                    "%s on %s attempt %d failed (%s); retrying in %.2f s",
                    operation,
                    self._host,
                    number,
                    exc,
                    delay,
                )
                self.policy.sleep(delay)
            except ConflictError:
                raise  # invoke with a job name handles it; logged there otherwise
            except BatchEndpointError as exc:
                logger.warning("%s on %s failed: %s", operation, self._host, exc)
                raise
            else:
                logger.debug("%s on %s succeeded on attempt %d", operation, self._host, number)
                return result
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
