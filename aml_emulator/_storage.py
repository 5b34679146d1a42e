"""Blob storage for the emulator: URI resolution and the few blob operations a job needs.

Input and output URIs name blobs in one storage account (Azurite by default):

- ``azureml://datastores/<ds>/paths/<path>`` and the long
  ``azureml://subscriptions/.../workspaces/<ws>/datastores/<ds>/paths/<path>`` form, and the
  datastore ARM id form ``/subscriptions/.../datastores/<ds>/paths/<path>`` (optionally
  prefixed ``azureml:``): the datastore is mapped to a container by the config;
- a blob URL in the configured account, path style (Azurite,
  ``http://127.0.0.1:10000/devstoreaccount1/<container>/<path>``) or host style
  (``https://<account>.blob.core.windows.net/<container>/<path>``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, LinearRetry

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT = "devstoreaccount1"
DEV_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
DEV_CONNECTION_STRING = (
    f"DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};"
    f"BlobEndpoint=http://127.0.0.1:10000/{DEV_ACCOUNT};"
)

_SHORT_RE = re.compile(r"^azureml://datastores/(?P<ds>[^/]+)/paths/(?P<path>.*)$", re.IGNORECASE)
_LONG_RE = re.compile(
    r"^azureml://subscriptions/[^/]+/resource[gG]roups/[^/]+/(?:providers/"
    r"Microsoft\.MachineLearningServices/)?workspaces/[^/]+/datastores/(?P<ds>[^/]+)/paths/"
    r"(?P<path>.*)$",
    re.IGNORECASE,
)
_ARM_DS_RE = re.compile(
    r"^(?:azureml:)?/subscriptions/[^/]+/resource[gG]roups/[^/]+/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/[^/]+/datastores/(?P<ds>[^/]+)/paths/"
    r"(?P<path>.*)$",
    re.IGNORECASE,
)
_ASSET_RE = re.compile(
    r"^(?:azureml:)?(?:/subscriptions/.+/data/[^/]+/versions/[^/]+"
    r"|azureml://locations/.+/data/.+)$",
    re.IGNORECASE,
)


class StorageError(Exception):
    """A URI cannot be resolved or storage cannot be reached; ``str()`` is the job-level reason."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BlobLocation:
    """A container and a blob name (or folder prefix) inside it."""

    container: str
    path: str


def expand_connection_string(connection_string: str) -> str:
    """Expand ``UseDevelopmentStorage=true`` (azure-storage-blob does not understand it)."""
    parts = dict(
        p.split("=", 1) for p in connection_string.strip().strip(";").split(";") if "=" in p
    )
    if parts.get("UseDevelopmentStorage", "").lower() == "true":
        return DEV_CONNECTION_STRING
    return connection_string


def parse_datastore_uri(uri: str) -> tuple[str, str] | None:
    """Return ``(datastore, path)`` for the azureml datastore forms, else ``None``."""
    for pattern in (_SHORT_RE, _LONG_RE, _ARM_DS_RE):
        match = pattern.match(uri)
        if match:
            return match.group("ds"), unquote(match.group("path"))
    return None


def is_data_asset(uri: str) -> bool:
    """True for data-asset references (ARM id or ``azureml://locations/...``)."""
    return bool(_ASSET_RE.match(uri))


def is_blob_url(uri: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def strip_query(uri: str) -> str:
    """Drop a query string (it may carry a SAS token) so the URI is safe to log or echo."""
    return uri.split("?", 1)[0]


class Storage:
    """The emulator's storage account (thread-safe: the SDK client is shared by threads)."""

    def __init__(
        self, connection_string: str, datastores: Mapping[str, str], *, retries: int = 2
    ) -> None:
        self._service = BlobServiceClient.from_connection_string(
            expand_connection_string(connection_string),
            # Fail within seconds when storage is down; the SDK default backs off for ~a minute.
            retry_policy=LinearRetry(backoff=1, random_jitter_range=0, retry_total=retries),
            connection_timeout=5,
            read_timeout=30,
        )
        self._datastores = {k.lower(): v for k, v in datastores.items()}
        self.account_name: str = self._service.account_name or ""
        endpoint = urlsplit(self._service.url)
        self._endpoint_host = (endpoint.hostname or "").lower()
        self._endpoint_port = endpoint.port
        self._endpoint_path = endpoint.path.strip("/")
        self._created: set[str] = set()

    def close(self) -> None:
        """Close the SDK client's connection pool."""
        self._service.close()

    def container_for(self, datastore: str) -> str:
        """Map a datastore name to its container.

        Raises:
            StorageError: the datastore is not configured.
        """
        container = self._datastores.get(datastore.lower())
        if container is None:
            raise StorageError(f"Datastore '{datastore}' was not found in the workspace")
        return container

    def resolve(self, uri: str) -> BlobLocation:
        """Resolve an input/output URI to a container and path.

        Raises:
            StorageError: unknown datastore, data asset, or a URL outside this account.
        """
        found = parse_datastore_uri(uri)
        if found is not None:
            datastore, path = found
            return BlobLocation(container=self.container_for(datastore), path=path.lstrip("/"))
        if is_data_asset(uri):
            raise StorageError("data assets cannot be resolved by the emulator")
        if is_blob_url(uri):
            return self._resolve_url(uri)
        raise StorageError("the URI is not a datastore path or a blob URL")

    def _resolve_url(self, uri: str) -> BlobLocation:
        parts = urlsplit(uri)
        host = (parts.hostname or "").lower()
        segments = [unquote(s) for s in parts.path.split("/")]
        segments = segments[1:] if segments and segments[0] == "" else segments
        loopback = {"127.0.0.1", "localhost", "::1"}
        same_host = host == self._endpoint_host or (
            host in loopback and self._endpoint_host in loopback
        )
        if same_host and parts.port == self._endpoint_port and self._endpoint_path:
            # Path style (Azurite): /<account>/<container>/<path>
            if not segments or segments[0] != self._endpoint_path:
                raise StorageError("the URL does not name the emulator's storage account")
            segments = segments[1:]
        elif host != f"{self.account_name}.blob.core.windows.net".lower():
            raise StorageError("the URL is not in the emulator's storage account")
        if not segments or not segments[0]:
            raise StorageError("the URL does not name a container")
        return BlobLocation(container=segments[0], path="/".join(segments[1:]))

    def list_top_level(self, location: BlobLocation) -> list[str]:
        """Blob names directly under the folder ``location.path`` (nested folders excluded).

        Raises:
            StorageError: storage is unreachable.
        """
        prefix = location.path.rstrip("/") + "/" if location.path.strip("/") else ""
        container = self._service.get_container_client(location.container)
        try:
            names = [
                item.name
                for item in container.walk_blobs(name_starts_with=prefix, delimiter="/")
                if not item.name.endswith("/")
            ]
        except ResourceNotFoundError:
            return []
        except Exception as exc:
            raise StorageError(f"storage is not accessible ({type(exc).__name__})") from exc
        return sorted(names)

    def read(self, container: str, name: str) -> bytes | None:
        """Return a blob's bytes, or ``None`` when it (or its container) does not exist.

        Raises:
            StorageError: storage is unreachable.
        """
        try:
            return self._service.get_blob_client(container, name).download_blob().readall()
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise StorageError(f"storage is not accessible ({type(exc).__name__})") from exc

    def path_exists(self, location: BlobLocation) -> bool:
        """True when a blob exists at the path or any blob exists under ``path/``.

        Raises:
            StorageError: storage is unreachable.
        """
        container = self._service.get_container_client(location.container)
        try:
            if location.path and container.get_blob_client(location.path).exists():
                return True
            prefix = location.path.rstrip("/") + "/"
            return any(
                True for _ in container.list_blobs(name_starts_with=prefix, results_per_page=1)
            )
        except ResourceNotFoundError:
            return False
        except Exception as exc:
            raise StorageError(f"storage is not accessible ({type(exc).__name__})") from exc

    def create_blob(self, location: BlobLocation, data: bytes, *, job_name: str) -> bool:
        """Create a blob only if it does not exist yet (``If-None-Match: *``).

        Returns:
            True when written (or already written by this same job before a crash);
            False when another writer got there first.

        Raises:
            StorageError: storage is unreachable.
        """
        container = self._service.get_container_client(location.container)
        blob = container.get_blob_client(location.path)
        try:
            if location.container not in self._created:
                with contextlib.suppress(ResourceExistsError):
                    container.create_container()
                self._created.add(location.container)
            blob.upload_blob(
                data,
                overwrite=False,
                metadata={"emulatorjob": job_name},
                content_settings=None,
            )
            return True
        except ResourceExistsError:
            # A crash between the write and the state update leaves our own blob behind:
            # on resume that blob is ours, not a pre-existing output.
            try:
                props = blob.get_blob_properties()
            except Exception as exc:
                raise StorageError(f"storage is not accessible ({type(exc).__name__})") from exc
            return bool(props.metadata.get("emulatorjob") == job_name)
        except Exception as exc:
            raise StorageError(f"storage is not accessible ({type(exc).__name__})") from exc

    def upload(self, container: str, name: str, data: bytes) -> str:
        """Upload (overwrite) a blob, creating the container if needed; return its URL."""
        client = self._service.get_container_client(container)
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
        blob = client.upload_blob(name, data, overwrite=True)
        return str(blob.url)
