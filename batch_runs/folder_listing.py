"""Listing the files of a batch's ``input_folder`` (the core of the activity ``list_batch_folder``).

The folder is read with ``azure-storage-blob``:

- an Azure storage host (``<account>.blob.core.windows.net``, checked by
  :func:`batch_runs.uris.input_uri_problem`) with the app's identity (``DefaultAzureCredential``,
  ``AZURE_CLIENT_ID``); the identity needs *Storage Blob Data Reader* on the account, which
  *Storage Blob Data Contributor* (docs/deploy.md) includes;
- a loopback host (Azurite) with the account key of ``AzureWebJobsStorage``, and only when that
  connection string's blob endpoint is the folder's account: the key never goes to any
  other host.

Only the folder's top level is listed (batch endpoints do not explore nested folders), empty
blobs are skipped (folder placeholders, markers), names are sorted, and more than
:data:`~batch_runs.folders.MAX_FOLDER_FILES` files fail the batch with a clear message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from batch_endpoint import ServiceUrl, is_loopback
from batch_runs.folders import MAX_FOLDER_FILES, FolderLocation, is_listed_file


class BlobItem(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def size(self) -> int | None: ...


class FolderLister(Protocol):
    def __call__(self, location: FolderLocation) -> Iterable[BlobItem]: ...


@dataclass(frozen=True, slots=True)
class _Listed:
    name: str
    size: int | None


@dataclass(frozen=True, slots=True)
class FolderListing:
    """The child input URIs of a folder, or why there are none."""

    uris: tuple[str, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"uris": list(self.uris), "error": self.error}

    @classmethod
    def from_dict(cls, data: object) -> FolderListing:
        if not isinstance(data, dict):
            return cls(error="the folder listing returned no result")
        return cls(uris=tuple(str(u) for u in data.get("uris") or ()), error=data.get("error"))


def list_folder_uris(location: FolderLocation, lister: FolderLister) -> FolderListing:
    """The URIs of the folder's files (top level, non-empty, sorted), at most 1,000.

    The listing stops at the first file over the limit: a folder of millions of blobs is
    refused after 1,001 of them, never listed (and held) in full."""
    listed = (
        item.name
        for item in lister(location)
        if is_listed_file(item.name, item.size, location.prefix)
    )
    names = sorted(islice(listed, MAX_FOLDER_FILES + 1))
    if not names:
        return FolderListing(error=f"folder {location.uri_base} holds no files to score")
    if len(names) > MAX_FOLDER_FILES:
        return FolderListing(
            error=(
                f"folder {location.uri_base} holds more than {MAX_FOLDER_FILES} files; a batch "
                f"takes at most {MAX_FOLDER_FILES}: split it into several batches"
            )
        )
    return FolderListing(uris=tuple(location.child_uri(n) for n in names))


def _connection_parts(connection_string: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in connection_string.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            parts[key.strip().lower()] = value.strip()
    return parts


def connection_matches(connection_string: str | None, container_url: str) -> bool:
    """Whether ``container_url`` is in the account of ``connection_string``'s blob endpoint."""
    if not connection_string:
        return False
    endpoint = _connection_parts(connection_string).get("blobendpoint", "").rstrip("/")
    return bool(endpoint) and container_url.lower().startswith(endpoint.lower() + "/")


def blob_lister(*, connection_string: str | None, credential: Callable[[], Any]) -> FolderLister:
    """A :class:`FolderLister` over ``azure-storage-blob`` (see the module docstring)."""
    from azure.storage.blob import ContainerClient

    def lister(location: FolderLocation) -> Iterator[BlobItem]:
        url = location.container_url
        path_start = url.index("/", url.index("://") + 3)
        host = ServiceUrl.parse(url[:path_start], allow_path=False).host
        if connection_matches(connection_string, url):
            assert connection_string is not None
            container = url.rpartition("/")[2]
            client = ContainerClient.from_connection_string(connection_string, container)
        elif is_loopback(host):
            raise ValueError(
                f"no credential for the local storage {url}: AzureWebJobsStorage names another "
                "account"
            )
        else:
            client = ContainerClient.from_container_url(url, credential=credential())
        with client:
            # walk_blobs with a delimiter lists the top level only (BlobPrefix for folders).
            # Yielded page by page, so the caller's limit stops the listing early.
            for item in client.walk_blobs(name_starts_with=location.prefix or None):
                size = getattr(item, "size", None)  # a BlobPrefix (sub-folder) has none
                if size is not None:
                    yield _Listed(name=str(item.name), size=int(size))

    return lister
