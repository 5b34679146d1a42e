"""One reading of a service URL: parsed once, strictly, into parts that every request is built from.

The app sends its bearer token to the endpoint a caller names, so the check that decides whether
a host may receive the token and the connection that carries it must read the URL the same way.
Python's ``urlsplit`` and urllib3's ``parse_url`` disagree on many inputs (a backslash ends the
host for urllib3 but not for ``urlsplit``; userinfo, percent-escapes, control characters and
non-ASCII dots are read differently again). Rather than chase each differential, the parser
here accepts only a small language in which every reader agrees:

- ``scheme://host[:port]/path`` with scheme ``https`` (``http`` only for loopback hosts);
- only the RFC 3986 characters unreserved ``A-Z a-z 0-9 - . _ ~`` plus ``: / [ ]`` (so no
  backslash, ``@``, ``%``, ``?``, ``#``, whitespace, control, zero-width, bidi or non-ASCII);
- host: a DNS name of LDH labels (``xn--`` IDNA labels must decode), no trailing dot, at most
  253 characters; or a dotted-decimal IPv4 address; or a bracketed IPv6 address without zone;
  a name whose last label is numeric (``2130706433``, ``0x7f.1``, ``0177.0.0.1``) must be a
  canonical dotted-decimal IPv4 address, because resolvers read such names as numbers;
- port: 1-65535 without leading zeros;
- path segments of unreserved characters only, never ``.`` or ``..`` and never empty.

As defence in depth, the text is then read by the transport's own parsers (``urlsplit``, which
requests uses to pick the connection, and ``urllib3.util.parse_url``, which requests uses to
prepare the URL) and refused if either sees another scheme, host or port.
"""

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"https": 443, "http": 80}
_ALLOWED_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:/[]")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)\Z")
_DECIMAL_OCTET = re.compile(r"^(?:0|[1-9][0-9]{0,2})\Z")
_PORT = re.compile(r"^[1-9][0-9]{0,4}\Z")
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+\Z")
_SCHEME_SEP = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_ZERO_WIDTH_OR_BIDI = frozenset(
    "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is the local machine (``localhost``, ``127.0.0.0/8`` or ``::1``).

    Args:
        host: A host name or IP literal, optionally in IPv6 brackets.

    Returns:
        True for loopback hosts only.
    """
    name = host.strip().lower().strip("[]").rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def character_problem(text: str) -> str | None:
    """A sentence naming the first class of character that no field of a request may hold.

    Control characters (C0, DEL, C1), zero-width and bidirectional-control characters, other
    format characters (Unicode category Cf), line/paragraph separators and lone surrogates hide
    or reorder text in logs, portals and terminals; they are refused everywhere.

    Args:
        text: Any caller-supplied string.

    Returns:
        None when clean, else what is wrong (without echoing the characters).
    """
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return f"must not contain control characters (found U+{code:04X})"
        if char in _ZERO_WIDTH_OR_BIDI:
            return (
                "must not contain zero-width or bidirectional-control characters "
                f"(found U+{code:04X})"
            )
        if char.isascii():
            continue
        category = unicodedata.category(char)
        if category in ("Cf", "Cs", "Zl", "Zp", "Co", "Cn"):
            return f"must not contain invisible or unassigned characters (found U+{code:04X})"
    return None


@dataclass(frozen=True, slots=True)
class ServiceUrl:
    """A validated ``http(s)`` URL, held as parts; requests are built from these parts only.

    Attributes:
        scheme: ``https`` or ``http`` (lower case).
        host: Lower-case DNS name or IP literal (IPv6 without brackets, compressed form).
        port: The explicit port, or None for the scheme's default.
        path: ``""`` or ``/seg/seg...`` of unreserved characters.
    """

    scheme: str
    host: str
    port: int | None
    path: str

    @property
    def effective_port(self) -> int:
        """The port the connection uses (the explicit one or the scheme's default)."""
        return self.port if self.port is not None else _DEFAULT_PORTS[self.scheme]

    @property
    def netloc(self) -> str:
        """``host[:port]`` with IPv6 hosts in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}" if self.port is not None else host

    @property
    def origin(self) -> str:
        """``scheme://netloc`` (no path)."""
        return f"{self.scheme}://{self.netloc}"

    @property
    def url(self) -> str:
        """The canonical URL text, rebuilt from the parts."""
        return f"{self.origin}{self.path}"

    def __str__(self) -> str:
        return self.url

    def child(self, *segments: str) -> str:
        """The URL of ``path/segment/...``; each segment must be a valid path segment.

        Raises:
            ValueError: A segment is empty, ``.``/``..`` or has a reserved character.
        """
        for segment in segments:
            if not _SEGMENT.match(segment) or segment in (".", ".."):
                raise ValueError(f"invalid URL path segment {segment!r}")
        return "/".join([self.url, *segments])

    @classmethod
    def parse(
        cls, text: str, *, path_suffix: str | None = None, allow_path: bool = True
    ) -> "ServiceUrl":
        """Parse ``text`` under the rules in the module docstring.

        Args:
            text: The candidate URL.
            path_suffix: When set, the path must end with this segment path (e.g. ``/jobs``).
            allow_path: When False, the URL must have no path (a trailing ``/`` is dropped).

        Returns:
            The parts.

        Raises:
            ValueError: Saying what is wrong, without echoing unsafe characters.
        """
        problem, url = _parse(text, path_suffix=path_suffix, allow_path=allow_path)
        if url is None:
            raise ValueError(problem)
        return url


def _parse(
    text: object, *, path_suffix: str | None, allow_path: bool
) -> tuple[str, ServiceUrl | None]:
    if not isinstance(text, str) or not text:
        return "must be a non-empty absolute URL", None
    if len(text) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters, got {len(text)}", None
    problem = _character_problem_in_url(text)
    if problem:
        return problem, None
    match = _SCHEME_SEP.match(text)
    if match is None:
        return "must be an absolute URL (https://host/...)", None
    scheme = match.group(1).lower()
    if scheme not in _DEFAULT_PORTS:
        return f"must use https, got scheme {scheme!r}", None
    rest = text[match.end() :]
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    host_problem, host, port = _authority(authority)
    if host_problem:
        return host_problem, None
    assert host is not None
    if not allow_path:
        path = "" if path == "/" else path
        if path:
            return "must not have a path", None
    path_problem = _path_problem(path, path_suffix)
    if path_problem:
        return path_problem, None
    if scheme == "http" and not is_loopback(host):
        return "must use https (http is only allowed for loopback hosts)", None
    url = ServiceUrl(scheme=scheme, host=host, port=port, path=path)
    transport_problem = _transport_problem(text, url) or _transport_problem(url.url, url)
    if transport_problem:
        return transport_problem, None
    return "", url


def _character_problem_in_url(text: str) -> str | None:
    if "\\" in text:
        return "must not contain a backslash"
    if any(c.isspace() for c in text):
        return "must not contain whitespace"
    problem = character_problem(text)
    if problem:
        return problem
    if not text.isascii():
        return "must be ASCII (give an internationalised host in its IDNA 'xn--' form)"
    if "@" in text:
        return "must not carry user info (user:password@)"
    if "?" in text or "#" in text:
        return "must not carry a query string or fragment"
    if "%" in text:
        return "must not contain percent-escapes"
    bad = sorted({c for c in text if c not in _ALLOWED_CHARS})
    if bad:
        return f"must not contain the characters {''.join(bad)!r}"
    return None


def _authority(authority: str) -> tuple[str, str | None, int | None]:
    """``(problem, host, port)``: the problem is ``""`` when the authority is valid."""
    if not authority:
        return "has no host", None, None
    if authority.startswith("["):
        problem, host, port_text = _ipv6_authority(authority)
    else:
        problem, host, port_text = _name_authority(authority)
    if problem or host is None:
        return problem, None, None
    if port_text is None:
        return "", host, None
    if not _PORT.match(port_text) or int(port_text) > 65535:
        return "has an invalid port (1-65535, no leading zeros)", None, None
    return "", host, int(port_text)


def _ipv6_authority(authority: str) -> tuple[str, str | None, str | None]:
    end = authority.find("]")
    if end < 0:
        return "has an unclosed '[' in the host", None, None
    host_text, tail = authority[1:end], authority[end + 1 :]
    if tail and not tail.startswith(":"):
        return "has text after the IPv6 address", None, None
    try:
        host = ipaddress.IPv6Address(host_text).compressed
    except ValueError:
        return "has an invalid IPv6 address", None, None
    return "", host, tail[1:] if tail else None


def _name_authority(authority: str) -> tuple[str, str | None, str | None]:
    if "[" in authority or "]" in authority:
        return "has '[' or ']' outside an IPv6 address", None, None
    if authority.count(":") > 1:
        return "has more than one ':' in the host (put IPv6 addresses in brackets)", None, None
    host_text, sep, port_part = authority.partition(":")
    problem = _host_name_problem(host_text)
    if problem:
        return problem, None, None
    return "", host_text.lower(), port_part if sep else None


def _host_name_problem(host: str) -> str | None:
    name = host.lower()
    if not name:
        return "has no host"
    if name.endswith("."):
        return "must not have a trailing dot in the host"
    if len(name) > 253:
        return "has a host longer than 253 characters"
    labels = name.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        # Resolvers read a name ending in a number as an IPv4 address in any of several forms.
        if len(labels) != 4 or not all(
            _DECIMAL_OCTET.match(label) and int(label) <= 255 for label in labels
        ):
            return "has a host that is not a dotted-decimal IPv4 address or a DNS name"
        return None
    for label in labels:
        if not _LABEL.match(label):
            return (
                "has a host that is not a valid DNS name (labels of letters, digits and '-', "
                "1-63 characters, not starting or ending with '-')"
            )
        if label.startswith("xn--"):
            try:
                label[4:].encode("ascii").decode("punycode")
            except UnicodeError:
                return "has a host label that is not valid IDNA ('xn--' form)"
        elif label[2:4] == "--":
            return "has a host label with '--' in positions 3-4 that is not an 'xn--' label"
    return None


def _path_problem(path: str, suffix: str | None) -> str | None:
    if suffix is not None and not path.endswith(suffix):
        return f"must end in {suffix}"
    if path:
        segments = path.split("/")[1:]
        for segment in segments:
            if segment in (".", ".."):
                return "must not contain '.' or '..' path segments"
            if not segment:
                return "must not contain empty path segments ('//' or a trailing '/')"
            if not _SEGMENT.match(segment):
                return "has a path segment with characters outside A-Z a-z 0-9 - . _ ~"
    return None


def _transport_problem(text: str, url: ServiceUrl) -> str | None:
    """Refuse ``text`` if the HTTP stack would read another scheme, host or port from it."""
    from urllib3.util import parse_url  # on first use: importing the app loads no HTTP stack

    try:
        split = urlsplit(text)
        split_port = split.port
        parsed = parse_url(text)
    except ValueError:
        return "is not read the same way by the HTTP transport"
    readings = {
        (split.scheme.lower(), _canonical_host(split.hostname), split_port),
        ((parsed.scheme or "").lower(), _canonical_host(parsed.host), parsed.port),
    }
    if readings != {(url.scheme, url.host, url.port)}:
        return "is not read the same way by the HTTP transport"
    return None


def _canonical_host(host: str | None) -> str:
    name = (host or "").lower().strip("[]")
    try:
        return ipaddress.ip_address(name).compressed
    except ValueError:
        return name
