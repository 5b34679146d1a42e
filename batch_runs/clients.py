"""Where settings meet the client: the process's session, token providers and clients.

Everything here is created lazily on first use and cached per process, so importing the app
(at Functions indexing time) creates no credential, session or client.
"""

import functools
from typing import TYPE_CHECKING

from batch_endpoint import (
    DEV_TOKEN,
    CredentialTokenProvider,
    RetryPolicy,
    StaticTokenProvider,
    TokenProvider,
)
from batch_runs.settings import Settings, get_settings

if TYPE_CHECKING:
    import requests
    from azure.identity import DefaultAzureCredential

    from batch_endpoint import BatchEndpointClient, WorkspaceJobsClient


@functools.cache
def get_session() -> "requests.Session":
    """The process's shared, guarded ``requests.Session`` (pool of 32 per host)."""
    from batch_endpoint import create_session  # requests is loaded on first use

    return create_session(pool_maxsize=32)


@functools.cache
def _default_credential(client_id: str | None) -> "DefaultAzureCredential":
    """One ``DefaultAzureCredential`` per process (per client id), created on first use."""
    # Imported here so that importing the app (at Functions indexing time) stays cheap.
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id)


def default_credential(client_id: str | None) -> "DefaultAzureCredential":
    """The process's ``DefaultAzureCredential`` for ``client_id`` (e.g. for azure-storage-blob)."""
    return _default_credential(client_id)


@functools.cache
def _cached_provider(auth_mode: str, client_id: str | None, scope: str) -> TokenProvider:
    if auth_mode == "none":
        return StaticTokenProvider(DEV_TOKEN)
    return CredentialTokenProvider(_default_credential(client_id), scope)


def create_token_provider(settings: Settings, *, scope: str) -> TokenProvider:
    """The process-wide token provider for ``scope`` under ``settings``.

    Args:
        settings: ``auth_mode`` and ``azure_client_id`` are used.
        scope: E.g. ``settings.token_scope`` or ``settings.arm_token_scope``.

    Returns:
        ``StaticTokenProvider(DEV_TOKEN)`` for auth ``none``; otherwise a cached
        :class:`CredentialTokenProvider` over one shared ``DefaultAzureCredential``
        (which tries the environment's service principal first, then the managed identity).

    Raises:
        ValueError: Unknown auth mode.
    """
    if settings.auth_mode not in ("azure", "none"):
        raise ValueError(f"BATCH_ENDPOINT_AUTH must be azure or none, got {settings.auth_mode!r}")
    return _cached_provider(settings.auth_mode, settings.azure_client_id, scope)


def retry_policy(settings: Settings) -> RetryPolicy:
    """The client retry policy from ``BATCH_ENDPOINT_MAX_ATTEMPTS`` and the retry budget."""
    return RetryPolicy(
        max_attempts=settings.http_max_attempts, budget_seconds=settings.http_retry_budget_seconds
    )


@functools.lru_cache(maxsize=64)
def get_client(endpoint_uri: str) -> "BatchEndpointClient":
    """A cached client for ``endpoint_uri`` built from :func:`get_settings`.

    Bounded (64 endpoints) because callers may name any endpoint the allowlist permits. The
    URI and host are checked before any token provider is built, so a refused host never
    causes credential work.

    Raises:
        SettingsError: Invalid settings.
        ValueError: Malformed endpoint URI.
        HostNotAllowedError: The host fails the allowlist or auth mode.
    """
    from batch_endpoint import BatchEndpointClient

    settings = get_settings()
    BatchEndpointClient.check_endpoint(
        endpoint_uri, allowed_hosts=settings.allowed_hosts, auth_mode=settings.auth_mode
    )
    return BatchEndpointClient(
        endpoint_uri,
        create_token_provider(settings, scope=settings.token_scope),
        session=get_session(),
        allowed_hosts=settings.allowed_hosts,
        auth_mode=settings.auth_mode,
        timeout=settings.http_timeout,
        retry_policy=retry_policy(settings),
    )


@functools.cache
def get_jobs_client() -> "WorkspaceJobsClient":
    """The cached ARM workspace-jobs client (cancel) built from :func:`get_settings`.

    Raises:
        SettingsError: Invalid settings.
    """
    from batch_endpoint import WorkspaceJobsClient

    settings = get_settings()
    return WorkspaceJobsClient(
        settings.arm_endpoint,
        create_token_provider(settings, scope=settings.arm_token_scope),
        session=get_session(),
        timeout=settings.http_timeout,
        retry_policy=retry_policy(settings),
    )


def azure_credential(settings: Settings) -> "DefaultAzureCredential":
    """The process's ``DefaultAzureCredential`` (``AZURE_CLIENT_ID`` for a user-assigned one)."""
    return _default_credential(settings.azure_client_id)
