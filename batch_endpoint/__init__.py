"""Client SDK for Azure ML batch endpoints: invoke and read jobs, cancel them through ARM.

Shaped by the Azure SDK for Python guidelines: :class:`BatchEndpointClient` (data plane) and
:class:`WorkspaceJobsClient` (ARM), a :class:`RetryPolicy` value object, one documented error
tree, and a token guard that sends tokens only to allowed hosts. It reads no app settings and
never imports ``azure.functions`` or ``azure.durable_functions``.
"""

from batch_endpoint._allowlist import check_host, host_allowed, parse_host_pattern
from batch_endpoint._auth import (
    DEV_TOKEN,
    CredentialTokenProvider,
    StaticTokenProvider,
    TokenProvider,
)
from batch_endpoint._client import BatchEndpointClient, validate_job_name
from batch_endpoint._errors import (
    AuthError,
    BatchEndpointError,
    ClientError,
    ConflictError,
    HostNotAllowedError,
    HttpError,
    NotFoundError,
    RetryableHttpError,
    TransportError,
    redact_text,
    redact_url,
)
from batch_endpoint._jobs import (
    ARM_CANCEL_API_VERSION,
    ARM_JOBS_API_VERSION,
    WorkspaceJobsClient,
    parse_workspace_id,
    workspace_of,
)
from batch_endpoint._models import BatchJob, JobInvocation
from batch_endpoint._pipeline import create_session
from batch_endpoint._retry import RetryPolicy, backoff_delay, parse_retry_after
from batch_endpoint._status import FINAL_STATUSES, JobStatus, is_final
from batch_endpoint._url import MAX_URL_LENGTH, ServiceUrl, character_problem, is_loopback

__all__ = [
    "ARM_CANCEL_API_VERSION",
    "ARM_JOBS_API_VERSION",
    "DEV_TOKEN",
    "FINAL_STATUSES",
    "MAX_URL_LENGTH",
    "AuthError",
    "BatchEndpointClient",
    "BatchEndpointError",
    "BatchJob",
    "ClientError",
    "ConflictError",
    "CredentialTokenProvider",
    "HostNotAllowedError",
    "HttpError",
    "JobInvocation",
    "JobStatus",
    "NotFoundError",
    "RetryPolicy",
    "RetryableHttpError",
    "ServiceUrl",
    "StaticTokenProvider",
    "TokenProvider",
    "TransportError",
    "WorkspaceJobsClient",
    "backoff_delay",
    "character_problem",
    "check_host",
    "create_session",
    "host_allowed",
    "is_final",
    "is_loopback",
    "parse_host_pattern",
    "parse_retry_after",
    "parse_workspace_id",
    "redact_text",
    "redact_url",
    "validate_job_name",
    "workspace_of",
]
