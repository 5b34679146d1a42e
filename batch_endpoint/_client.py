"""The batch endpoint data-plane client: invoke a job, read a job.

The client never waits for a job to finish: the orchestrator owns waiting. It retries only
transient failures (:class:`TransportError`, :class:`RetryableHttpError`) under its
:class:`RetryPolicy`.

Invoke is made safe to retry: every POST attempt of one call carries the same
``repeatability_request-id``, and with a deterministic ``job_name`` each attempt first looks the
job up by name, so an ambiguous failure (e.g. a read timeout after the service created the job)
never creates a second job.

Cancel is an ARM operation on the workspace's jobs: see :class:`WorkspaceJobsClient`.
"""

import logging
import uuid
from collections.abc import Callable, Sequence
from urllib.parse import quote, urlsplit

import requests

from batch_endpoint._allowlist import check_host
from batch_endpoint._auth import TokenProvider
from batch_endpoint._errors import (
    BatchEndpointError,
    ConflictError,
    HttpError,
    NotFoundError,
    RetryableHttpError,
    TransportError,
)
from batch_endpoint._models import BatchJob, JobInvocation
from batch_endpoint._pipeline import Pipeline, create_session, json_of, request_id_of
from batch_endpoint._retry import RetryPolicy
from batch_endpoint._transport import BearerTokenAuth, data_plane_guard
from batch_endpoint._url import ServiceUrl

logger = logging.getLogger(__name__)


class BatchEndpointClient:
    """Client for one batch endpoint (its scoring URI, ending in ``/jobs``).

    The endpoint URI is read once into :class:`ServiceUrl` parts and every request URL is built
    from them. The token is attached by :class:`BearerTokenAuth`, which checks the prepared
    request's real target against ``allowed_hosts`` just before sending.

    Args:
        endpoint_uri: The endpoint's scoring URI (text, or already parsed).
        credential: Supplies data-plane tokens (``https://ml.azure.com/.default``), e.g. a
            :class:`CredentialTokenProvider` over an ``azure-identity`` credential.
        allowed_hosts: Host patterns that may receive the token (``*.inference.ml.azure.com``).
        auth_mode: ``"azure"``, or ``"none"`` for the development token (loopback hosts only).
        session: A session from :func:`create_session` (shared per process); a new one if None.
        retry_policy: How transient failures are retried.
        timeout: ``(connect, read)`` seconds for every request.

    Raises:
        ValueError: A malformed endpoint URI or timeout.
        HostNotAllowedError: The endpoint host fails the allowlist (checked before any token
            is requested).
    """

    def __init__(
        self,
        endpoint_uri: "str | ServiceUrl",
        credential: TokenProvider,
        *,
        allowed_hosts: Sequence[str],
        auth_mode: str = "azure",
        session: requests.Session | None = None,
        retry_policy: RetryPolicy | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
    ) -> None:
        endpoint = self.check_endpoint(
            endpoint_uri, allowed_hosts=allowed_hosts, auth_mode=auth_mode
        )
        self._endpoint = endpoint
        self.endpoint_uri = endpoint.url
        self._host = endpoint.netloc
        self._pipeline = Pipeline(
            session if session is not None else create_session(),
            BearerTokenAuth(credential, data_plane_guard(allowed_hosts, auth_mode)),
            timeout=timeout,
            policy=retry_policy or RetryPolicy(),
            host=endpoint.netloc,
        )

    @staticmethod
    def check_endpoint(
        endpoint_uri: "str | ServiceUrl", *, allowed_hosts: Sequence[str], auth_mode: str = "azure"
    ) -> ServiceUrl:
        """Parse a scoring URI and check its host, without building a client.

        Returns:
            The parsed URI.

        Raises:
            ValueError: A malformed endpoint URI.
            HostNotAllowedError: The host fails the allowlist or the auth mode.
        """
        if isinstance(endpoint_uri, ServiceUrl):
            endpoint = endpoint_uri
        else:
            try:
                endpoint = ServiceUrl.parse(endpoint_uri, path_suffix="/jobs")
            except ValueError as exc:
                raise ValueError(f"endpoint URI {exc}") from exc
        check_host(endpoint, allowed_hosts, auth_mode)
        return endpoint

    def __repr__(self) -> str:
        return f"BatchEndpointClient({self.endpoint_uri!r})"

    def invoke(
        self,
        invocation: JobInvocation,
        *,
        job_name: str | None = None,
        request_id: str | None = None,
        find_existing: Callable[[], BatchJob | None] | None = None,
    ) -> BatchJob:
        """Start a batch job (``POST {endpoint_uri}``), safely retryable.

        Duplicate-proof without the service's help:

        - ``find_existing`` (e.g. an ARM Jobs list search on a property the invocation carries)
          runs before the first POST of the call, and again before any POST that follows an
          ambiguous attempt (timeout, connection lost, 5xx: the service may have created the
          job); a job it finds is adopted. A failure of the first search is logged and the call
          goes on (nothing is known to be ambiguous yet); a failure of a later one propagates,
          so no second job is created blind.
        - With ``job_name`` (a fast path, for a service that honours client names), each
          attempt first GETs ``{endpoint}/{job_name}``, and a 409 on POST reads that job.

        Args:
            invocation: Inputs, outputs, overrides, tags, properties and deployment of the job.
            job_name: Deterministic job name, sent as ``properties.Name``.
            request_id: ``repeatability_request-id``; pass one derived from the run so every
                activity attempt sends the same (a uuid4 per call when None).
            find_existing: Looks for a job this run already created; None when it cannot.

        Returns:
            The created (or already existing) job.

        Raises:
            ValueError: ``job_name`` is not a valid name.
            HostNotAllowedError: The request's real target may not receive the token.
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
            validate_job_name(job_name)
        repeatability_id = request_id or str(uuid.uuid4())
        body = invocation.body(job_name)
        headers = {
            "Content-Type": "application/json",
            "repeatability_request-id": repeatability_id,
            "x-ms-client-request-id": repeatability_id,
        }
        if invocation.deployment_name:
            headers["azureml-model-deployment"] = invocation.deployment_name

        ambiguous = [False]

        def attempt() -> BatchJob:
            existing = self._existing(job_name, find_existing, after_ambiguity=ambiguous[0])
            if existing is not None:
                return existing
            try:
                response = self._pipeline.send_once(
                    "POST", self._endpoint.url, headers=headers, json=body, accepted=(200, 201)
                )
            except (TransportError, RetryableHttpError) as exc:
                # The body may have reached the service: look before posting again.
                ambiguous[0] = not isinstance(exc, RetryableHttpError) or exc.status >= 500
                raise
            return self._job_from(response)

        if find_existing is not None:
            try:
                found = find_existing()
            except (BatchEndpointError, ValueError) as exc:
                logger.warning("could not search for an existing job before submitting: %s", exc)
            else:
                if found is not None:
                    logger.info("batch job %s already exists for this run; adopting it", found.name)
                    return found

        try:
            job = self._pipeline.retrying("invoke", attempt)
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
            HostNotAllowedError: The request's real target may not receive the token.
            NotFoundError: No such job (404).
            AuthError: 401/403.
            ClientError: Other 4xx.
            RetryableHttpError: 408/429/5xx after all attempts or the time budget.
            TransportError: Timeouts/connection errors after all attempts or the budget.
            BatchEndpointError: A success response that is not a JSON job object.
        """
        url = self._job_url(name)

        def attempt() -> BatchJob:
            return self._job_from(self._pipeline.send_once("GET", url, accepted=(200,)))

        return self._pipeline.retrying("get_job", attempt)

    def _existing(
        self,
        job_name: str | None,
        find_existing: Callable[[], BatchJob | None] | None,
        *,
        after_ambiguity: bool,
    ) -> BatchJob | None:
        """The job an earlier attempt created, by name (fast path) or by search."""
        if job_name is not None:
            existing = self._find_job_once(job_name)
            if existing is not None:
                logger.info("batch job %s already exists; not submitting again", job_name)
                return existing
        if after_ambiguity and find_existing is not None:
            found = find_existing()
            if found is not None:
                logger.info(
                    "batch job %s was created by an ambiguous attempt; adopting it", found.name
                )
            return found
        return None

    def _job_url(self, name: str) -> str:
        validate_job_name(name)
        # quote(safe="") escapes '/', '\\', '@', '?' and '#': the name cannot reach the authority.
        return f"{self._endpoint.url}/{quote(name, safe='')}"

    def _find_job_once(self, name: str) -> BatchJob | None:
        """One GET of the job: the job, or None on 404 (other errors propagate)."""
        try:
            response = self._pipeline.send_once("GET", self._job_url(name), accepted=(200,))
        except NotFoundError:
            return None
        return self._job_from(response)

    def _job_from(self, response: requests.Response) -> BatchJob:
        try:
            return BatchJob.from_response(json_of(response))
        except ValueError as exc:
            raise HttpError(
                response.status_code,
                "UnexpectedResponse",
                f"expected a JSON job object: {exc}",
                request_id_of(response),
                host=urlsplit(response.url).netloc or self._host,
            ) from exc


def validate_job_name(name: str) -> None:
    """Refuse a job name that could not be one URL path segment.

    Raises:
        ValueError: Empty, over 255 characters, ``.``/``..``, or with ``/ ? # \\ %``,
            whitespace or unprintable characters.
    """
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 255
        or name in {".", ".."}
        or any(c in name for c in "/?#\\%")
        or any(c.isspace() or not c.isprintable() for c in name)
    ):
        raise ValueError(f"invalid job name {name!a}: must be non-empty without '/', '?', '#'")
