"""Folders as sets of files: where a batch's ``input_folder`` lives, and folder-ready markers.

Two pure concerns, both about a folder of blobs:

- **Batch input folders.** ``POST /api/batches`` with ``input_folder`` is split into one child
  run per file. The files are listed with ``azure-storage-blob`` (by the activity
  ``list_batch_folder``). An ``https`` Blob/ADLS URL (or a loopback Azurite URL) names its
  account and container itself. An ``azureml://datastores/<ds>/paths/<p>/`` path does not: a
  datastore is a workspace object, so the app needs the container behind it from the setting
  ``OUTPUT_DATASTORE_URLS`` (``<datastore>=<container URL>``, comma separated). An ``https``
  folder must lie in one of those containers too (:func:`container_listed`): the app lists it
  with its own identity, so a caller must not pick the container (e.g. the Functions storage's
  ``azure-webjobs-secrets``).
  *Assumption* (no public source makes the app read a datastore's container without the
  workspace's ``datastores/read`` permission): the operator states the mapping once; without
  it a datastore folder is refused (400 naming ``input_folder``) and nothing is started.
- **Folder-ready markers** (``SCORING_BLOB_MODE=folder-marker``): which blob of
  ``scoring-input/...`` starts a ``UriFolder`` run and which starts nothing.

Only one level is listed or accepted: batch endpoints do not explore nested folders (the
emulator and the service read a ``UriFolder``'s top-level files).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from batch_endpoint import ServiceUrl, is_loopback
from batch_runs.uris import _SHORT_DATASTORE, _http_input_problem, input_uri_problem, shown

#: ``SCORING_BLOB_MODE`` values: each blob starts a run (``file``) or a marker starts one run
#: over its folder (``folder-marker``).
BLOB_MODES: tuple[str, ...] = ("file", "folder-marker")
DEFAULT_BLOB_MODE = "file"
DEFAULT_MARKER_NAME = "_READY"
#: The most files one input folder may split into (the batch limit).
MAX_FOLDER_FILES = 1000

_MARKER = re.compile(r"^[A-Za-z0-9._-]{1,128}\Z")


@dataclass(frozen=True, slots=True)
class FolderLocation:
    """A folder of blobs to list.

    Attributes:
        container_url: ``<account URL>/<container>`` (no trailing slash).
        prefix: The folder's path inside the container, ending in ``/`` (or ``""``).
        uri_base: What a listed blob's name (minus ``prefix``) is appended to for the child's
            ``endpoint_input_uri``: the folder URI as the caller wrote it, ending in ``/``.
    """

    container_url: str
    prefix: str
    uri_base: str

    def child_uri(self, blob_name: str) -> str:
        """The input URI of one listed blob (its name relative to the container)."""
        return self.uri_base + blob_name[len(self.prefix) :]


def marker_name_problem(name: str) -> str | None:
    """``SCORING_MARKER_NAME``: one file name of letters, digits, ``.``, ``_`` or ``-``."""
    if not _MARKER.match(name) or name in {".", ".."}:
        return f"must be a file name of 1-128 letters, digits, '.', '_' or '-', got {shown(name)}"
    return None


def folder_problem(uri: str) -> str | None:
    """What is wrong with an ``input_folder`` URI (without the field name), or None."""
    problem = input_uri_problem(uri, "UriFolder")
    if problem:
        return problem
    lowered = uri.lower()
    if not (lowered.startswith(("http://", "https://")) or _SHORT_DATASTORE.match(uri)):
        return (
            "must be an azureml://datastores/<datastore>/paths/<folder>/ path or an https Blob "
            f"URL of a folder (other forms cannot be listed), got {shown(uri)}"
        )
    return None


def resolve_folder(uri: str, datastores: tuple[tuple[str, str], ...]) -> FolderLocation:
    """Where the files of ``input_folder`` are listed.

    Raises:
        ValueError: The URI is not a listable folder, or its datastore is not mapped.
    """
    problem = folder_problem(uri)
    if problem:
        raise ValueError(problem)
    base = uri if uri.endswith("/") else uri + "/"
    match = _SHORT_DATASTORE.match(base)
    if match:
        name, path = match.group(1).lower(), match.group(2)
        container = dict(datastores).get(name)
        if container is None:
            raise ValueError(
                f"names datastore {shown(match.group(1))}, which OUTPUT_DATASTORE_URLS does "
                "not map to a container; list the files in 'inputs' instead"
            )
        return FolderLocation(container_url=container, prefix=path, uri_base=base)
    problem = _http_input_problem(base)
    if problem:
        raise ValueError(problem)
    # The origin by the one strict reading (ServiceUrl), as input_uri_problem checked it.
    path_start = base.index("/", base.index("://") + 3)
    origin = ServiceUrl.parse(base[:path_start], allow_path=False)
    segments = base[path_start + 1 :].split("/")
    # Azurite and other loopback emulators put the account in the path: /<account>/<container>
    lead = 2 if is_loopback(origin.host) else 1
    if len(segments) <= lead:
        raise ValueError(f"must name a container and a folder, got {shown(uri)}")
    container_url = origin.origin + "/" + "/".join(segments[:lead])
    if not is_loopback(origin.host) and not container_listed(container_url, datastores):
        raise ValueError(
            f"is refused: its container is not in OUTPUT_DATASTORE_URLS (the app lists folders "
            f"with its own identity only in the containers that setting maps), got {shown(uri)}"
        )
    return FolderLocation(
        container_url=container_url, prefix="/".join(segments[lead:]), uri_base=base
    )


def container_listed(container_url: str, datastores: tuple[tuple[str, str], ...]) -> bool:
    """Whether ``container_url`` is one of the containers of ``OUTPUT_DATASTORE_URLS``.

    Both sides are read by the hand-off's one Blob URL reading (``parse_blob_url``: host
    lower-cased, ``.dfs.`` mapped to ``.blob.``), so one container has one spelling.
    """
    from batch_runs.handoff import parse_blob_url

    def key(url: str) -> str | None:
        _, target = parse_blob_url(url, need_blob=False)
        return None if target is None else f"{target.account_url}/{target.container}"

    wanted = key(container_url)
    return wanted is not None and any(key(url) == wanted for _, url in datastores)


def https_folder_problem(uri: str, datastores: tuple[tuple[str, str], ...]) -> str | None:
    """For an ``http(s)`` ``input_folder``: why it cannot be listed (its container is not in
    ``OUTPUT_DATASTORE_URLS``, or it names no container and folder), else None. Datastore
    folders are resolved when the batch lists them (an unmapped one fails the batch)."""
    if not uri.lower().startswith(("http://", "https://")):
        return None
    try:
        resolve_folder(uri, datastores)
    except ValueError as exc:
        return str(exc)
    return None


def is_listed_file(name: str, size: int | None, prefix: str) -> bool:
    """A blob directly in the folder with content (no nested blob, no empty placeholder)."""
    rest = name[len(prefix) :]
    return bool(rest) and "/" not in rest and bool(size)


@dataclass(frozen=True, slots=True)
class MarkerDecision:
    """What one blob means in ``folder-marker`` mode.

    Attributes:
        start: Whether it starts a run.
        folder: The folder (relative to the container) the run scores, ``a/`` for ``a/_READY``.
        reason: Why nothing starts (a log line), when ``start`` is False.
        refused: True when the blob looks like a marker but is in the wrong place (a warning).
    """

    start: bool
    folder: str = ""
    reason: str = ""
    refused: bool = False


def marker_decision(blob_path: str, marker: str) -> MarkerDecision:
    """Decide for a blob ``<container>/<path>`` of the trigger whether it starts a folder run.

    Only ``<container>/<folder>/<marker>`` does. A marker at the container root or in a nested
    folder (``a/b/<marker>``) is refused: batch endpoints do not explore nested folders, so the
    run would score only part of what the writer meant.
    """
    _container, _, path = blob_path.partition("/")
    parts = path.split("/")
    if parts[-1] != marker:
        return MarkerDecision(False, reason=f"not the marker {marker!r}; data files start nothing")
    if len(parts) == 1:
        return MarkerDecision(
            False,
            reason=f"marker {marker!r} at the container root is refused: it must be in a folder "
            f"(<container>/<folder>/{marker})",
            refused=True,
        )
    if parts[0] in (".", ".."):
        return MarkerDecision(
            False,
            reason=f"marker in a dot folder ({shown(path)}) is refused: '.' and '..' are no "
            f"folders of the container; put it at <container>/<folder>/{marker}",
            refused=True,
        )
    if len(parts) > 2 or not parts[0]:
        return MarkerDecision(
            False,
            reason=f"marker in a nested folder ({shown(path)}) is refused: batch endpoints do not "
            f"explore nested folders; put it at <container>/<folder>/{marker}",
            refused=True,
        )
    return MarkerDecision(True, folder=parts[0] + "/")


def folder_uri(blob_uri: str, marker: str) -> str:
    """The folder URI of a marker blob's URI (``.../a/_READY`` → ``.../a/``)."""
    return blob_uri[: len(blob_uri) - len(marker)]


def instance_id_for_marker(blob_path: str, version: str) -> str:
    """``folder-<hash>`` of the marker's path and version (ETag, else its creation time).

    One marker version starts one run: the at-least-once deliveries of the blob trigger map
    to the same instance; rewriting the marker (a new ETag) scores the folder again.
    """
    digest = hashlib.sha256(f"{blob_path}|{version}".encode()).hexdigest()[:40]
    return f"folder-{digest}"
