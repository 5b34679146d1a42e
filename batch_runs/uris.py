"""Validation of the URIs a run request carries: endpoint, input data and output file.

Each ``*_problem`` function returns ``None`` for a good value or a short sentence saying what
is wrong (without the field name, so that callers can prefix the request field or the setting).
The ``validate_*`` wrappers raise ``ValueError`` instead.

Accepted input forms (batch-endpoint-rest.md section 2.7): short and long ``azureml://``
datastore paths, a datastore ARM id with ``/paths/``, a data-asset ARM id, the older
``azureml://locations/...`` asset form, ``https://`` Blob/ADLS URLs (public and sovereign
clouds) and loopback ``http(s)`` URLs such as Azurite's. SAS tokens are never accepted: the
compute mounts data with its own identity, and a SAS would end up in histories and logs.
"""

import re

from batch_endpoint import MAX_URL_LENGTH, ServiceUrl, character_problem, is_loopback, redact_url

INPUT_TYPES: tuple[str, ...] = ("UriFolder", "UriFile")

_SEG = r"[^/?#\s]+"
_ARM_WS = (
    rf"/subscriptions/{_SEG}/resourcegroups/{_SEG}"
    rf"/providers/microsoft\.machinelearningservices/workspaces/{_SEG}"
)
_SHORT_DATASTORE = re.compile(rf"^azureml://datastores/({_SEG})/paths/(.+)\Z", re.IGNORECASE)
_LONG_DATASTORE = re.compile(
    rf"^azureml://subscriptions/{_SEG}/resourcegroups/{_SEG}"
    rf"(?:/providers/microsoft\.machinelearningservices)?/workspaces/{_SEG}"
    rf"/datastores/({_SEG})/paths/(.+)\Z",
    re.IGNORECASE,
)
_ARM_DATASTORE = re.compile(
    rf"^(?:azureml:)?{_ARM_WS}/datastores/({_SEG})/paths/(.+)\Z", re.IGNORECASE
)
_ARM_ASSET = re.compile(rf"^(?:azureml:)?{_ARM_WS}/data/{_SEG}/versions/{_SEG}\Z", re.IGNORECASE)
_LOCATION_ASSET = re.compile(
    rf"^azureml://locations/{_SEG}/workspaces/{_SEG}/data/{_SEG}/versions/"
    rf"(?:labels/)?{_SEG}\Z",
    re.IGNORECASE,
)
_STORAGE_HOST = re.compile(
    r"^[a-z0-9]{3,24}\.(?:blob|dfs)\.core\."
    r"(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)\Z"
)
_WINDOWS_PATH = re.compile(r"^[A-Za-z]:[\\/]")
_MAX_SHOWN = 120

ACCEPTED_INPUT_FORMS = (
    "azureml://datastores/<ds>/paths/<path>, the long azureml://subscriptions/... datastore form, "
    "a datastore ARM id with /paths/<path>, a data asset ARM id (.../data/<name>/versions/<v>), "
    "azureml://locations/.../data/<name>/versions/<v>, an https:// Blob/ADLS URL, "
    "or a loopback http(s) URL (Azurite)"
)


def shown(value: str) -> str:
    """``value`` made safe to echo in an error: query string removed, truncated, ASCII-quoted.

    ``ascii()`` escapes every control, bidi, zero-width and other non-ASCII character, so the
    echo can neither hide nor reorder text in a log or terminal.

    Args:
        value: A user-supplied URI or string.

    Returns:
        A quoted, redacted, truncated representation.
    """
    text = redact_url(value) if ("?" in value or "#" in value or "@" in value) else value
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return ascii(text)


# Percent-encoded '.', '/' and '\': a store or a later decoder may read them as path syntax.
_ENCODED_PATH_SYNTAX = re.compile(r"%(?:2e|2f|5c)", re.IGNORECASE)


def _path_problem(path: str) -> str | None:
    if "\\" in path:
        return "must not contain backslashes"
    if _ENCODED_PATH_SYNTAX.search(path):
        return "must not contain percent-encoded '.', '/' or '\\' (%2e, %2f, %5c)"
    segments = path.split("/")
    if any(seg in {".", ".."} for seg in segments):
        return "must not contain '.' or '..' path segments"
    return None


def _uri_text_problem(uri: str) -> str | None:
    """Rules shared by the data URI fields: not empty, no surrounding spaces, length, no
    control or invisible characters, no SAS token or query string."""
    if not uri.strip():
        return "must not be empty"
    if uri != uri.strip():
        return f"must not contain leading/trailing spaces, got {shown(uri)}"
    if len(uri) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters, got {len(uri)}"
    problem = character_problem(uri)
    if problem:
        return problem
    if "?" in uri or "#" in uri:
        return (
            "must not carry a SAS token or query string "
            "(the compute reads data with its own identity)"
        )
    return None


def endpoint_uri_problem(uri: str) -> str | None:
    """What is wrong with a batch endpoint scoring URI, or None.

    Rules: the one strict reading of :class:`ServiceUrl` (``https``, ``http`` only for
    loopback hosts; no user info, query, fragment, percent-escapes, backslashes or invisible
    characters; a DNS or IP host without a trailing dot), and a path ending in ``/jobs``.

    Args:
        uri: The candidate URI.

    Returns:
        None when valid, else a short problem description.
    """
    return parse_endpoint_uri(uri)[0]


def parse_endpoint_uri(uri: str) -> tuple[str | None, ServiceUrl | None]:
    """``(None, url)`` for a valid endpoint scoring URI, else ``(problem, None)``."""
    try:
        return None, ServiceUrl.parse(uri, path_suffix="/jobs")
    except ValueError as exc:
        return f"is not a valid https scoring URI ending in /jobs: it {exc}", None


def input_uri_problem(uri: str, input_type: str = "UriFolder") -> str | None:
    """What is wrong with an input data URI, or None.

    Args:
        uri: The candidate ``endpoint_input_uri``.
        input_type: ``UriFolder`` or ``UriFile``; a ``UriFile`` must not end in ``/``.

    Returns:
        None when valid, else a short problem description.
    """
    problem = _uri_text_problem(uri)
    if problem:
        return problem
    lowered = uri.lower()
    if lowered.startswith(("http://", "https://")):
        problem = _http_input_problem(uri)
    elif (
        lowered.startswith("file:")
        or uri.startswith(("./", "../", "~", "\\"))
        or _WINDOWS_PATH.match(uri)
    ):
        return (
            f"local paths are not accepted; upload the data to a datastore first, got {shown(uri)}"
        )
    elif any(
        rx.match(uri)
        for rx in (_SHORT_DATASTORE, _LONG_DATASTORE, _ARM_DATASTORE, _ARM_ASSET, _LOCATION_ASSET)
    ):
        problem = None
    elif uri.startswith("/") and not lowered.startswith("/subscriptions/"):
        return (
            f"local paths are not accepted; upload the data to a datastore first, got {shown(uri)}"
        )
    else:
        return f"must be one of: {ACCEPTED_INPUT_FORMS}; got {shown(uri)}"
    if problem is None:
        problem = _path_problem(uri)
    if problem is None and input_type == "UriFile" and uri.endswith("/"):
        problem = "names a folder (ends in '/') but endpoint_input_type is UriFile"
    return problem


def _http_input_problem(uri: str) -> str | None:
    """Blob/ADLS (or loopback emulator) URL: its origin read by the strict service-URL rules."""
    path_start = uri.find("/", uri.index("://") + 3)
    origin = uri if path_start < 0 else uri[:path_start]
    try:
        url = ServiceUrl.parse(origin, allow_path=False)
    except ValueError as exc:
        return f"is not a valid storage URL: its host part {exc}"
    if not is_loopback(url.host) and not _STORAGE_HOST.match(url.host):
        return (
            "must be an Azure Blob/ADLS URL (<account>.blob.core.windows.net or "
            f"<account>.dfs.core.windows.net, or a sovereign cloud), got {shown(uri)}"
        )
    if path_start < 0 or uri[path_start:].strip("/") == "":
        return f"must name a container and path, got {shown(uri)}"
    return None


def output_uri_problem(uri: str) -> str | None:
    """What is wrong with an output file URI, or None.

    The output must be a FILE on an Azure ML datastore: ``azureml://datastores/<ds>/paths/<p>``,
    the long ``azureml://subscriptions/...`` form, or a datastore ARM id with ``/paths/<p>``
    (documented for job outputs: Learn, "Create jobs and input data for batch endpoints"), not
    ending in ``/``.

    Args:
        uri: The candidate ``endpoint_output_uri``.

    Returns:
        None when valid, else a short problem description.
    """
    problem = _uri_text_problem(uri)
    if problem:
        return problem
    match = _SHORT_DATASTORE.match(uri) or _LONG_DATASTORE.match(uri) or _ARM_DATASTORE.match(uri)
    if not match:
        return (
            "must be an azureml://datastores/<datastore>/paths/<path>/<file> URI (or the long "
            "azureml://subscriptions/... form, or a datastore ARM id with /paths/<path>/<file>), "
            f"got {shown(uri)}"
        )
    path = match.group(2)
    if path.endswith("/") or not path.rsplit("/", 1)[-1]:
        return f"must name a file, not a folder (it ends in '/'), got {shown(uri)}"
    if "//" in path:
        return f"must not contain empty path segments, got {shown(uri)}"
    return _path_problem(path)


def datastore_path(uri: str) -> tuple[str, str] | None:
    """``(datastore, path)`` of an ``azureml://`` datastore URI (any accepted form), or None."""
    match = _SHORT_DATASTORE.match(uri) or _LONG_DATASTORE.match(uri) or _ARM_DATASTORE.match(uri)
    return (match.group(1), match.group(2)) if match else None
