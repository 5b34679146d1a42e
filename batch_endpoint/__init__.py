"""Pure batch endpoint package: REST client, run parameters, job statuses, policy, errors, settings.

Never imports ``azure.functions`` or ``azure.durable_functions`` (ruff TID251 enforces it), so
it can be used from bindings, the local host, benchmarks and tests alike.
"""

from batch_endpoint._allowlist import (
    check_host,
    host_allowed,
    parse_host_pattern,
)
from batch_endpoint._auth import (
    DEV_TOKEN,
    CredentialTokenProvider,
    StaticTokenProvider,
    TokenProvider,
    create_token_provider,
)
from batch_endpoint._client import (
    ARM_CANCEL_API_VERSION,
    BatchEndpointClient,
    get_client,
    get_session,
)
from batch_endpoint._errors import (
    AuthError,
    BatchEndpointError,
    BatchJobFailed,
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
from batch_endpoint._models import (
    BatchJob,
    FieldError,
    InvalidRunRequest,
    RunRequest,
    parse_run_request,
)
from batch_endpoint._policy import (
    OUTPUT_TEMPLATE_FIELDS,
    backoff_delay,
    deadline_from,
    default_output_uri,
    job_name_for,
    next_check_time,
    parse_retry_after,
    sanitize_name_part,
)
from batch_endpoint._settings import (
    BLOB_SOURCES,
    Settings,
    SettingsError,
    blob_trigger_source,
    get_settings,
    load_settings,
)
from batch_endpoint._status import FINAL_STATUSES, JobStatus, is_final
from batch_endpoint._transport import (
    BearerTokenAuth,
    GuardedAdapter,
    HostGuard,
    connection_target,
)
from batch_endpoint._uris import (
    INPUT_TYPES,
    endpoint_uri_problem,
    input_uri_problem,
    output_uri_problem,
    validate_endpoint_uri,
    validate_input_uri,
    validate_output_uri,
)
from batch_endpoint._url import MAX_URL_LENGTH, ServiceUrl, character_problem, is_loopback

__all__ = [
    "ARM_CANCEL_API_VERSION",
    "BLOB_SOURCES",
    "DEV_TOKEN",
    "FINAL_STATUSES",
    "INPUT_TYPES",
    "MAX_URL_LENGTH",
    "OUTPUT_TEMPLATE_FIELDS",
    "AuthError",
    "BatchEndpointClient",
    "BatchEndpointError",
    "BatchJob",
    "BatchJobFailed",
    "BearerTokenAuth",
    "ClientError",
    "ConflictError",
    "CredentialTokenProvider",
    "FieldError",
    "GuardedAdapter",
    "HostGuard",
    "HostNotAllowedError",
    "HttpError",
    "InvalidRunRequest",
    "JobStatus",
    "NotFoundError",
    "RetryableHttpError",
    "RunRequest",
    "ServiceUrl",
    "Settings",
    "SettingsError",
    "StaticTokenProvider",
    "TokenProvider",
    "TransportError",
    "backoff_delay",
    "blob_trigger_source",
    "character_problem",
    "check_host",
    "connection_target",
    "create_token_provider",
    "deadline_from",
    "default_output_uri",
    "endpoint_uri_problem",
    "get_client",
    "get_session",
    "get_settings",
    "host_allowed",
    "input_uri_problem",
    "is_final",
    "is_loopback",
    "job_name_for",
    "load_settings",
    "next_check_time",
    "output_uri_problem",
    "parse_host_pattern",
    "parse_retry_after",
    "parse_run_request",
    "redact_text",
    "redact_url",
    "sanitize_name_part",
    "validate_endpoint_uri",
    "validate_input_uri",
    "validate_output_uri",
]
