"""The workspace jobs client (ARM): find, read and cancel batch jobs.

Batch jobs are workspace jobs. The ARM Jobs API (``Microsoft.MachineLearningServices``
``workspaces/{ws}/jobs``: ``Jobs_List``, ``Jobs_Get``, ``Jobs_Cancel`` in azure-rest-api-specs)
lists them with ``tag`` (a tag key) and ``properties`` (``name=value`` pairs) filters and
``nextLink`` paging, reads them, and cancels them (``POST .../jobs/{name}/cancel``, 202). The ARM
token is a different audience from the data-plane token and goes only to the configured ARM
host: a ``nextLink`` pointing anywhere else is refused.
"""

import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

import requests

from batch_endpoint._auth import TokenProvider
from batch_endpoint._client import validate_job_name
from batch_endpoint._errors import HostNotAllowedError
from batch_endpoint._models import BatchJob
from batch_endpoint._pipeline import Pipeline, create_session, json_of
from batch_endpoint._retry import RetryPolicy
from batch_endpoint._transport import BearerTokenAuth, HostGuard
from batch_endpoint._url import ServiceUrl
from batch_endpoint._workspace import parse_workspace_id, workspace_of

logger = logging.getLogger(__name__)

ARM_CANCEL_API_VERSION = "2023-02-01-preview"
#: Jobs_List / Jobs_Get: the stable ARM API version with the ``properties`` list filter.
ARM_JOBS_API_VERSION = "2024-04-01"
#: Pages of a Jobs list followed at most (a run's own job is found on the first page or two).
MAX_LIST_PAGES = 20
_FILTER_TERM = re.compile(r"^[A-Za-z0-9_.:-]{1,256}\Z")


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

    def cancel_job(self, job: BatchJob, *, workspace_id: str | None = None) -> None:
        """Ask ARM to cancel a job; poll the job to see it end.

        Args:
            job: The job.
            workspace_id: The workspace ARM id (``AML_WORKSPACE_ID``); without it the workspace
                is taken from ``job.id`` when that is a workspace ARM id.

        Raises:
            ValueError: No workspace can be determined (names ``AML_WORKSPACE_ID``), or the
                job name is invalid.
            HostNotAllowedError: The request's real target is not the ARM host.
            NotFoundError: ARM does not know the job (404).
            AuthError: 401/403 (e.g. the identity lacks the cancel permission).
            ClientError: Other 4xx (e.g. 400 for a job that has already ended).
            RetryableHttpError: 408/429/5xx after all attempts or the time budget.
            TransportError: Timeouts/connection errors after all attempts or the budget.
        """
        workspace = workspace_of(job, workspace_id)
        validate_job_name(job.name)
        # The workspace path matched a strict pattern and the name is quoted: the host stays
        # the validated ARM host.
        url = (
            f"{self._arm.url}{workspace}/jobs/{quote(job.name, safe='')}/cancel"
            f"?api-version={ARM_CANCEL_API_VERSION}"
        )

        def attempt() -> None:
            self._pipeline.send_once("POST", url, accepted=(200, 202, 204))

        self._pipeline.retrying("cancel_job", attempt)
        logger.info("requested cancel of batch job %s", job.name)

    def get_job(self, name: str, *, workspace_id: str) -> BatchJob:
        """Read a job through ARM (``Jobs_Get``).

        Raises:
            ValueError: Bad workspace id or job name.
            NotFoundError: No such job.
            (and the other errors of :meth:`cancel_job`)
        """
        validate_job_name(name)
        url = (
            f"{self._arm.url}{parse_workspace_id(workspace_id)}/jobs/{quote(name, safe='')}"
            f"?api-version={ARM_JOBS_API_VERSION}"
        )

        def attempt() -> BatchJob:
            response = self._pipeline.send_once("GET", url, accepted=(200,))
            return BatchJob.from_response(json_of(response))

        return self._pipeline.retrying("get_workspace_job", attempt)

    def find_jobs(
        self,
        *,
        workspace_id: str,
        properties: Mapping[str, str] | None = None,
        tag: str | None = None,
    ) -> Iterator[BatchJob]:
        """List the workspace's jobs matching ``properties`` (all ``name=value``) and ``tag``.

        Follows ``nextLink`` (only on the ARM host, at most :data:`MAX_LIST_PAGES` pages).

        Raises:
            ValueError: Bad workspace id or filter text.
            HostNotAllowedError: A ``nextLink`` leads off the ARM host.
            (and the HTTP errors of :meth:`cancel_job`)
        """
        terms = [*(properties or {}).keys(), *(properties or {}).values(), *([tag] if tag else [])]
        if not all(_FILTER_TERM.match(term) for term in terms):
            raise ValueError("Jobs list filters take letters, digits and '_.:-' only")
        query = [("api-version", ARM_JOBS_API_VERSION)]
        if properties:
            query.append(("properties", ",".join(f"{k}={v}" for k, v in properties.items())))
        if tag:
            query.append(("tag", tag))
        url: str | None = (
            f"{self._arm.url}{parse_workspace_id(workspace_id)}/jobs?{urlencode(query)}"
        )
        for _ in range(MAX_LIST_PAGES):
            if url is None:
                return

            def attempt(page_url: str = url) -> Any:
                return json_of(self._pipeline.send_once("GET", page_url, accepted=(200,)))

            page = self._pipeline.retrying("list_jobs", attempt)
            for item in page.get("value") or [] if isinstance(page, dict) else []:
                try:
                    yield BatchJob.from_response(item)
                except ValueError:
                    continue  # not a job resource: skip it
            url = self._next_link(page)

    def _next_link(self, page: Any) -> str | None:
        link = page.get("nextLink") if isinstance(page, dict) else None
        if not isinstance(link, str) or not link:
            return None
        if not link.startswith(self._arm.url + "/"):
            raise HostNotAllowedError(
                "nextLink", reason="refused a Jobs list nextLink that leaves the ARM host"
            )
        return link
