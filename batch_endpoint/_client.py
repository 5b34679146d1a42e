"""The batch endpoint REST client: invoke a job, read a job, cancel a job (ARM).

The client never waits for a job to finish: the orchestrator owns waiting. It retries only
transient failures (:class:`TransportError`, :class:`RetryableHttpError`), a bounded number of
times within a time budget, with full-jitter backoff and ``Retry-After`` honoured (capped).

Invoke is made safe to retry: every POST attempt of one call carries the same
``repeatability_request-id``, and with a deterministic ``job_name`` each attempt first looks the
job up by name, so an ambiguous failure (e.g. a read timeout after the service created the job)
never creates a second job.
"""

import functools
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests

from batch_endpoint._allowlist import check_host
from batch_endpoint._auth import TokenProvider, create_token_provider
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
from batch_endpoint._models import BatchJob, RunRequest
from batch_endpoint._policy import backoff_delay, parse_retry_after
from batch_endpoint._settings import get_settings
from batch_endpoint._transport import BearerTokenAuth, GuardedAdapter, HostGuard, data_plane_guard
from batch_endpoint._uris import parse_endpoint_uri
from batch_endpoint._url import ServiceUrl

logger = logging.getLogger(__name__)

ARM_CANCEL_API_VERSION = "2023-02-01-preview"
_MAX_BODY_TEXT = 500
_REQUEST_ID_HEADERS = ("x-ms-request-id", "x-request-id", "x-ms-client-request-id")
_T = TypeVar("_T")
_ARM_WORKSPACE = re.compile(
    r"^/subscriptions/[A-Za-z0-9._()-]+/resourceGroups/[A-Za-z0-9._()-]+"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/[A-Za-z0-9._-]+",
    re.IGNORECASE,
)


def _request_id(response: requests.Response) -> str | None:
    for header in _REQUEST_ID_HEADERS:
        value = response.headers.get(header)
        if value:
            return value[:100]
    return None


def _error_details(response: requests.Response) -> tuple[str | None, str]:
    """``(code, message)`` from an ARM-style error body, or the raw text (truncated)."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
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
    rid = _request_id(response)
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


class BatchEndpointClient:
    """Client for one batch endpoint (``{scoringUri}`` ending in ``/jobs``).

    The endpoint URI is read once into :class:`ServiceUrl` parts and every request URL is built
    from them. Tokens are attached by :class:`BearerTokenAuth`, which checks the prepared
    request's real target against the allowlist (the data-plane token) or the ARM host (the ARM
    token) just before sending.

    Args:
        endpoint_uri: The endpoint's scoring URI (text, or already parsed).
        token_provider: Data-plane tokens (``https://ml.azure.com/.default``).
        session: The process's shared ``requests.Session`` (see :func:`get_session`).
        allowed_hosts: ``BATCH_ENDPOINT_ALLOWED_HOSTS`` patterns.
        auth_mode: ``"azure"`` or ``"none"`` (loopback hosts only).
        timeout: ``(connect, read)`` seconds for every request.
        max_attempts: Attempts per operation, transient failures only (>= 1).
        retry_budget_seconds: Give up instead of sleeping past this much total time.
        sleep: Waits between attempts; injectable for tests.
        rng: Jitter source in ``[0, 1)``; injectable for tests.
        arm_endpoint: ARM base URL for cancel (https, or http for loopback).
        arm_token_provider: ARM tokens (``https://management.azure.com/.default``).
        clock: Monotonic seconds for the retry budget; injectable for tests.

    Raises:
        ValueError: A malformed endpoint or ARM URL, or a bad numeric option.
        HostNotAllowedError: The endpoint host fails the allowlist (checked before any token
            is requested).
    """

    def __init__(
        self,
        endpoint_uri: "str | ServiceUrl",
        token_provider: TokenProvider,
        *,
        session: requests.Session,
        allowed_hosts: Sequence[str],
        auth_mode: str = "azure",
        timeout: tuple[float, float] = (5.0, 30.0),
        max_attempts: int = 3,
        retry_budget_seconds: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        arm_endpoint: str | None = None,
        arm_token_provider: TokenProvider | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        endpoint = _parse_endpoint(endpoint_uri)
        check_host(endpoint, allowed_hosts, auth_mode)
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        if retry_budget_seconds < 0:
            raise ValueError(f"retry_budget_seconds must be >= 0, got {retry_budget_seconds}")
        if len(timeout) != 2 or min(timeout) <= 0:
            raise ValueError(f"timeout must be (connect, read) > 0, got {timeout!r}")
        arm = _parse_arm_endpoint(arm_endpoint) if arm_endpoint is not None else None
        self._endpoint = endpoint
        self.endpoint_uri = endpoint.url
        self._host = endpoint.netloc
        self._auth = BearerTokenAuth(token_provider, data_plane_guard(allowed_hosts, auth_mode))
        self._session = session
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._budget = retry_budget_seconds
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        self._arm = arm
        self.arm_endpoint = arm.url if arm is not None else None
        self._arm_auth = (
            BearerTokenAuth(arm_token_provider, HostGuard.exact(arm, purpose="the ARM token"))
            if arm is not None and arm_token_provider is not None
            else None
        )

    def __repr__(self) -> str:
        return f"BatchEndpointClient({self.endpoint_uri!r})"

    # ------------------------------------------------------------------ public operations

    def invoke(
        self,
        request: RunRequest,
        *,
        job_name: str | None = None,
        request_id: str | None = None,
    ) -> BatchJob:
        """Start a batch job (``POST {endpoint_uri}``), safely retryable.

        With ``job_name``, each attempt first GETs ``{endpoint}/{job_name}`` and returns that
        job if it exists (an activity re-run or an earlier ambiguous attempt created it), and a
        409 on POST is answered by reading the existing job.

        Args:
            request: The validated run request (its ``endpoint_uri`` is not used; the
                client's is).
            job_name: Deterministic job name (see ``job_name_for``), sent as
                ``properties.Name``.
            request_id: ``repeatability_request-id``; a uuid4 per call by default. The same
                value is sent on every attempt of this call.

        Returns:
            The created (or already existing) job.

        Raises:
            ValueError: ``job_name`` is not a valid name.
            AuthError: 401/403.
            NotFoundError: 404 (e.g. the endpoint does not exist).
            ConflictError: 409 without a ``job_name``.
            ClientError: Other 4xx (service code and message attached).
            RetryableHttpError: 408/429/5xx after all attempts or the time budget.
            TransportError: Timeouts/connection errors after all attempts or the budget.
            BatchEndpointError: A success response that is not a JSON job object, or no
                token could be obtained.
        """
        if job_name is not None:
            _validate_job_name(job_name)
        repeatability_id = request_id or str(uuid.uuid4())
        body = request.invoke_body(job_name)
        headers = {
            "Content-Type": "application/json",
            "repeatability_request-id": repeatability_id,
            "x-ms-client-request-id": repeatability_id,
        }
        if request.deployment_name:
            headers["azureml-model-deployment"] = request.deployment_name

        def attempt() -> BatchJob:
            if job_name is not None:
                existing = self._find_job_once(job_name)
                if existing is not None:
                    logger.info("batch job %s already exists; not submitting again", job_name)
                    return existing
            response = self._send_once(
                "POST",
                self._endpoint.url,
                self._auth,
                headers=headers,
                json=body,
                accepted=(200, 201),
            )
            return self._job_from(response)

        try:
            job = self._retrying("invoke", attempt)
        except ConflictError as exc:
            if job_name is None:
                logger.warning("invoke on %s failed: %s", self._host, exc)
                raise
            logger.info("batch job %s exists (409 on submit); reading it", job_name)
            return self.get_job(job_name)
        logger.info("submitted batch job %s (status %s)", job.name, job.status.value)
        return job

    def get_job(self, name: str) -> BatchJob:
        """Read a job (``GET {endpoint_uri}/{name}``).

        Args:
            name: The job name.

        Returns:
            The job with its current status (unknown statuses map to ``UNKNOWN``).

        Raises:
            ValueError: ``name`` is empty or contains ``/``, ``?``, ``#`` or whitespace.
            NotFoundError: No such job (404).
            AuthError: 401/403.
            ClientError: Other 4xx.
            RetryableHttpError: 408/429/5xx after all attempts or the time budget.
            TransportError: Timeouts/connection errors after all attempts or the budget.
            BatchEndpointError: A success response that is not a JSON job object.
        """
        url = self._job_url(name)

        def attempt() -> BatchJob:
            response = self._send_once("GET", url, self._auth, accepted=(200,))
            return self._job_from(response)

        return self._retrying("get_job", attempt)

    def cancel_job(self, job: BatchJob) -> None:
        """Ask ARM to cancel a job; poll the job to see it end.

        Sends ``POST {arm_endpoint}/subscriptions/.../workspaces/{ws}/jobs/{job.name}/cancel``
        with the ARM token; the workspace part is taken from ``job.id``.

        Args:
            job: The job; its ``id`` must be an ARM resource id in a workspace
                (``/subscriptions/.../workspaces/<ws>/...``).

        Raises:
            ValueError: ``job.id`` is not an ARM id, or the client has no ARM endpoint/token.
            NotFoundError: ARM does not know the job (404).
            AuthError: 401/403 (e.g. the identity lacks the cancel permission).
            ClientError: Other 4xx.
            RetryableHttpError: 408/429/5xx after all attempts or the time budget.
            TransportError: Timeouts/connection errors after all attempts or the budget.
        """
        match = _ARM_WORKSPACE.match(job.id)
        if match is None:
            raise ValueError(
                f"cannot cancel job {job.name}: its id is not an ARM resource id "
                "(/subscriptions/.../workspaces/<ws>/...)"
            )
        _validate_job_name(job.name)
        if self._arm is None or self._arm_auth is None:
            raise ValueError("cancel_job needs arm_endpoint and arm_token_provider")
        # ARM cancels workspace jobs by name, whatever the tail of the data-plane id looks like.
        # The workspace path matched a strict pattern and the name is quoted: the host stays
        # the validated ARM host.
        url = (
            f"{self._arm.url}{match.group(0)}/jobs/{quote(job.name, safe='')}/cancel"
            f"?api-version={ARM_CANCEL_API_VERSION}"
        )
        auth = self._arm_auth

        def attempt() -> None:
            self._send_once("POST", url, auth, accepted=(200, 202, 204))

        self._retrying("cancel_job", attempt)
        logger.info("requested cancel of batch job %s", job.name)

    # ------------------------------------------------------------------ internals

    def _job_url(self, name: str) -> str:
        _validate_job_name(name)
        # quote(safe="") escapes '/', '\\', '@', '?' and '#': the name cannot reach the authority.
        return f"{self._endpoint.url}/{quote(name, safe='')}"

    def _find_job_once(self, name: str) -> BatchJob | None:
        """One GET of the job: the job, or None on 404 (other errors propagate)."""
        try:
            response = self._send_once("GET", self._job_url(name), self._auth, accepted=(200,))
        except NotFoundError:
            return None
        return self._job_from(response)

    def _job_from(self, response: requests.Response) -> BatchJob:
        try:
            payload: Any = response.json()
        except ValueError:
            payload = None
        try:
            return BatchJob.from_response(payload)
        except ValueError as exc:
            raise HttpError(
                response.status_code,
                "UnexpectedResponse",
                f"expected a JSON job object: {exc}",
                _request_id(response),
                host=urlsplit(response.url).netloc or self._host,
            ) from exc

    def _send_once(
        self,
        method: str,
        url: str,
        auth: BearerTokenAuth,
        *,
        accepted: tuple[int, ...],
        headers: dict[str, str] | None = None,
        json: Any = None,
    ) -> requests.Response:
        """One HTTP exchange; raises the classified error for anything not ``accepted``.

        ``auth`` attaches the token (fetched per attempt: the provider caches it, and a long
        retry may cross an expiry) only after checking the prepared request's real target.

        Raises:
            HostNotAllowedError: The target may not receive the token; nothing was sent.
        """
        host = urlsplit(url).netloc
        all_headers = {"Accept": "application/json", **(headers or {})}
        try:
            response = self._session.request(
                method,
                url,
                auth=auth,
                headers=all_headers,
                json=json,
                data=None if json is not None else (b"" if method == "POST" else None),
                timeout=self._timeout,
                # Never follow redirects: the Authorization header must not travel elsewhere.
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise TransportError(
                f"{method} {redact_url(url)} timed out ({type(exc).__name__})"
            ) from exc
        except requests.RequestException as exc:
            raise TransportError(
                f"{method} {redact_url(url)} failed: {type(exc).__name__}"
            ) from exc
        with response:
            # Read the body now so the connection returns to the pool even on errors.
            _ = response.content
        if response.status_code in accepted:
            return response
        raise _classify(response, host)

    def _retrying(self, operation: str, attempt: Callable[[], _T]) -> _T:
        """Run ``attempt`` until it succeeds, a permanent error occurs, or limits are hit."""
        started = self._clock()
        for number in range(1, self._max_attempts + 1):
            try:
                result = attempt()
            except (TransportError, RetryableHttpError) as exc:
                if number >= self._max_attempts:
                    logger.warning(
                        "%s on %s failed after %d attempt(s): %s",
                        operation,
                        self._host,
                        number,
                        exc,
                    )
                    raise
                retry_after = exc.retry_after if isinstance(exc, RetryableHttpError) else None
                delay = backoff_delay(number, retry_after=retry_after, rng=self._rng)
                if self._clock() - started + delay > self._budget:
                    logger.warning(
                        "%s on %s failed, retry budget of %.0f s exhausted after %d attempt(s): %s",
                        operation,
                        self._host,
                        self._budget,
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
                self._sleep(delay)
            except ConflictError:
                raise  # invoke with a job name handles it; logged there otherwise
            except BatchEndpointError as exc:
                logger.warning("%s on %s failed: %s", operation, self._host, exc)
                raise
            else:
                logger.debug("%s on %s succeeded on attempt %d", operation, self._host, number)
                return result
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _validate_job_name(name: str) -> None:
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 255
        or name in {".", ".."}
        or any(c in name for c in "/?#\\%")
        or any(c.isspace() or not c.isprintable() for c in name)
    ):
        raise ValueError(f"invalid job name {name!r}: must be non-empty without '/', '?', '#'")


def _parse_endpoint(uri: "str | ServiceUrl") -> ServiceUrl:
    if isinstance(uri, ServiceUrl):
        return uri
    problem, url = parse_endpoint_uri(uri)
    if url is None:
        raise ValueError(f"endpoint URI {problem}")
    return url


def _parse_arm_endpoint(url: str) -> ServiceUrl:
    try:
        return ServiceUrl.parse(url, allow_path=False)
    except ValueError as exc:
        raise ValueError(
            "arm_endpoint must be an https URL without path (http only for loopback hosts): "
            f"it {exc}"
        ) from exc


@functools.cache
def get_session() -> requests.Session:
    """The process's shared ``requests.Session`` (pool of 32 per host, no adapter retries).

    Treat it as read-only: headers go on each request, not on the session.
    """
    session = requests.Session()
    # GuardedAdapter: a request carrying a token leaves only for the host its auth approved.
    adapter = GuardedAdapter(pool_connections=16, pool_maxsize=32)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@functools.lru_cache(maxsize=64)
def get_client(endpoint_uri: str) -> BatchEndpointClient:
    """A cached client for ``endpoint_uri`` built from :func:`get_settings`.

    Bounded (64 endpoints) because callers may name any endpoint the allowlist permits.

    Args:
        endpoint_uri: The endpoint's scoring URI.

    Returns:
        The client (shared session, cached token providers for data plane and ARM).

    Raises:
        SettingsError: Invalid settings.
        ValueError: Malformed endpoint URI.
        HostNotAllowedError: The host fails the allowlist or auth mode.
    """
    settings = get_settings()
    # Validate before building token providers so a refused host never causes credential work.
    endpoint = _parse_endpoint(endpoint_uri)
    check_host(endpoint, settings.allowed_hosts, settings.auth_mode)
    return BatchEndpointClient(
        endpoint,
        create_token_provider(settings, scope=settings.token_scope),
        session=get_session(),
        allowed_hosts=settings.allowed_hosts,
        auth_mode=settings.auth_mode,
        timeout=settings.http_timeout,
        max_attempts=settings.http_max_attempts,
        retry_budget_seconds=settings.http_retry_budget_seconds,
        arm_endpoint=settings.arm_endpoint,
        arm_token_provider=create_token_provider(settings, scope=settings.arm_token_scope),
    )
