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

import logging
import re
from urllib.parse import SplitResult, urlsplit

from batch_endpoint._allowlist import is_loopback
from batch_endpoint._errors import redact_url

logger = logging.getLogger(__name__)

INPUT_TYPES: tuple[str, ...] = ("UriFolder", "UriFile")

_SEG = r"[^/?#\s]+"
_ARM_WS = (
    rf"/subscriptions/{_SEG}/resourcegroups/{_SEG}"
    rf"/providers/microsoft\.machinelearningservices/workspaces/{_SEG}"
)
_SHORT_DATASTORE = re.compile(rf"^azureml://datastores/({_SEG})/paths/(.+)$", re.IGNORECASE)
_LONG_DATASTORE = re.compile(
    rf"^azureml://subscriptions/{_SEG}/resourcegroups/{_SEG}"
    rf"(?:/providers/microsoft\.machinelearningservices)?/workspaces/{_SEG}"
    rf"/datastores/({_SEG})/paths/(.+)$",
    re.IGNORECASE,
)
_ARM_DATASTORE = re.compile(
    rf"^(?:azureml:)?{_ARM_WS}/datastores/({_SEG})/paths/(.+)$", re.IGNORECASE
)
_ARM_ASSET = re.compile(rf"^(?:azureml:)?{_ARM_WS}/data/{_SEG}/versions/{_SEG}$", re.IGNORECASE)
_LOCATION_ASSET = re.compile(
    rf"^azureml://locations/{_SEG}/workspaces/{_SEG}/data/{_SEG}/versions/"
    rf"(?:labels/)?{_SEG}$",
    re.IGNORECASE,
)
_STORAGE_HOST = re.compile(
    r"^[a-z0-9]{3,24}\.(?:blob|dfs)\.core\."
    r"(?:windows\.net|chinacloudapi\.cn|usgovcloudapi\.net)$"
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
    """``value`` made safe to echo in an error: query string removed, truncated, quoted.

    Args:
        value: A user-supplied URI or string.

    Returns:
        A quoted, redacted, truncated representation.
    """
    text = redact_url(value) if ("?" in value or "#" in value or "@" in value) else value
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return repr(text)


def _split(uri: str) -> SplitResult | None:
    try:
        parts = urlsplit(uri)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        return None
    return parts


def _path_problem(path: str) -> str | None:
    segments = path.split("/")
    if any(seg in {".", ".."} for seg in segments):
        return "must not contain '.' or '..' path segments"
    return None


def endpoint_uri_problem(uri: str) -> str | None:
    """What is wrong with a batch endpoint scoring URI, or None.

    Rules: absolute ``https`` URL (``http`` only for loopback hosts), path ending in ``/jobs``,
    no query string, fragment or user info.

    Args:
        uri: The candidate URI.

    Returns:
        None when valid, else a short problem description.
    """
    if not uri or uri != uri.strip() or any(c.isspace() for c in uri):
        return f"must be an absolute https URL ending in /jobs without spaces, got {shown(uri)}"
    parts = _split(uri)
    if parts is None or not parts.hostname:
        return f"must be an absolute https URL ending in /jobs, got {shown(uri)}"
    scheme = parts.scheme.lower()
    if parts.query or parts.fragment or "?" in uri or "#" in uri:
        return "must not carry a query string or fragment"
    if "@" in parts.netloc:
        return "must not carry user info (user:password@)"
    if scheme == "http":
        if not is_loopback(parts.hostname):
            return f"must use https (http is only allowed for loopback hosts), got {shown(uri)}"
    elif scheme != "https":
        return f"must be an absolute https URL ending in /jobs, got {shown(uri)}"
    if not parts.path.endswith("/jobs"):
        return f"must end in /jobs (the endpoint's scoring URI), got {shown(uri)}"
    return _path_problem(parts.path)


def input_uri_problem(uri: str, input_type: str = "UriFolder") -> str | None:
    """What is wrong with an input data URI, or None.

    Args:
        uri: The candidate ``endpoint_input_uri``.
        input_type: ``UriFolder`` or ``UriFile``; a ``UriFile`` must not end in ``/``.

    Returns:
        None when valid, else a short problem description.
    """
    if not uri.strip():
        return "must not be empty"
    if uri != uri.strip() or any(c in uri for c in "\r\n\t"):
        return f"must not contain leading/trailing spaces or control characters, got {shown(uri)}"
    if "?" in uri or "#" in uri:
        return (
            "must not carry a SAS token or query string "
            "(the compute reads data with its own identity)"
        )
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
        problem = _path_problem(urlsplit(uri).path if "://" in uri else uri)
    if problem is None and input_type == "UriFile" and uri.endswith("/"):
        problem = "names a folder (ends in '/') but endpoint_input_type is UriFile"
    return problem


def _http_input_problem(uri: str) -> str | None:
    parts = _split(uri)
    if parts is None or not parts.hostname:
        return f"is not a valid URL, got {shown(uri)}"
    if "@" in parts.netloc:
        return "must not carry user info (user:password@)"
    host = parts.hostname.lower()
    scheme = parts.scheme.lower()
    if is_loopback(host):
        pass  # Azurite and other local emulators, http or https
    elif scheme != "https":
        return f"must use https for remote storage, got {shown(uri)}"
    elif not _STORAGE_HOST.match(host):
        return (
            "must be an Azure Blob/ADLS URL (<account>.blob.core.windows.net or "
            f"<account>.dfs.core.windows.net, or a sovereign cloud), got {shown(uri)}"
        )
    if parts.path.strip("/") == "":
        return f"must name a container and path, got {shown(uri)}"
    return None


def output_uri_problem(uri: str) -> str | None:
    """What is wrong with an output file URI, or None.

    The output must be a FILE on an Azure ML datastore: ``azureml://datastores/<ds>/paths/<p>``
    or the long ``azureml://subscriptions/...`` form, not ending in ``/``.

    Args:
        uri: The candidate ``endpoint_output_uri``.

    Returns:
        None when valid, else a short problem description.
    """
    if not uri.strip():
        return "must not be empty"
    if "?" in uri or "#" in uri:
        return "must not carry a SAS token or query string"
    if uri != uri.strip() or any(c in uri for c in "\r\n\t"):
        return f"must not contain leading/trailing spaces or control characters, got {shown(uri)}"
    match = _SHORT_DATASTORE.match(uri) or _LONG_DATASTORE.match(uri)
    if not match:
        return (
            "must be an azureml://datastores/<datastore>/paths/<path>/<file> URI (or the long "
            f"azureml://subscriptions/... form), got {shown(uri)}"
        )
    path = match.group(2)
    if path.endswith("/") or not path.rsplit("/", 1)[-1]:
        return f"must name a file, not a folder (it ends in '/'), got {shown(uri)}"
    if "//" in path:
        return f"must not contain empty path segments, got {shown(uri)}"
    return _path_problem(path)


def validate_endpoint_uri(uri: str) -> str:
    """Return ``uri`` if it is a valid endpoint scoring URI.

    Args:
        uri: The candidate URI.

    Returns:
        ``uri`` unchanged.

    Raises:
        ValueError: Naming what is wrong.
    """
    problem = endpoint_uri_problem(uri)
    if problem:
        raise ValueError(f"endpoint URI {problem}")
    return uri


def validate_input_uri(uri: str, input_type: str = "UriFolder") -> str:
    """Return ``uri`` if it is an accepted input URI for ``input_type``.

    Raises:
        ValueError: Naming what is wrong.
    """
    problem = input_uri_problem(uri, input_type)
    if problem:
        raise ValueError(f"input URI {problem}")
    return uri


def validate_output_uri(uri: str) -> str:
    """Return ``uri`` if it is an accepted output file URI.

    Raises:
        ValueError: Naming what is wrong.
    """
    problem = output_uri_problem(uri)
    if problem:
        raise ValueError(f"output URI {problem}")
    return uri
