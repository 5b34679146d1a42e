"""The workspace jobs client (ARM): cancel a batch job.

Batch jobs are workspace jobs: ARM cancels them at
``POST {arm}/subscriptions/.../workspaces/{ws}/jobs/{name}/cancel``. The ARM token is a different
audience from the data-plane token and goes only to the configured ARM host.
"""

import logging
import re
from urllib.parse import quote

import requests

from batch_endpoint._auth import TokenProvider
from batch_endpoint._client import validate_job_name
from batch_endpoint._models import BatchJob
from batch_endpoint._pipeline import Pipeline, create_session
from batch_endpoint._retry import RetryPolicy
from batch_endpoint._transport import BearerTokenAuth, HostGuard
from batch_endpoint._url import ServiceUrl

logger = logging.getLogger(__name__)

ARM_CANCEL_API_VERSION = "2023-02-01-preview"
_ARM_WORKSPACE = re.compile(
    r"^/subscriptions/[A-Za-z0-9._()-]+/resourceGroups/[A-Za-z0-9._()-]+"
    r"/providers/Microsoft\.MachineLearningServices/workspaces/[A-Za-z0-9._-]+",
    re.IGNORECASE,
)


class WorkspaceJobsClient:
    """Client for Azure ML workspace jobs through ARM.

    Args:
        arm_endpoint: ARM base URL (``https://management.azure.com``; http only for loopback).
        credential: Supplies ARM tokens (``https://management.azure.com/.default``).
        session: A session from :func:`create_session`; a new one if None.
        retry_policy: How transient failures are retried.
        timeout: ``(connect, read)`` seconds for every request.

    Raises:
        ValueError: A malformed ARM URL or timeout.
    """

    def __init__(
        self,
        arm_endpoint: "str | ServiceUrl",
        credential: TokenProvider,
        *,
        session: requests.Session | None = None,
        retry_policy: RetryPolicy | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
    ) -> None:
        if isinstance(arm_endpoint, ServiceUrl):
            arm = arm_endpoint
        else:
            try:
                arm = ServiceUrl.parse(arm_endpoint, allow_path=False)
            except ValueError as exc:
                raise ValueError(
                    "arm_endpoint must be an https URL without path (http only for loopback "
                    f"hosts): it {exc}"
                ) from exc
        self._arm = arm
        self.arm_endpoint = arm.url
        self._pipeline = Pipeline(
            session if session is not None else create_session(),
            BearerTokenAuth(credential, HostGuard.exact(arm, purpose="the ARM token")),
            timeout=timeout,
            policy=retry_policy or RetryPolicy(),
            host=arm.netloc,
        )

    def __repr__(self) -> str:
        return f"WorkspaceJobsClient({self.arm_endpoint!r})"

    def cancel_job(self, job: BatchJob) -> None:
        """Ask ARM to cancel a job; poll the job to see it end.

        Args:
            job: The job; its ``id`` must be an ARM resource id in a workspace
                (``/subscriptions/.../workspaces/<ws>/...``).

        Raises:
            ValueError: ``job.id`` is not an ARM id, or the job name is invalid.
            HostNotAllowedError: The request's real target is not the ARM host.
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
        validate_job_name(job.name)
        # ARM cancels workspace jobs by name, whatever the tail of the data-plane id looks like.
        # The workspace path matched a strict pattern and the name is quoted: the host stays
        # the validated ARM host.
        url = (
            f"{self._arm.url}{match.group(0)}/jobs/{quote(job.name, safe='')}/cancel"
            f"?api-version={ARM_CANCEL_API_VERSION}"
        )

        def attempt() -> None:
            self._pipeline.send_once("POST", url, accepted=(200, 202, 204))

        self._pipeline.retrying("cancel_job", attempt)
        logger.info("requested cancel of batch job %s", job.name)
