"""Output hand-off: copy a completed run's predictions file to ``copy_output_to``, server-side.

The ADF "Copy activity after the job" step. Rules:

- ``copy_output_to`` is read once by ``batch_endpoint.ServiceUrl`` (``https``; ``http`` only for
  loopback hosts, i.e. Azurite) and its host must match ``COPY_ALLOWED_HOSTS`` (the endpoint
  allowlist's matcher): the app's storage identity is used against it. Forms:
  ``https://<account>.blob.core.windows.net/<container>/<path>`` (or ``.dfs.``, copied through
  the Blob API, which hierarchical-namespace accounts also serve; sovereign clouds too) and
  Azurite's path style ``http://127.0.0.1:<port>/<account>/<container>/<path>``.
- The predictions file is the job's ``azureml://datastores/<ds>/paths/<p>`` output; the
  datastore's container URL comes from ``OUTPUT_DATASTORE_URLS`` (``<ds>=<container URL>``),
  because the app has no ARM read of datastores (see docs/operations.md).
- The copy is ``start_copy_from_url`` on the destination with a short-lived read-only SAS of the
  source (a user delegation SAS under the app's Entra identity in Azure; the account key of
  ``AzureWebJobsStorage`` offline; valid 15 minutes: the copy's bound plus clock skew), then
  the copy status is polled until it ends, within :data:`COPY_TIMEOUT_SECONDS`. The SAS is
  never logged or returned.
"""

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from batch_endpoint import ServiceUrl, host_allowed, is_loopback, redact_text
from batch_runs.uris import datastore_path

#: How long the activity waits for a copy to finish before aborting it.
COPY_TIMEOUT_SECONDS = 600
COPY_POLL_SECONDS = 2.0
#: Added to the source SAS's lifetime for clock skew between the app and storage.
SAS_SKEW_SECONDS = 300
_STORAGE_HOST = re.compile(
    r"^([a-z0-9]{3,24})\.(blob|dfs)\.core\.(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)\Z"
)
_CONTAINER = re.compile(r"^(?:\$root|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})\Z")
_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}\Z")
#: Containers the Functions host, the Durable task hub and Flex deployments keep in the app's
#: storage account (keys, locks, leases, large messages, the code package): never a hand-off
#: destination, whatever COPY_ALLOWED_HOSTS allows. Assumption: DurableTask.AzureStorage names
#: its containers ``<hub>-leases``, ``<hub>-applease`` and ``<hub>-largemessages``; a user
#: container that happens to end so is refused too (a clear 400, rename it).
_RESERVED_PREFIXES = ("azure-webjobs-", "app-package-")
_RESERVED_SUFFIXES = ("-leases", "-applease", "-largemessages")


@dataclass(frozen=True, slots=True)
class BlobTarget:
    """A blob, as the Blob API names it.

    Attributes:
        account: The storage account name.
        account_url: The Blob service URL (``https://<a>.blob.core...`` or Azurite's
            ``http://127.0.0.1:10000/<a>``); ``.dfs.`` hosts are mapped to ``.blob.``.
        container: The container.
        blob: The blob name (``/``-separated path, no leading ``/``).
    """

    account: str
    account_url: str
    container: str
    blob: str

    @property
    def url(self) -> str:
        return f"{self.account_url}/{self.container}/{self.blob}"


def _split(url: ServiceUrl) -> tuple[str | None, str | None, list[str]]:
    """``(problem, account_url, [account?, container, ...])`` for a parsed storage URL."""
    segments = [s for s in url.path.split("/") if s]
    match = _STORAGE_HOST.match(url.host)
    if match:
        host = f"{match.group(1)}.blob.{url.host.split('.', 2)[2]}"
        origin = f"{url.scheme}://{host}" + (f":{url.port}" if url.port else "")
        return None, origin, [match.group(1), *segments]
    if is_loopback(url.host) and segments:
        return None, f"{url.origin}/{segments[0]}", segments
    return (
        "must be a Blob or ADLS Gen2 URL: https://<account>.blob.core.windows.net/<container>/"
        "<path> (or .dfs.core.windows.net), or Azurite's http://127.0.0.1:<port>/<account>/...",
        None,
        [],
    )


def parse_blob_url(text: str, *, need_blob: bool = True) -> tuple[str | None, BlobTarget | None]:
    """``(None, target)`` for a valid Blob/ADLS URL, else ``(problem, None)``.

    Args:
        text: The URL.
        need_blob: True: the URL must name a blob in a container; False: a container only.
    """
    try:
        url = ServiceUrl.parse(text)
    except ValueError as exc:
        return str(exc), None
    problem, account_url, parts = _split(url)
    if problem or account_url is None:
        return problem, None
    account, rest = parts[0], parts[1:]
    if not _ACCOUNT.match(account):
        return f"names an invalid storage account {account[:30]!r}", None
    if not rest or not _CONTAINER.match(rest[0]):
        return "must name a container (3-63 lower-case letters, digits and '-')", None
    if need_blob and len(rest) < 2:
        return "must name a file in the container (<container>/<path>)", None
    if not need_blob and len(rest) > 1:
        return "must name a container only (no path after it)", None
    return None, BlobTarget(account, account_url, rest[0], "/".join(rest[1:]))


def copy_url_problem(url: str, allowed_hosts: Sequence[str]) -> str | None:
    """What is wrong with ``copy_output_to``, or None (``COPY_ALLOWED_HOSTS`` empty: off)."""
    if not allowed_hosts:
        return "is refused: output hand-off is not enabled (COPY_ALLOWED_HOSTS is not set)"
    problem, target = parse_blob_url(url)
    if target is None:
        return problem
    parsed = ServiceUrl.parse(url)
    if not host_allowed(parsed.host, parsed.effective_port, allowed_hosts):
        return f"is refused: host {parsed.netloc!r} is not in COPY_ALLOWED_HOSTS"
    if target.container.startswith(_RESERVED_PREFIXES) or target.container.endswith(
        _RESERVED_SUFFIXES
    ):
        return (
            f"is refused: container {target.container!r} is reserved for the Functions host, "
            "its task hub or its deployment; copy to a container of your own"
        )
    return None


def parse_datastore_urls(raw: str) -> dict[str, str]:
    """``OUTPUT_DATASTORE_URLS``: ``<datastore>=<container URL>`` pairs, comma-separated.

    Raises:
        ValueError: A pair is malformed or its URL is not a Blob container URL.
    """
    mapping: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        name, sep, url = (part.strip() for part in item.partition("="))
        if not sep or not re.fullmatch(r"[A-Za-z0-9_]{1,255}", name):
            raise ValueError(
                "must list <datastore>=<container URL> pairs, e.g. workspaceblobstore="
                "https://<account>.blob.core.windows.net/<container>"
            )
        problem, target = parse_blob_url(url, need_blob=False)
        if target is None:
            raise ValueError(f"has an invalid URL for datastore {name!r}: it {problem}")
        mapping[name.lower()] = f"{target.account_url}/{target.container}"
    return mapping


def source_blob(output_uri: str, datastore_urls: Mapping[str, str]) -> BlobTarget | None:
    """The blob behind an ``azureml://datastores/<ds>/paths/<p>`` output, or None when the
    datastore is not in ``OUTPUT_DATASTORE_URLS`` (or the URI has another form)."""
    found = datastore_path(output_uri)
    if found is None:
        return None
    container_url = datastore_urls.get(found[0].lower())
    if container_url is None:
        return None
    _, target = parse_blob_url(f"{container_url}/{found[1].lstrip('/')}")
    return target


def source_problem(output_uri: str, datastore_urls: Mapping[str, str]) -> str | None:
    """Why the predictions file of ``output_uri`` cannot be found for a copy, or None."""
    if source_blob(output_uri, datastore_urls) is not None:
        return None
    found = datastore_path(output_uri)
    name = found[0] if found else "?"
    return (
        f"needs the output's datastore {name!r} in OUTPUT_DATASTORE_URLS "
        "(<datastore>=<container URL>) to find the predictions file"
    )


@dataclass(frozen=True, slots=True)
class CopyResult:
    """The copy activity's outcome: ``ok`` with the bytes copied, or a permanent error."""

    ok: bool
    copied_to: str | None = None
    size: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "copied_to": self.copied_to, "size": self.size, "error": self.error}

    @classmethod
    def from_dict(cls, data: object) -> "CopyResult":
        d = data if isinstance(data, Mapping) else {}
        size = d.get("size")
        return cls(
            ok=d.get("ok") is True,
            copied_to=d.get("copied_to") if isinstance(d.get("copied_to"), str) else None,
            size=size if isinstance(size, int) else None,
            error=str(d.get("error") or "the copy activity returned no outcome")[:500]
            if d.get("ok") is not True
            else None,
        )


class TransientCopyError(RuntimeError):
    """Storage was unreachable or answered 5xx/408/429: the activity is retried."""


class StorageAccess:
    """How the copy reaches storage: a credential for the Blob clients and a source SAS.

    Args:
        credential: ``DefaultAzureCredential`` (Azure) or a shared-key credential (offline).
        account_key: The shared key (offline: ``AzureWebJobsStorage``'s key), or None to sign
            the source SAS with a user delegation key of the app's identity.
    """

    def __init__(self, credential: Any, account_key: str | None) -> None:
        self.credential = credential
        self.account_key = account_key

    def source_sas(self, source: BlobTarget, now: datetime) -> str:
        """A read-only SAS of ``source`` valid for the copy's bound plus clock skew (never
        logged). It stays readable in the destination's ``x-ms-copy-source`` property (Azurite
        keeps the signature there; no source says Azure strips it), so it lives no longer than
        the copy needs: :data:`COPY_TIMEOUT_SECONDS` + :data:`SAS_SKEW_SECONDS`."""
        from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

        expiry = now + timedelta(seconds=COPY_TIMEOUT_SECONDS + SAS_SKEW_SECONDS)
        if self.account_key is not None:
            return generate_blob_sas(
                source.account,
                source.container,
                source.blob,
                account_key=self.account_key,
                permission=BlobSasPermissions(read=True),
                expiry=expiry,
            )
        service = BlobServiceClient(
            source.account_url, credential=self.credential, retry_total=2, connection_timeout=10
        )
        key = service.get_user_delegation_key(now - timedelta(minutes=5), expiry)
        return generate_blob_sas(
            source.account,
            source.container,
            source.blob,
            user_delegation_key=key,
            permission=BlobSasPermissions(read=True),
            expiry=expiry,
        )


def _describe(exc: Exception) -> str:
    code = getattr(exc, "error_code", None) or type(exc).__name__
    status = getattr(exc, "status_code", None)
    first = (str(exc).splitlines() or [""])[0]
    return redact_text(f"{status or ''} {code}: {first}".strip())[:400]


def _transient(exc: Exception) -> bool:
    status = getattr(exc, "status_code", None)
    return status is None or status in (408, 429) or status >= 500


def copy_output(
    source: BlobTarget,
    dest: BlobTarget,
    access: StorageAccess,
    *,
    timeout: float = COPY_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> CopyResult:
    """Copy ``source`` to ``dest`` server-side and wait until the copy ends.

    Returns:
        ``ok`` with the size, or a permanent failure (missing source, refused access, a copy
        that failed, was aborted or outlived ``timeout`` (it is aborted then)).

    Raises:
        TransientCopyError: Storage unreachable or a 5xx/408/429 (the activity retries).
    """
    from azure.core.exceptions import AzureError, HttpResponseError
    from azure.storage.blob import BlobClient

    client = BlobClient(
        dest.account_url,
        dest.container,
        dest.blob,
        credential=access.credential,
        # Fail fast: the activity's own retry (15 s apart) tries again on transient errors.
        retry_total=2,
        connection_timeout=10,
        read_timeout=60,
    )
    try:
        sas = access.source_sas(source, datetime.now(UTC))
        started = client.start_copy_from_url(f"{source.url}?{sas}")
        status, copy_id = started.get("copy_status"), started.get("copy_id")
        deadline = clock() + timeout
        while status == "pending" and clock() < deadline:
            sleep(COPY_POLL_SECONDS)
            copy = client.get_blob_properties().copy
            status = copy.status
        if status == "pending":
            client.abort_copy(str(copy_id))
            return CopyResult(ok=False, error=f"the copy did not finish within {timeout:g}s")
        if status != "success":
            copy = client.get_blob_properties().copy
            detail = redact_text(str(copy.status_description or status))[:300]
            return CopyResult(ok=False, error=f"the copy ended {status}: {detail}")
        size = client.get_blob_properties().size
    except HttpResponseError as exc:
        if _transient(exc):
            raise TransientCopyError(_describe(exc)) from None
        return CopyResult(ok=False, error=_describe(exc))
    except AzureError as exc:
        raise TransientCopyError(_describe(exc)) from None
    finally:
        client.close()
    return CopyResult(ok=True, copied_to=dest.url, size=size)


def storage_access(settings: Any) -> StorageAccess:
    """The app's storage identity: ``DefaultAzureCredential`` in Azure; offline
    (``BATCH_ENDPOINT_AUTH=none``) the shared key of ``AzureWebJobsStorage`` (Azurite's
    well-known development account for ``UseDevelopmentStorage=true``).

    Raises:
        ValueError: Offline with no usable ``AzureWebJobsStorage`` account key.
    """
    if settings.auth_mode != "none":
        from batch_runs.clients import azure_credential

        return StorageAccess(azure_credential(settings), None)
    from azure.storage.blob import BlobServiceClient

    if not settings.storage_connection:
        raise ValueError("AzureWebJobsStorage is not set; the offline copy uses its account key")
    service = BlobServiceClient.from_connection_string(settings.storage_connection)
    key = getattr(service.credential, "account_key", None)
    if not key:
        raise ValueError("AzureWebJobsStorage has no account key; the offline copy needs one")
    return StorageAccess(service.credential, key)


def run_copy(output_uri: str, copy_to: str, settings: Any) -> CopyResult:
    """The copy activity's core: re-check both ends under the current settings, then copy.

    Raises:
        TransientCopyError: Storage unreachable or busy (the activity is retried).
    """
    problem = copy_url_problem(copy_to, settings.copy_allowed_hosts)
    stores = dict(settings.output_datastore_urls)
    source = source_blob(output_uri, stores)
    _, dest = parse_blob_url(copy_to)
    if problem or dest is None:
        return CopyResult(ok=False, error=f"copy_output_to {problem}")
    if source is None:
        return CopyResult(ok=False, error=f"copy_output_to {source_problem(output_uri, stores)}")
    try:
        access = storage_access(settings)
    except ValueError as exc:
        return CopyResult(ok=False, error=str(exc))
    result = copy_output(source, dest, access)
    return CopyResult(ok=True, copied_to=copy_to, size=result.size) if result.ok else result
