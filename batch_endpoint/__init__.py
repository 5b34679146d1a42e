"""Client SDK for Azure ML batch endpoints: invoke and read jobs, cancel them through ARM.

Shaped by the Azure SDK for Python guidelines: :class:`BatchEndpointClient` (data plane) and
:class:`WorkspaceJobsClient` (ARM), a :class:`RetryPolicy` value object, one documented error
tree, and a token guard that sends tokens only to allowed hosts. It reads no app settings and
never imports ``azure.functions`` or ``azure.durable_functions``.
"""

import importlib
from typing import TYPE_CHECKING, Any

from batch_endpoint._allowlist import check_host, host_allowed, parse_host_pattern
from batch_endpoint._auth import (
    DEV_TOKEN,
    CredentialTokenProvider,
    StaticTokenProvider,
    TokenProvider,
)
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
from batch_endpoint._models import BatchJob, JobInvocation
from batch_endpoint._retry import RetryPolicy, backoff_delay, parse_retry_after
from batch_endpoint._status import FINAL_STATUSES, JobStatus, is_final
from batch_endpoint._url import MAX_URL_LENGTH, ServiceUrl, character_problem, is_loopback
from batch_endpoint._workspace import parse_workspace_id, workspace_of

if TYPE_CHECKING:
    from batch_endpoint._client import BatchEndpointClient, validate_job_name
    from batch_endpoint._jobs import (
        ARM_CANCEL_API_VERSION,
        ARM_JOBS_API_VERSION,
        WorkspaceJobsClient,
    )
    from batch_endpoint._pipeline import create_session

#: Names whose modules import ``requests``: loaded on first use (PEP 562), so that importing
#: the app at Functions indexing time loads no HTTP stack.
_LAZY = {
    "BatchEndpointClient": "batch_endpoint._client",
    "validate_job_name": "batch_endpoint._client",
    "ARM_CANCEL_API_VERSION": "batch_endpoint._jobs",
    "ARM_JOBS_API_VERSION": "batch_endpoint._jobs",
    "WorkspaceJobsClient": "batch_endpoint._jobs",
    "create_session": "batch_endpoint._pipeline",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
