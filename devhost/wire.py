"""What devhost accepts from the network before any of its own or the app's code runs.

Pure helpers for the HTTP handler in ``devhost.listener``: where the request-target's path and
query are, how the body is framed (``Content-Length`` or ``Transfer-Encoding: chunked``), how
large it may be, and whether a function key matches. Each rejection is a ``RequestRejected``
carrying the status to answer; the handler answers it and closes the connection.

Sources. Functions host: Azure/azure-functions-host at commit
89dc438d476542786f2fc4070f553423213a6223. Kestrel: dotnet/aspnetcore at commit
f52a3e23a82a1116262f7e6ed66c44a8d1dadfe0. HTTP: RFC 9112.

- Body cap: the host sets Kestrel's ``MaxRequestBodySize`` to
  ``ScriptConstants.DefaultMaxRequestBodySize`` = 104857600 bytes
  (``src/WebJobs.Script/ScriptConstants.cs`` line 239, ``src/WebJobs.Script.WebHost/Program.cs``
  lines 47-58); ``HttpRequestBodySizeMiddleware`` replaces it with the app setting
  ``FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`` (bytes) when that parses as an integer
  (``src/WebJobs.Script.WebHost/Middleware/HttpRequestBodySizeMiddleware.cs`` lines 38-66; the
  name: ``src/WebJobs.Script/Environment/EnvironmentSettingNames.cs`` line 74). Kestrel answers
  ``RequestBodyTooLarge`` with 413 and ``InvalidContentLength``/``MultipleContentLengths`` with
  400 (``src/Servers/Kestrel/Core/src/KestrelBadHttpRequestException.cs``); a second
  ``Content-Length`` is refused even when it repeats the value (``AppendContentLength`` in
  ``src/Servers/Kestrel/Core/src/Internal/Http/HttpRequestHeaders.cs``, commit
  e4f958a2129b9d8e492b57fc41364303bc50dd2f).
- Function key: header ``x-functions-key`` first, else query ``code``, the first value of
  either (``src/WebJobs.Script.WebHost/Security/Authentication/Keys/AuthenticationLevelHandler.cs``
  lines 23-24 and 89-98).
- Framing, RFC 9112: section 6.3 (an invalid ``Content-Length``: 400 and close;
  ``Transfer-Encoding`` together with ``Content-Length`` may be rejected, and the connection
  must then be closed; ``chunked`` not the final coding: 400 and close, Kestrel's
  ``FinalTransferCodingNotChunked``), section 6.1 (a transfer coding the server does not
  understand: 501; ``Transfer-Encoding`` in an HTTP/1.0 request is faulty framing) and
  section 7.1 (the chunked coding, which Kestrel also decodes). RFC 9110 section 8.6 lets a
  recipient reject a repeated ``Content-Length``.
"""

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Protocol
from urllib.parse import urlsplit

from devhost.errors import RequestRejected, SettingsError

__all__ = [
    "BODY_LIMIT_SETTING",
    "DEFAULT_MAX_REQUEST_BODY_BYTES",
    "Framing",
    "Readable",
    "body_limit",
    "framing_of",
    "key_matches",
    "read_body",
    "split_target",
]

#: The Functions host's default request body cap (Kestrel ``MaxRequestBodySize``), in bytes.
DEFAULT_MAX_REQUEST_BODY_BYTES = 104_857_600
#: The app setting that replaces it (bytes).
BODY_LIMIT_SETTING = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT"

_DIGITS = re.compile(r"[0-9]+")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
# Longer than any cap (a 20-digit Content-Length is already > 2**63): compare, never int() it,
# since int() refuses strings of more than 4300 digits.
_MAX_LENGTH_DIGITS = 19
# Chunk-size lines and trailer fields: the same per-line bound http.server uses for headers.
_MAX_LINE = 65536
_MAX_TRAILERS = 100


def body_limit(environ: Mapping[str, str]) -> int:
    """The request body cap: ``FUNCTIONS_REQUEST_BODY_SIZE_LIMIT`` bytes, else 100 MiB.

    The Functions host silently ignores a value that does not parse; devhost refuses to start
    instead, so that a setting that would do nothing in Azure is noticed.

    Raises:
        SettingsError: the setting is present but not a non-negative integer.
    """
    text = environ.get(BODY_LIMIT_SETTING, "").strip()
    if not text:
        return DEFAULT_MAX_REQUEST_BODY_BYTES
    if not _DIGITS.fullmatch(text) or len(text) > _MAX_LENGTH_DIGITS:
        raise SettingsError(f"{BODY_LIMIT_SETTING}: must be a number of bytes, got {text!r}")
    return int(text)


class Readable(Protocol):
    """The read side of a connection (``BaseHTTPRequestHandler.rfile``)."""

    def read(self, size: int, /) -> bytes: ...

    def readline(self, size: int, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Framing:
    """How a request's body is delimited."""

    length: int | None  # from Content-Length (None: absent)
    chunked: bool  # Transfer-Encoding: chunked

    @property
    def has_body(self) -> bool:
        """Whether body bytes follow the header section."""
        return self.chunked or bool(self.length)


def framing_of(headers: Message, *, http10: bool = False) -> Framing:
    """Read the body framing from the header section, without reading the body.

    Args:
        headers: the parsed header section.
        http10: the request line said ``HTTP/1.0``.

    Raises:
        RequestRejected: 400 for a malformed, negative or repeated ``Content-Length``, for
            ``Transfer-Encoding`` together with ``Content-Length``, in HTTP/1.0 or without
            ``chunked`` last; 501 for a transfer coding other than ``chunked`` before it.
    """
    length = _content_length(headers.get_all("Content-Length") or [])
    te_values = headers.get_all("Transfer-Encoding") or []
    if not te_values:
        return Framing(length=length, chunked=False)
    if length is not None:
        raise RequestRejected(400, "Transfer-Encoding and Content-Length must not both be sent")
    if http10:
        raise RequestRejected(400, "Transfer-Encoding is not allowed in HTTP/1.0")
    codings = [c.strip().lower() for value in te_values for c in value.split(",") if c.strip()]
    if not codings or codings[-1] != "chunked":
        raise RequestRejected(400, "the last Transfer-Encoding must be chunked")
    if codings != ["chunked"]:
        raise RequestRejected(501, "the only supported Transfer-Encoding is chunked")
    return Framing(length=None, chunked=True)


def _content_length(values: list[str]) -> int | None:
    items = [item.strip() for value in values for item in value.split(",")]
    if not items:
        return None
    if len(items) > 1:  # as Kestrel (MultipleContentLengths), even when the values agree
        raise RequestRejected(400, "Content-Length must be sent once")
    text = items[0]
    if not _DIGITS.fullmatch(text):
        raise RequestRejected(400, "Content-Length must be a non-negative integer")
    text = text.lstrip("0") or "0"
    return int(text) if len(text) <= _MAX_LENGTH_DIGITS else 10**_MAX_LENGTH_DIGITS


def read_body(stream: Readable, framing: Framing, limit: int) -> bytes:
    """Read the body described by ``framing``; never more than ``limit`` bytes of it.

    Raises:
        RequestRejected: 413 when ``Content-Length`` (before reading) or the chunks read so far
            exceed ``limit``; 400 for malformed chunks or a body that ends early.
    """
    if framing.chunked:
        return _read_chunked(stream, limit)
    length = framing.length or 0
    if length > limit:
        raise RequestRejected(413, f"request body larger than {limit} bytes")
    return _read_exact(stream, length)


def _read_exact(stream: Readable, size: int) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise RequestRejected(400, "request body ended early")
    return data


def _read_line(stream: Readable) -> bytes:
    line = stream.readline(_MAX_LINE + 1)
    if len(line) > _MAX_LINE or not line.endswith(b"\n"):
        raise RequestRejected(400, "malformed chunked body")
    return line


def _read_chunked(stream: Readable, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_text = _read_line(stream).split(b";", 1)[0].strip()  # drop chunk extensions
        if not _CHUNK_SIZE.fullmatch(size_text):
            raise RequestRejected(400, "malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > limit:
            raise RequestRejected(413, f"request body larger than {limit} bytes")
        parts.append(_read_exact(stream, size))
        if _read_line(stream) not in (b"\r\n", b"\n"):
            raise RequestRejected(400, "malformed chunked body")
    for _ in range(_MAX_TRAILERS):  # trailer fields are read and ignored
        if _read_line(stream) in (b"\r\n", b"\n"):
            return b"".join(parts)
    raise RequestRejected(400, "too many trailer fields")


def key_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented key with the expected one.

    Keys are compared as UTF-8 bytes: ``hmac.compare_digest`` refuses non-ASCII ``str``, and a
    wrong key of any alphabet must be just a wrong key (401), not an error.
    """
    if not given:
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def split_target(target: str) -> tuple[str, str]:
    """The still percent-encoded path and query of a request-target.

    Accepts origin form (``/path?query``) and absolute form (``http://host/path?query``).
    Origin form is split at the first ``?`` rather than parsed as a URL, so ``//x/y`` stays a
    path and never becomes a host ``x``.

    Raises:
        RequestRejected: 400 for any other form (``*``, authority form, garbage).
    """
    if target.startswith("/"):
        path, _, query = target.partition("?")
    elif target[:8].lower().startswith(("http://", "https://")):
        try:
            parts = urlsplit(target)
        except ValueError as exc:
            raise RequestRejected(400, "malformed request-target") from exc
        path, query = parts.path or "/", parts.query
    else:
        raise RequestRejected(400, "malformed request-target")
    return path.partition("#")[0], query.partition("#")[0]
