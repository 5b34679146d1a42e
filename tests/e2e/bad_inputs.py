"""A named catalogue of bad inputs for the HTTP API and how each must be answered.

Each :class:`BadInput` is one HTTP request (method, path, exact body bytes, extra headers) plus
the contract for its answer: the status (400; 413 for bodies over 64 KiB; 400 or 404 for bad run
ids), the field that the error body's ``details`` must name, and the error code where it is fixed.
Run-parameter cases are :data:`BASE_BODY` (a valid request) with exactly one thing made bad.

The stack's only allowlisted endpoint host is ``127.0.0.1:<emulator port>``
(``BATCH_ENDPOINT_ALLOWED_HOSTS`` in ``scripts/devstack.py``), and the port is only known once the
stack runs, so the catalogue writes it as :data:`PORT` and :meth:`BadInput.materialize`
substitutes it. That lets the endpoint vectors aim at the one host a naive parser or suffix check
would let through.

Secret-like values carry the marker :data:`SECRET`; the tests check that no answer contains it
(nor any ``sig=``), so a SAS token or password is never echoed.
"""

import json
import unicodedata
from dataclasses import dataclass

__all__ = [
    "ANY_UNKNOWN",
    "BAD_INPUTS",
    "BASE_BODY",
    "GOOD_ENDPOINT",
    "KNOWN_PARAMETERS",
    "PORT",
    "SECRET",
    "BadInput",
    "is_dangerous_char",
]

#: Placeholder for the emulator's port (the allowlisted host is ``127.0.0.1:<port>``).
PORT = "{port}"
#: Placeholder in one string of a JSON body, filled with ``a`` up to :attr:`BadInput.pad_to`.
PAD = "{pad}"
#: Marker in every secret-like value (SAS signatures, passwords, client secrets).
SECRET = "S3KR1T"
#: ``fields`` value meaning "some detail names an unknown parameter" (its raw name has
#: characters that must not be echoed, or is too long to be echoed whole).
ANY_UNKNOWN = "<any unknown parameter>"

KNOWN_PARAMETERS = frozenset(
    {
        "endpoint_uri",
        "endpoint_input_uri",
        "endpoint_input_type",
        "endpoint_output_uri",
        "poll_interval",
        "timeout",
        "deployment_name",
        "input_name",
        "output_name",
        "mini_batch_size",
        "instance_count",
        "error_threshold",
        "max_retries",
        "retry_timeout",
        "output_file_name",
    }
)

HOST = f"127.0.0.1:{PORT}"
JOBS_PATH = "/endpoints/heart-classifier/jobs"
GOOD_ENDPOINT = f"http://{HOST}{JOBS_PATH}"
DATASTORE = "azureml://datastores/workspaceblobstore/paths/"
INPUT_FOLDER = f"{DATASTORE}heart-unlabeled/"
BLOB = "https://acct.blob.core.windows.net"
#: A valid run request; every run-parameter case changes exactly one thing in it.
BASE_BODY: dict[str, object] = {"endpoint_input_uri": INPUT_FOLDER, "poll_interval": 1}

MAX_BODY = 65536
MAX_URI = 2048

# Characters that must be refused anywhere and never echoed raw: controls (C0, DEL, C1),
# zero-width characters and bidi embeddings/overrides/isolates.
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\ufeff")
BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_dangerous_char(c: str) -> bool:
    """A control (Unicode category Cc), zero-width or bidi control character."""
    return c in ZERO_WIDTH or c in BIDI or unicodedata.category(c) == "Cc"


@dataclass(frozen=True, slots=True)
class BadInput:
    """One bad request and the contract for its answer.

    Attributes:
        id: Readable pytest id.
        method: HTTP method.
        path: Request target, already percent-encoded as it goes on the wire.
        body: Exact body bytes.
        headers: Extra request headers (values as bytes, sent verbatim).
        fields: The error details must name at least one of these fields (or, for
            :data:`ANY_UNKNOWN`, a field that is not a known parameter).
        status: Acceptable statuses. 404 answers (unknown run ids) need no ``details``.
        code: The required ``error.code`` (None: any non-empty string).
        pad_to: Length of the body's string holding :data:`PAD` once it is filled (exact
            boundary cases whose length depends on the port).
    """

    id: str
    method: str = "POST"
    path: str = "/api/runs"
    body: bytes = b""
    headers: tuple[tuple[str, bytes], ...] = ()
    fields: tuple[str, ...] = ("body",)
    status: tuple[int, ...] = (400,)
    code: str | None = None
    pad_to: int | None = None

    def materialize(self, port: int) -> "BadInput":
        """This case with :data:`PORT` replaced by ``port`` everywhere and :data:`PAD` filled."""
        text, raw = PORT, PORT.encode()
        body = self.body.replace(raw, str(port).encode())
        if self.pad_to is not None:
            body = _encode(_fill_pad(json.loads(body), self.pad_to))
        return BadInput(
            id=self.id,
            method=self.method,
            path=self.path.replace(text, str(port)),
            body=body,
            headers=tuple((k, v.replace(raw, str(port).encode())) for k, v in self.headers),
            fields=self.fields,
            status=self.status,
            code=self.code,
        )


def _fill_pad(obj: object, length: int) -> object:
    if isinstance(obj, str) and PAD in obj:
        return obj.replace(PAD, "a" * (length - len(obj) + len(PAD)))
    if isinstance(obj, dict):
        return {k: _fill_pad(v, length) for k, v in obj.items()}
    return obj


def _encode(obj: object) -> bytes:
    """JSON with non-ASCII characters as raw UTF-8 (lone surrogates fall back to escapes)."""
    try:
        return json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj).encode("ascii")


def _u(c: str) -> str:
    return f"U+{ord(c):04X}"


CASES: list[BadInput] = []
_IDS: set[str] = set()


def _add(case: BadInput) -> None:
    if case.id in _IDS:
        raise ValueError(f"duplicate bad-input id {case.id!r}")
    _IDS.add(case.id)
    CASES.append(case)


def _param(
    case_id: str,
    field: str,
    value: object,
    *,
    fields: tuple[str, ...] | None = None,
    pad_to: int | None = None,
) -> None:
    """A run request: :data:`BASE_BODY` with ``field`` set to ``value``; 400 naming ``field``."""
    body = {**BASE_BODY, field: value}
    _add(BadInput(id=case_id, body=_encode(body), fields=fields or (field,), pad_to=pad_to))


def _raw(
    case_id: str,
    body: bytes,
    *,
    fields: tuple[str, ...] = ("body",),
    status: int = 400,
    code: str | None = None,
) -> None:
    """A run request with exactly these body bytes."""
    _add(BadInput(id=case_id, body=body, fields=fields, status=(status,), code=code))


def _with_base(field: str, json_value: str) -> bytes:
    """Raw JSON text: :data:`BASE_BODY` with ``field`` written by hand (e.g. ``NaN``)."""
    base = {k: v for k, v in BASE_BODY.items() if k != field}
    return _encode(base)[:-1] + f', "{field}": {json_value}}}'.encode()


# Characters inserted into every string field. Each is refused wherever it appears.
BAD_CHARS: tuple[tuple[str, str], ...] = (
    ("nul", "\x00"),
    ("bell", "\x07"),
    ("esc", "\x1b"),
    ("del", "\x7f"),
    ("c1-nel", "\x85"),
    ("c1-csi", "\x9b"),
    ("zwsp", "\u200b"),
    ("zwnj", "\u200c"),
    ("zwj", "\u200d"),
    ("word-joiner", "\u2060"),
    ("bom", "\ufeff"),
    ("lre", "\u202a"),
    ("rle", "\u202b"),
    ("pdf", "\u202c"),
    ("lro", "\u202d"),
    ("rlo", "\u202e"),
    ("lri", "\u2066"),
    ("rli", "\u2067"),
    ("fsi", "\u2068"),
    ("pdi", "\u2069"),
)
# Controls at the ends of a value: a lenient parser strips them (str.strip() does) and accepts.
EDGE_CONTROLS: tuple[tuple[str, str, str], ...] = (
    ("trailing-lf", "", "\n"),
    ("trailing-crlf", "", "\r\n"),
    ("leading-tab", "\t", ""),
    ("trailing-vt", "", "\x0b"),
    ("trailing-unit-sep-x1f", "", "\x1f"),
    ("trailing-c1-nel", "", "\x85"),
)

# field -> (value before the bad character, value after it): a good value split in two.
STRING_FIELDS: dict[str, tuple[str, str]] = {
    "endpoint_uri": (f"http://{HOST}/endpoints/heart", "-classifier/jobs"),
    "endpoint_input_uri": (f"{DATASTORE}heart", "-unlabeled/"),
    "endpoint_output_uri": (f"{DATASTORE}bad-inputs/pred", "ictions.csv"),
    "endpoint_input_type": ("Uri", "Folder"),
    "deployment_name": ("bl", "ue"),
    "input_name": ("input", "_data"),
    "output_name": ("sc", "ore"),
    "output_file_name": ("pred", "ictions.csv"),
}

for _field, (_head, _tail) in STRING_FIELDS.items():
    for _name, _char in BAD_CHARS:
        _param(f"{_field}-{_name}-{_u(_char)}", _field, _head + _char + _tail)
    for _name, _prefix, _suffix in EDGE_CONTROLS:
        _param(f"{_field}-{_name}", _field, _prefix + _head + _tail + _suffix)
    for _kind, _wrong in (
        ("number", 42),
        ("true", True),
        ("list", [_head + _tail]),
        ("object", {"value": _head + _tail}),
    ):
        _param(f"{_field}-not-a-string-{_kind}", _field, _wrong)

# ------------------------------------------------------------------------------ endpoint_uri

ENDPOINT_URIS: tuple[tuple[str, str], ...] = (
    # userinfo: user@host, and parser differentials built on it
    ("userinfo-user", f"http://user@{HOST}{JOBS_PATH}"),
    ("userinfo-user-password", f"http://user:{SECRET}pw@{HOST}{JOBS_PATH}"),
    ("userinfo-empty", f"http://@{HOST}{JOBS_PATH}"),
    ("userinfo-allowed-host-as-user", f"http://{HOST}@evil.example.com/jobs"),
    ("userinfo-evil-as-user", f"http://evil.example.com@{HOST}{JOBS_PATH}"),
    ("userinfo-double-at", f"http://a@evil.example.com@{HOST}{JOBS_PATH}"),
    ("userinfo-backslash-before-at", f"http://{HOST}\\@evil.example.com/jobs"),
    ("userinfo-evil-backslash-at", f"http://evil.example.com\\@{HOST}{JOBS_PATH}"),
    ("userinfo-behind-fragment", f"http://evil.example.com#@{HOST}{JOBS_PATH}"),
    ("userinfo-behind-query", f"http://evil.example.com?@{HOST}{JOBS_PATH}"),
    ("userinfo-encoded-slash-before-at", "http://127.0.0.1%2f@evil.example.com/jobs"),
    ("userinfo-encoded-slash-port-before-at", f"http://{HOST}%2f@evil.example.com/jobs"),
    ("userinfo-encoded-at", f"http://evil.example.com%40{HOST}{JOBS_PATH}"),
    # backslashes
    ("backslash-famous-leak-vector", "https://127.0.0.1\\.x.inference.ml.azure.com/jobs"),
    ("backslash-famous-with-port", f"http://{HOST}\\.x.inference.ml.azure.com{JOBS_PATH}"),
    ("backslash-host-then-evil", "http://127.0.0.1\\.evil.example.com/jobs"),
    ("backslash-scheme-upper", f"HTTP:\\\\{HOST}{JOBS_PATH}"),
    ("backslash-scheme-all-backslashes", f"http:\\\\{HOST}\\endpoints\\heart-classifier\\jobs"),
    ("backslash-scheme-slash-backslash", f"http:/\\{HOST}{JOBS_PATH}"),
    ("backslash-scheme-backslash-slash", f"http:\\/{HOST}{JOBS_PATH}"),
    ("backslash-before-path", f"http://{HOST}\\endpoints/heart-classifier/jobs"),
    ("backslash-in-path", f"http://{HOST}/endpoints\\heart-classifier/jobs"),
    ("backslash-before-jobs", f"http://{HOST}/endpoints/heart-classifier\\jobs"),
    ("backslash-before-port", f"http://127.0.0.1\\:{PORT}{JOBS_PATH}"),
    # percent-escapes in the host
    ("host-percent-digit", f"http://127.0.0.%31:{PORT}{JOBS_PATH}"),
    ("host-percent-all", f"http://%31%32%37.%30.%30.%31:{PORT}{JOBS_PATH}"),
    ("host-percent-nul", f"http://127.0.0.1%00:{PORT}{JOBS_PATH}"),
    ("host-percent-dot", f"http://127.0.0.1%2e:{PORT}{JOBS_PATH}"),
    ("host-percent-tab", f"http://127.0.0.1%09:{PORT}{JOBS_PATH}"),
    ("host-percent-at", f"http://evil.example.com%40127.0.0.1:{PORT}{JOBS_PATH}"),
    ("host-percent-in-azure-suffix", "https://evil%2ex.inference.ml.azure.com/jobs"),
    # whitespace and controls at places a stripping parser forgives
    ("leading-space", f" {GOOD_ENDPOINT}"),
    ("trailing-space", f"{GOOD_ENDPOINT} "),
    ("trailing-nbsp", f"{GOOD_ENDPOINT}\u00a0"),
    ("space-in-host", f"http://127.0.0.1 :{PORT}{JOBS_PATH}"),
    ("space-in-path", f"http://{HOST}/endpoints/heart classifier/jobs"),
    ("tab-inside-host", f"http://127.0.\t0.1:{PORT}{JOBS_PATH}"),
    ("newline-inside-host", f"http://127.0.0.1\n:{PORT}{JOBS_PATH}"),
    ("cr-inside-port", f"http://127.0.0.1:\r{PORT}{JOBS_PATH}"),
    ("tab-inside-scheme", f"ht\ttp://{HOST}{JOBS_PATH}"),
    ("ideographic-space-in-path", f"http://{HOST}/endpoints/heart\u3000classifier/jobs"),
    ("nul-in-host", f"http://127.0.0.1\x00.evil.example.com:{PORT}{JOBS_PATH}"),
    ("zwsp-in-host", f"http://127.0.0.1\u200b:{PORT}{JOBS_PATH}"),
    ("rlo-in-host", f"http://\u202e127.0.0.1:{PORT}{JOBS_PATH}"),
    ("bom-before-scheme", f"\ufeff{GOOD_ENDPOINT}"),
    # trailing-dot hosts
    ("trailing-dot-ipv4", f"http://127.0.0.1.:{PORT}{JOBS_PATH}"),
    ("trailing-dots-ipv4", f"http://127.0.0.1..:{PORT}{JOBS_PATH}"),
    ("trailing-dot-localhost", f"http://localhost.:{PORT}{JOBS_PATH}"),
    ("trailing-dot-azure-host", "https://x.inference.ml.azure.com./jobs"),
    ("trailing-ideographic-full-stop", f"http://127.0.0.1\u3002:{PORT}{JOBS_PATH}"),
    # other spellings of 127.0.0.1 (another parser or resolver reads them as loopback)
    ("ipv4-decimal", f"http://2130706433:{PORT}{JOBS_PATH}"),
    ("ipv4-hex-integer", f"http://0x7f000001:{PORT}{JOBS_PATH}"),
    ("ipv4-hex-dotted-short", f"http://0x7f.1:{PORT}{JOBS_PATH}"),
    ("ipv4-octal", f"http://0177.0.0.1:{PORT}{JOBS_PATH}"),
    ("ipv4-short-form", f"http://127.1:{PORT}{JOBS_PATH}"),
    ("ipv4-zero-padded", f"http://127.000.000.001:{PORT}{JOBS_PATH}"),
    ("ipv4-leading-zero-octet", f"http://127.0.0.01:{PORT}{JOBS_PATH}"),
    ("ipv4-fullwidth-dots", f"http://127\u30020\u30020\u30021:{PORT}{JOBS_PATH}"),
    ("ipv4-fullwidth-full-stops", f"http://127\uff0e0\uff0e0\uff0e1:{PORT}{JOBS_PATH}"),
    ("ipv4-halfwidth-ideographic-stops", f"http://127\uff610\uff610\uff611:{PORT}{JOBS_PATH}"),
    ("ipv4-fullwidth-digits", f"http://\uff11\uff12\uff17.0.0.1:{PORT}{JOBS_PATH}"),
    ("ipv4-in-brackets", f"http://[127.0.0.1]:{PORT}{JOBS_PATH}"),
    ("ipv4-dotless-octal", f"http://017700000001:{PORT}{JOBS_PATH}"),
    ("ipv4-prefixed-label", f"http://evil.127.0.0.1:{PORT}{JOBS_PATH}"),
    (
        "localhost-circled-letters",
        f"http://\u24db\u24de\u24d2\u24d0\u24db\u24d7\u24de\u24e2\u24e3:{PORT}{JOBS_PATH}",
    ),
    (
        "localhost-fullwidth",
        f"http://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54:{PORT}{JOBS_PATH}",
    ),
    # IPv6 literals
    ("ipv6-loopback-not-allowlisted", f"http://[::1]:{PORT}{JOBS_PATH}"),
    ("ipv6-v4-mapped-loopback", f"http://[::ffff:127.0.0.1]:{PORT}{JOBS_PATH}"),
    ("ipv6-v4-mapped-hex", f"http://[::ffff:7f00:1]:{PORT}{JOBS_PATH}"),
    ("ipv6-zone-id-encoded", f"http://[::1%25eth0]:{PORT}{JOBS_PATH}"),
    ("ipv6-zone-id-raw", f"http://[::1%eth0]:{PORT}{JOBS_PATH}"),
    ("ipv6-unclosed-bracket", f"http://[::1:{PORT}{JOBS_PATH}"),
    ("ipv6-brackets-around-name", f"http://[evil.example.com]:{PORT}{JOBS_PATH}"),
    ("ipv6-brackets-around-host-and-port", f"http://[127.0.0.1:{PORT}]{JOBS_PATH}"),
    # ports
    ("port-twice", f"http://{HOST}:{PORT}{JOBS_PATH}"),
    ("port-then-dot-evil", f"http://{HOST}.evil.example.com{JOBS_PATH}"),
    ("port-out-of-range", f"http://127.0.0.1:99999{JOBS_PATH}"),
    ("port-not-a-number", f"http://127.0.0.1:http{JOBS_PATH}"),
    ("port-fullwidth-digits", f"http://127.0.0.1:\uff15\uff11\uff10\uff10{JOBS_PATH}"),
    ("port-default-not-allowlisted", f"http://127.0.0.1{JOBS_PATH}"),
    # host names that are not valid DNS names (LDH labels), and IDNA
    ("host-underscore", "https://ev_il.inference.ml.azure.com/jobs"),
    ("host-label-leading-hyphen", "https://-x.inference.ml.azure.com/jobs"),
    ("host-empty-label", "https://a..inference.ml.azure.com/jobs"),
    ("host-label-64-chars", f"https://{'a' * 64}.inference.ml.azure.com/jobs"),
    ("host-over-253-chars", f"https://{'a.' * 120}inference.ml.azure.com/jobs"),
    ("host-wildcard", "https://*.inference.ml.azure.com/jobs"),
    ("host-comma", "https://a,b.inference.ml.azure.com/jobs"),
    ("host-dollar", "https://a$b.inference.ml.azure.com/jobs"),
    ("host-punycode-invalid", "https://xn--.inference.ml.azure.com/jobs"),
    ("host-punycode-garbage", "https://xn--a-ecp.xn--zz.inference.ml.azure.com/jobs"),
    ("host-punycode-not-allowlisted", "https://xn--mnchen-3ya.inference.ml.azure.com/jobs"),
    ("host-unicode-not-allowlisted", "https://m\u00fcnchen.inference.ml.azure.com/jobs"),
    ("host-unicode-idna-disallowed", "https://a\u2024b.inference.ml.azure.com/jobs"),
    ("host-lone-surrogate", f"http://127.0.0.1\ud800:{PORT}{JOBS_PATH}"),
    # query and fragment
    ("query", f"{GOOD_ENDPOINT}?api-version=2024-04-01"),
    ("query-sas", f"{GOOD_ENDPOINT}?sv=2022-11-02&sig={SECRET}sig%3D"),
    ("query-empty", f"{GOOD_ENDPOINT}?"),
    ("fragment", f"{GOOD_ENDPOINT}#frag"),
    ("fragment-empty", f"{GOOD_ENDPOINT}#"),
    ("fragment-sas", f"{GOOD_ENDPOINT}#sig={SECRET}"),
    # schemes
    ("scheme-ftp", f"ftp://{HOST}{JOBS_PATH}"),
    ("scheme-file", "file:///endpoints/heart-classifier/jobs"),
    ("scheme-ws", f"ws://{HOST}{JOBS_PATH}"),
    ("scheme-javascript", "javascript:alert(1)//jobs"),
    ("scheme-data", "data:text/plain,/jobs"),
    ("scheme-missing", f"{HOST}{JOBS_PATH}"),
    ("scheme-relative", f"//{HOST}{JOBS_PATH}"),
    ("scheme-one-slash", f"http:/{HOST}{JOBS_PATH}"),
    ("scheme-no-slashes", f"http:{HOST}{JOBS_PATH}"),
    ("scheme-three-slashes", f"http:///{HOST}{JOBS_PATH}"),
    ("http-remote-host", "http://evil.example.com/jobs"),
    ("http-remote-azure-host", "http://x.inference.ml.azure.com/jobs"),
    ("http-mixed-case-remote", "hTtP://evil.example.com/jobs"),
    ("scheme-only", "https:"),
    # path
    ("path-trailing-slash", f"{GOOD_ENDPOINT}/"),
    ("path-not-jobs", f"http://{HOST}/endpoints/heart-classifier/job"),
    ("path-empty", f"http://{HOST}"),
    ("path-beyond-jobs", f"{GOOD_ENDPOINT}/x"),
    ("path-dotdot", f"http://{HOST}/endpoints/x/../heart-classifier/jobs"),
    ("path-dot", f"http://{HOST}/endpoints/./heart-classifier/jobs"),
    ("path-dotdot-before-jobs", f"{GOOD_ENDPOINT}/../jobs"),
    ("path-encoded-dotdot-lower", f"http://{HOST}/endpoints/x/%2e%2e/heart-classifier/jobs"),
    ("path-encoded-dotdot-upper", f"http://{HOST}/endpoints/x/%2E%2E/heart-classifier/jobs"),
    ("path-encoded-dotdot-half", f"http://{HOST}/endpoints/x/.%2e/heart-classifier/jobs"),
    ("path-encoded-dotdot-other-half", f"http://{HOST}/endpoints/x/%2e./heart-classifier/jobs"),
    ("path-encoded-dot", f"http://{HOST}/endpoints/%2e/heart-classifier/jobs"),
    ("path-encoded-dot-upper", f"http://{HOST}/endpoints/%2E/heart-classifier/jobs"),
    # length
    ("length-2049", f"http://{HOST}/endpoints/heart-classifier/{PAD}/jobs"),
    ("length-10000", f"http://{HOST}/endpoints/heart-classifier/{'a/' * 5000}jobs"),
    # the allowlist
    ("not-allowlisted-https", "https://evil.example.com/jobs"),
    ("not-allowlisted-azure-host", "https://x.inference.ml.azure.com/jobs"),
    ("not-allowlisted-bare-azure-suffix", "https://inference.ml.azure.com/jobs"),
    ("not-allowlisted-localhost", f"http://localhost:{PORT}{JOBS_PATH}"),
    ("not-allowlisted-other-loopback", f"http://127.0.0.2:{PORT}{JOBS_PATH}"),
    ("not-allowlisted-any-address", f"http://0.0.0.0:{PORT}{JOBS_PATH}"),
    ("not-allowlisted-allowed-host-as-label", "https://127.0.0.1.evil.example.com/jobs"),
    ("not-allowlisted-other-port", f"http://127.0.0.1:{PORT}0{JOBS_PATH}"),
    ("whitespace-only", "   "),
)

for _name, _uri in ENDPOINT_URIS:
    _param(
        f"endpoint_uri-{_name}", "endpoint_uri", _uri, pad_to=MAX_URI + 1 if PAD in _uri else None
    )


# ----------------------------------------------------------- endpoint_input_uri / output_uri

_LONG_INPUT = f"{DATASTORE}{'a' * (MAX_URI + 1 - len(DATASTORE) - 1)}/"
_LONG_OUTPUT = f"{DATASTORE}{'a' * (MAX_URI + 1 - len(DATASTORE) - 4)}.csv"
assert len(_LONG_INPUT) == len(_LONG_OUTPUT) == MAX_URI + 1

INPUT_URIS: tuple[tuple[str, str], ...] = (
    ("length-2049", _LONG_INPUT),
    ("length-20000", f"{DATASTORE}{'a/' * 10000}"),
    ("sas-blob-url", f"{BLOB}/data/heart/?sv=2022-11-02&ss=b&sig={SECRET}sig%3D"),
    ("sas-blob-url-sig-first", f"{BLOB}/data/heart.csv?sig={SECRET}&se=2030-01-01"),
    ("sas-on-datastore-path", f"{DATASTORE}heart.csv?sig={SECRET}"),
    ("sas-in-fragment", f"{BLOB}/data/heart.csv#sig={SECRET}"),
    ("query-empty", f"{BLOB}/data/heart.csv?"),
    ("userinfo-password", f"https://user:{SECRET}pw@acct.blob.core.windows.net/data/heart.csv"),
    ("dotdot-segment", f"{DATASTORE}heart/../secret/"),
    ("dot-segment", f"{DATASTORE}heart/./x/"),
    ("dotdot-leading", f"{DATASTORE}../secret/"),
    ("encoded-dotdot-lower", f"{DATASTORE}%2e%2e/secret/"),
    ("encoded-dotdot-upper", f"{DATASTORE}%2E%2E/secret/"),
    ("encoded-dotdot-half", f"{DATASTORE}.%2e/secret/"),
    ("encoded-dot", f"{DATASTORE}heart/%2E/x/"),
    ("encoded-slash", f"{DATASTORE}heart%2fsecret/"),
    ("encoded-slash-upper-traversal", f"{DATASTORE}a%2F..%2Fsecret/"),
    ("encoded-backslash", f"{DATASTORE}a%5c..%5csecret/"),
    ("backslash-traversal", f"{DATASTORE}a\\..\\b.csv"),
    ("backslash-in-segment", f"{DATASTORE}heart\\unlabeled/"),
    ("blob-url-dotdot", f"{BLOB}/data/../other/heart.csv"),
    ("blob-url-encoded-dotdot", f"{BLOB}/data/%2e%2e/other/heart.csv"),
    ("blob-url-encoded-slash", f"{BLOB}/data%2F..%2Fother/heart.csv"),
    ("blob-url-backslash", f"{BLOB}/data\\..\\other/heart.csv"),
    ("local-absolute-path", "/etc/passwd"),
    ("local-relative-path", "./data/heart/"),
    ("local-parent-path", "../data/heart/"),
    ("local-home-path", "~/data/heart/"),
    ("local-windows-path", "C:\\data\\heart.csv"),
    ("local-windows-forward-slashes", "C:/data/heart.csv"),
    ("local-unc-path", "\\\\server\\share\\heart.csv"),
    ("bare-relative-name", "heart-unlabeled/"),
    ("file-url", "file:///etc/passwd"),
    ("file-url-upper", "FILE:///etc/passwd"),
    ("file-url-one-slash", "file:/etc/passwd"),
    ("file-url-host", "file://server/share/heart.csv"),
    ("http-remote-storage", "http://acct.blob.core.windows.net/data/heart.csv"),
    ("non-storage-host", "https://evil.example.com/data/heart.csv"),
    ("unknown-scheme", "s3://bucket/heart.csv"),
    ("whitespace-only", "   "),
)
for _name, _uri in INPUT_URIS:
    _param(f"endpoint_input_uri-{_name}", "endpoint_input_uri", _uri)

OUTPUT_URIS: tuple[tuple[str, str], ...] = (
    ("length-2049", _LONG_OUTPUT),
    ("length-20000", f"{DATASTORE}{'a/' * 10000}x.csv"),
    ("sas-on-datastore-path", f"{DATASTORE}out.csv?sig={SECRET}"),
    ("sas-in-fragment", f"{DATASTORE}out.csv#sig={SECRET}"),
    ("sas-blob-url", f"{BLOB}/out/predictions.csv?sv=2022-11-02&sig={SECRET}"),
    ("dotdot-segment", f"{DATASTORE}out/../secret/predictions.csv"),
    ("dot-segment", f"{DATASTORE}out/./predictions.csv"),
    ("dotdot-leading", f"{DATASTORE}../predictions.csv"),
    ("encoded-dotdot-lower", f"{DATASTORE}out/%2e%2e/secret/predictions.csv"),
    ("encoded-dotdot-upper", f"{DATASTORE}out/%2E%2E/predictions.csv"),
    ("encoded-dotdot-half", f"{DATASTORE}out/%2e./predictions.csv"),
    ("encoded-dot", f"{DATASTORE}out/%2E/predictions.csv"),
    ("encoded-slash", f"{DATASTORE}out%2fsecret/predictions.csv"),
    ("encoded-slash-traversal", f"{DATASTORE}out%2F..%2Fsecret%2Fpredictions.csv"),
    ("encoded-backslash", f"{DATASTORE}out%5c..%5cpredictions.csv"),
    ("backslash-traversal", f"{DATASTORE}a\\..\\b.csv"),
    ("backslash-in-file-name", f"{DATASTORE}out\\predictions.csv"),
    ("folder-not-file", f"{DATASTORE}out/"),
    ("empty-segment", f"{DATASTORE}out//predictions.csv"),
    ("local-absolute-path", "/tmp/predictions.csv"),
    ("local-windows-path", "C:\\out\\predictions.csv"),
    ("file-url", "file:///tmp/predictions.csv"),
    ("file-url-upper", "FILE:///tmp/predictions.csv"),
    ("https-blob-url", f"{BLOB}/out/predictions.csv"),
    ("http-loopback-url", f"http://127.0.0.1:{PORT}/out/predictions.csv"),
)
for _name, _uri in OUTPUT_URIS:
    _param(f"endpoint_output_uri-{_name}", "endpoint_output_uri", _uri)

# --------------------------------------------------------------------- other string fields

for _field, _long in (
    ("deployment_name", "d"),
    ("input_name", "i"),
    ("output_name", "o"),
    ("output_file_name", "p"),
    ("endpoint_input_type", "UriFolder"),
):
    for _size in (5000, 50000):
        _param(f"{_field}-length-{_size}", _field, (_long * _size)[:_size])
_param("deployment_name-length-33", "deployment_name", "d" * 33)
_param("input_name-length-256", "input_name", "i" * 256)
_param("output_name-length-256", "output_name", "o" * 256)
_param("deployment_name-header-injection", "deployment_name", "blue\r\nX-Injected: 1")
_param("deployment_name-leading-digit", "deployment_name", "1blue")
_param("deployment_name-slash", "deployment_name", "blue/../green")
_param("input_name-dot", "input_name", "input.data")
_param("output_name-dash", "output_name", "sc-ore")
_param("output_file_name-dotdot", "output_file_name", "../predictions.csv")
_param("output_file_name-slash", "output_file_name", "out/predictions.csv")
_param("output_file_name-backslash", "output_file_name", "out\\predictions.csv")
_param("output_file_name-bare-dotdot", "output_file_name", "..")
_param("output_file_name-rlo-extension-spoof", "output_file_name", "pred\u202evsc.exe")
_param("endpoint_input_type-wrong-case", "endpoint_input_type", "urifolder")
_param("endpoint_input_type-mltable", "endpoint_input_type", "MLTable")
_param("endpoint_input_type-fullwidth", "endpoint_input_type", "\uff35riFolder")

# ---------------------------------------------------------------------------- integers

INT_FIELDS: dict[str, tuple[int, int]] = {  # field -> (one below the minimum, one above max)
    "poll_interval": (0, 3601),
    "timeout": (0, 2592001),
    "mini_batch_size": (0, 2**31),
    "instance_count": (0, 2**31),
    "error_threshold": (-2, 2**31),
    "max_retries": (-1, 2**31),
    "retry_timeout": (0, 2**31),
}
INT_BAD_VALUES: tuple[tuple[str, object], ...] = (
    ("word", "soon"),
    ("float-fraction", 1.5),
    ("negative-float-fraction", -2.5),
    ("float-string", "10.5"),
    ("tiny-float", 1e-300),
    ("true", True),
    ("false", False),
    ("empty-list", []),
    ("list", [10]),
    ("empty-object", {}),
    ("object", {"value": 10}),
    ("huge-digit-string", "9" * 5000),
    ("huge-negative-digit-string", "-" + "9" * 5000),
    ("huge-number-401-digits", 10**400),
    ("float-1e20", 1e20),
    ("hex-string", "0x10"),
    ("exponent-string", "1e3"),
    ("underscore-string", "1_0"),
    ("arabic-indic-digits", "\u0661\u0660"),
    ("fullwidth-digits", "\uff11\uff10"),
    ("nul-inside", "1\x000"),
    ("rlo-prefix", "\u202e10"),
    ("zwsp-suffix", "10\u200b"),
)
for _field, (_below, _above) in INT_FIELDS.items():
    for _name, _int_value in INT_BAD_VALUES:
        _param(f"{_field}-{_name}", _field, _int_value)
    _param(f"{_field}-below-minimum", _field, _below)
    _param(f"{_field}-above-maximum", _field, _above)
    _param(f"{_field}-above-maximum-as-string", _field, str(_above))
    # JSON that Python's parser accepts but RFC 8259 does not; either field is a fair answer.
    _raw(f"{_field}-nan-literal", _with_base(_field, "NaN"), fields=(_field, "body"))
    _raw(f"{_field}-infinity-literal", _with_base(_field, "-Infinity"), fields=(_field, "body"))
    # int() refuses more than 4300 digits, so a parser may fail on the body as a whole.
    _raw(f"{_field}-5000-digit-literal", _with_base(_field, "9" * 5000), fields=(_field, "body"))
_add(
    BadInput(
        id="timeout-below-poll-interval-both-given",
        body=_encode({**BASE_BODY, "poll_interval": 60, "timeout": 30}),
        fields=("timeout",),
    )
)

# ---------------------------------------------------------------------- unknown parameters

for _name, _key, _fields in (
    ("typo", "endpont_uri", ("endpont_uri",)),
    ("upper-case", "ENDPOINT_URI", ("ENDPOINT_URI",)),
    ("mixed-case", "Endpoint_Input_Uri", ("Endpoint_Input_Uri",)),
    ("adf-tenant-id", "tenant_id", ("tenant_id",)),
    ("adf-client-secret", "client_secret", ("client_secret",)),
    ("proto", "__proto__", ("__proto__",)),
    ("nested-properties", "properties", ("properties",)),
    ("empty-key", "", (ANY_UNKNOWN,)),
    ("leading-space", " poll_interval", (ANY_UNKNOWN,)),
    ("length-1000", "k" * 1000, (ANY_UNKNOWN,)),
    ("nul", "poll_interval\x00", (ANY_UNKNOWN,)),
    ("newline", "evil\nkey", (ANY_UNKNOWN,)),
    ("esc-sequence", "\x1b[31mred", (ANY_UNKNOWN,)),
    ("c1-csi", "\x9b31mred", (ANY_UNKNOWN,)),
    ("rlo", "\u202eyek_live", (ANY_UNKNOWN,)),
    ("zwsp", "poll\u200b_interval", (ANY_UNKNOWN,)),
    ("bom", "\ufeffpoll_interval", (ANY_UNKNOWN,)),
    ("lri", "\u2066evil", (ANY_UNKNOWN,)),
):
    _add(
        BadInput(
            id=f"unknown-parameter-{_name}",
            body=_encode({**BASE_BODY, _key: f"{SECRET}-value"}),
            fields=_fields,
        )
    )

# ------------------------------------------------------------------------------- the body

_VALID = _encode(BASE_BODY)
for _name, _bytes in (
    ("empty", b""),
    ("whitespace-only", b"  \n "),
    ("plain-text", b"hello"),
    ("unclosed-object", b'{"poll_interval": 1'),
    ("lone-closing-brace", b"}"),
    ("single-quotes", b"{'endpoint_input_uri': 'x'}"),
    ("trailing-garbage", _VALID + b"x"),
    ("two-objects", _VALID + _VALID),
    ("trailing-comma", b'{"poll_interval": 1,}'),
    ("comment", b'{"poll_interval": 1 /* c */}'),
    ("xml", b"<run><poll_interval>1</poll_interval></run>"),
    ("form-encoded", b"endpoint_input_uri=x&poll_interval=1"),
    ("nul-byte", b"\x00"),
    ("raw-control-char-in-string", b'{"endpoint_input_uri": "a\x01b"}'),
    ("json-array-empty", b"[]"),
    ("json-array-of-request", b"[" + _VALID + b"]"),
    ("json-string", b'"endpoint_input_uri"'),
    ("json-number", b"1"),
    ("json-float", b"-1.5"),
    ("json-null", b"null"),
    ("json-true", b"true"),
    ("json-false", b"false"),
    ("json-infinity", b"Infinity"),
    ("invalid-utf8-ff", b'{"endpoint_input_uri": "\xff"}'),
    ("invalid-utf8-truncated-sequence", b'{"deployment_name": "\xe2\x80"}'),
    ("invalid-utf8-bad-continuation", b'{"deployment_name": "\xc3\x28"}'),
    ("invalid-utf8-overlong-slash", b'{"endpoint_input_uri": "a\xc0\xafb"}'),
    ("invalid-utf8-encoded-surrogate", b'{"deployment_name": "\xed\xa0\x80"}'),
    ("invalid-utf8-latin1", b'{"deployment_name": "caf\xe9"}'),
    ("utf8-bom-prefix", b"\xef\xbb\xbf" + _VALID),
    ("utf16-le", _VALID.decode().encode("utf-16-le")),
    ("utf16-with-bom", _VALID.decode().encode("utf-16")),
    ("utf32", _VALID.decode().encode("utf-32")),
    ("nested-1000-under-endpoint_uri", b'{"endpoint_uri": ' + b"[" * 1000 + b"]" * 1000 + b"}"),
    ("nested-1000-arrays", b"[" * 1000 + b"]" * 1000),
    ("nested-1000-objects", b'{"a": ' * 1000 + b"1" + b"}" * 1000),
    ("nested-9000-objects-under-unknown-key", b'{"x": ' + b'{"a": ' * 9000 + b"1" + b"}" * 9001),
    ("nested-30000-arrays", b"[" * 30000 + b"]" * 30000),
    ("nested-30000-unclosed", b"[" * 30000),
):
    _raw(f"body-{_name}", _bytes)

# 64 KiB is allowed; one byte more is 413. A body of exactly 64 KiB is judged on its content.
_soon = _with_base("poll_interval", '"soon"')
_exact = _soon[:-1] + b" " * (MAX_BODY - len(_soon)) + b"}"
assert len(_exact) == MAX_BODY
_raw("body-exactly-64KiB-is-judged-on-content", _exact, fields=("poll_interval",))
for _name, _bytes in (
    ("65537-bytes-of-padding", _VALID[:-1] + b" " * (MAX_BODY + 1 - len(_VALID)) + b"}"),
    ("1MiB", _VALID[:-1] + b" " * (2**20 - len(_VALID)) + b"}"),
    ("long-string-value", _encode({**BASE_BODY, "deployment_name": "d" * 70000})),
    (
        "long-sas-value",
        _encode({**BASE_BODY, "endpoint_input_uri": f"{BLOB}/d/x.csv?sig={SECRET}" * 3000}),
    ),
    ("nested-100000-arrays", b"[" * 100000 + b"]" * 100000),
    ("not-json-over-limit", b"x" * (MAX_BODY + 1)),
):
    _raw(f"body-too-large-{_name}", _bytes, status=413, code="PayloadTooLarge")

# ------------------------------------------------------------------ Idempotency-Key header

for _name, _header_value in (
    ("length-129", b"k" * 129),
    ("length-5000", b"k" * 5000),
    ("empty", b""),
    ("space-inside", b"my key"),
    ("slash", b"a/b"),
    ("percent-encoded", b"a%2Fb"),
    ("quotes", b'"key"'),
    ("semicolon", b"a;b"),
    ("comma", b"a,b"),
    ("nul", b"key\x00x"),
    ("esc", b"key\x1b[0m"),
    ("del", b"key\x7f"),
    ("tab-inside", b"a\tb"),
    ("utf8-cyrillic", "\u043a\u043b\u044e\u0447".encode()),
    ("utf8-rlo", "\u202ekey".encode()),
    ("utf8-zwsp", "key\u200b".encode()),
    ("utf8-bom", "\ufeffkey".encode()),
    ("latin1-byte", b"caf\xe9"),
    ("sas-like", f"sig={SECRET}".encode()),
):
    _add(
        BadInput(
            id=f"idempotency-key-{_name}",
            body=_VALID,
            headers=(("Idempotency-Key", _header_value),),
            fields=("Idempotency-Key",),
        )
    )

# -------------------------------------------------------- GET /runs/{id}, POST /runs/{id}/cancel

RUN_IDS: tuple[tuple[str, str], ...] = (  # already percent-encoded for the request target
    ("length-257", "a" * 257),
    ("length-5000", "a" * 5000),
    ("space", "a%20b"),
    ("nul", "a%00b"),
    ("trailing-lf", "abc%0A"),
    ("trailing-crlf", "abc%0D%0A"),
    ("tab", "a%09b"),
    ("esc", "a%1B%5B31m"),
    ("del", "a%7F"),
    ("c1-nel", "a%C2%85"),
    ("rlo", "%E2%80%AEabc"),
    ("lri", "%E2%81%A6abc"),
    ("zwsp", "abc%E2%80%8B"),
    ("bom", "%EF%BB%BFabc"),
    ("encoded-slash", "a%2Fb"),
    ("encoded-slash-traversal", "..%2F..%2Fadmin"),
    ("encoded-dotdot", "%2e%2e"),
    ("encoded-dotdot-upper", "%2E%2E"),
    ("encoded-dot", "%2E"),
    ("encoded-backslash", "a%5Cb"),
    ("encoded-percent", "a%25b"),
    ("encoded-question-mark", "a%3Fb"),
    ("encoded-hash", "a%23b"),
    ("invalid-utf8", "%FF%FE"),
    ("non-ascii", "r%C3%BCn"),
    ("html", "%3Cscript%3E"),
    ("quote", "a%22b"),
    ("sas-like", f"sig%3D{SECRET}"),
)
for _name, _encoded in RUN_IDS:
    for _method, _suffix, _label in (("GET", "", "get-run"), ("POST", "/cancel", "cancel-run")):
        _add(
            BadInput(
                id=f"{_label}-{_name}",
                method=_method,
                path=f"/api/runs/{_encoded}{_suffix}",
                fields=("instance_id",),
                status=(400, 404),
            )
        )

BAD_INPUTS: tuple[BadInput, ...] = tuple(CASES)
