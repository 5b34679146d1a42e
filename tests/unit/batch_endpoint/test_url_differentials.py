"""The endpoint URL is read once, and every reader agrees with that reading.

The attack pass sent the app's token to 127.0.0.1 with
``https://127.0.0.1\\.x.inference.ml.azure.com/jobs``: ``urlsplit`` read the host as
``127.0.0.1\\.x.inference.ml.azure.com`` (which passed the ``*.`` suffix rule) while urllib3 ended
the host at the backslash. The vectors below are that one and its family; the properties show
that for every URL the validator accepts, the readers that requests uses (``urlsplit`` to pick
the connection, urllib3's ``parse_url`` to prepare the URL) read the same host and port, and that
host passes the allowlist.
"""

from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from urllib3.util import parse_url

from batch_endpoint import ServiceUrl, host_allowed
from batch_endpoint._transport import connection_target
from batch_runs import InvalidRunRequest, endpoint_uri_problem, load_settings, parse_run_request

ALLOWED = ("*.inference.ml.azure.com",)
SETTINGS = load_settings({"BATCH_ENDPOINT_ALLOWED_HOSTS": ",".join(ALLOWED)})
GOOD = "https://ep.westeurope.inference.ml.azure.com/jobs"
SUFFIX = ".x.inference.ml.azure.com"

# (id, URL): every one must be refused with a 400 that names endpoint_uri. Each would pass a
# suffix check on some reader while another reader connects elsewhere, or is ambiguous.
DIFFERENTIAL_VECTORS: list[tuple[str, str]] = [
    ("backslash-ends-host-for-urllib3", f"https://127.0.0.1\\{SUFFIX}/jobs"),
    ("backslash-before-path", f"https://127.0.0.1\\@ep{SUFFIX}/jobs"),
    ("backslash-scheme-separator", f"https:\\\\127.0.0.1/ep{SUFFIX}/jobs"),
    ("userinfo-allowed-host-before-at", f"https://ep{SUFFIX}@127.0.0.1/jobs"),
    ("userinfo-with-password", f"https://ep{SUFFIX}:pw@127.0.0.1/jobs"),
    ("at-in-path-looks-like-userinfo", f"https://127.0.0.1/@ep{SUFFIX}/jobs"),
    ("fragment-hides-real-host", f"https://127.0.0.1#@ep{SUFFIX}/jobs"),
    ("query-hides-real-host", f"https://127.0.0.1?@ep{SUFFIX}/jobs"),
    ("percent-encoded-slash-in-host", f"https://127.0.0.1%2f{SUFFIX[1:]}/jobs"),
    ("percent-encoded-dot-in-host", f"https://ep%2e{SUFFIX[1:]}/jobs"),
    ("percent-encoded-at-in-host", f"https://127.0.0.1%40ep{SUFFIX}/jobs"),
    ("tab-inside-host", f"https://127.0.0.1\t{SUFFIX}/jobs"),
    ("newline-inside-host", f"https://127.0.0.1\n{SUFFIX}/jobs"),
    ("carriage-return-inside-host", f"https://ep\r{SUFFIX}/jobs"),
    ("space-inside-host", f"https://127.0.0.1 {SUFFIX}/jobs"),
    ("nul-inside-host", f"https://127.0.0.1\x00{SUFFIX}/jobs"),
    ("esc-inside-host", f"https://ep\x1b{SUFFIX}/jobs"),
    ("zero-width-space-in-host", f"https://ep\u200b{SUFFIX}/jobs"),
    ("right-to-left-override-in-host", f"https://ep\u202e{SUFFIX}/jobs"),
    ("bom-in-host", f"https://\ufeffep{SUFFIX}/jobs"),
    ("ideographic-full-stop-as-dot", "https://ep\u3002x\u3002inference.ml.azure.com/jobs"),
    ("fullwidth-full-stop-as-dot", "https://ep\uff0ex.inference.ml.azure.com/jobs"),
    ("unicode-host-not-idna-encoded", f"https://b\u00fccher{SUFFIX}/jobs"),
    ("trailing-dot-host", f"https://ep{SUFFIX}./jobs"),
    ("trailing-dot-ip", "https://127.0.0.1./jobs"),
    ("ipv4-as-decimal-integer", "https://2130706433/jobs"),
    ("ipv4-as-hex", "https://0x7f.0.0.1/jobs"),
    ("ipv4-short-hex", "https://0x7f.1/jobs"),
    ("ipv4-octal", "https://0177.0.0.1/jobs"),
    ("ipv4-short-form", "https://127.1/jobs"),
    ("ipv6-zone-id", "https://[::1%25eth0]/jobs"),
    ("ipv6-unclosed-bracket", "https://[::1/jobs"),
    ("two-colons-unbracketed", "https://::1:443/jobs"),
    ("port-with-leading-zero", f"https://ep{SUFFIX}:0443/jobs"),
    ("port-out-of-range", f"https://ep{SUFFIX}:65536/jobs"),
    ("port-not-numeric", f"https://ep{SUFFIX}:https/jobs"),
    ("empty-port", f"https://ep{SUFFIX}:/jobs"),
    ("label-starts-with-hyphen", f"https://-ep{SUFFIX}/jobs"),
    ("underscore-label", f"https://e_p{SUFFIX}/jobs"),
    ("invalid-punycode-label", f"https://xn--{SUFFIX}/jobs"),
    ("empty-label", "https://ep..x.inference.ml.azure.com/jobs"),
    ("scheme-relative", f"//ep{SUFFIX}/jobs"),
    ("no-scheme", f"ep{SUFFIX}/jobs"),
    ("single-slash-after-scheme", f"https:/ep{SUFFIX}/jobs"),
    ("three-slashes-after-scheme", f"https:///ep{SUFFIX}/jobs"),
    ("http-to-remote-host", f"http://ep{SUFFIX}/jobs"),
    ("javascript-scheme", "javascript://ep.x.inference.ml.azure.com/jobs"),
    ("dot-dot-path-segment", f"https://ep{SUFFIX}/a/../jobs"),
    ("encoded-dot-dot-path", f"https://ep{SUFFIX}/a/%2e%2e/jobs"),
    ("double-slash-path", f"https://ep{SUFFIX}//jobs"),
    ("space-before-path", f"https://ep{SUFFIX} /jobs"),
    ("overlong-url", f"https://ep{SUFFIX}/" + "a" * 2100 + "/jobs"),
]


@pytest.mark.parametrize(
    ("url"), [v for _, v in DIFFERENTIAL_VECTORS], ids=[k for k, _ in DIFFERENTIAL_VECTORS]
)
def test_differential_vector_is_refused_naming_endpoint_uri(url: str) -> None:
    assert endpoint_uri_problem(url) is not None
    with pytest.raises(InvalidRunRequest) as caught:
        parse_run_request(
            {"endpoint_uri": url, "endpoint_input_uri": "azureml://datastores/ds/paths/in/"},
            SETTINGS,
            run_id="run-1",
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
    fields = {d.field for d in caught.value.details}
    assert fields == {"endpoint_uri"}
    message = caught.value.details[0].message
    assert message.startswith("endpoint_uri ")
    assert message.isascii()
    assert message.isprintable()


def test_at_least_twenty_named_vectors() -> None:
    assert len(DIFFERENTIAL_VECTORS) >= 20
    assert len({k for k, _ in DIFFERENTIAL_VECTORS}) == len(DIFFERENTIAL_VECTORS)


# ------------------------------------------------------------------ properties

# Characters that readers disagree on, plus the pieces of a real host name.
_TRICKY = st.sampled_from(
    [
        "\\",
        "@",
        "%",
        "%2f",
        "%2e",
        "%40",
        ".",
        ":",
        "[",
        "]",
        "/",
        "?",
        "#",
        "\t",
        "\n",
        " ",
        "\x00",
        "\u200b",
        "\u202e",
        "\u3002",
        "\uff0e",
        "\u00fc",
        "-",
        "_",
        "0x",
        "0",
        "1",
        "127",
        "a",
        "ep",
        "xn--",
        SUFFIX,
        "inference.ml.azure.com",
        "443",
        "65536",
        "::1",
        "jobs",
    ]
)
_HOST_TEXT = st.lists(_TRICKY, min_size=1, max_size=8).map("".join)
_URL_TEXT = st.builds(
    lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
    st.sampled_from(["https", "HTTPS", "http", "hTtPs", "https:", "https:\\"]),
    _HOST_TEXT,
    st.sampled_from(["", ":443", ":8443", ":0", ":", ":99999"]),
    st.sampled_from(["/jobs", "/a/jobs", "\\jobs", "/%2e/jobs", "", "/jobs?x=1", "/jobs#f"]),
)


def _transport_reading(url: str) -> tuple[str, str, int | None]:
    """Where requests really connects: prepare the URL, then read it as the adapter does."""
    prepared = requests.Request("GET", url).prepare()
    target = connection_target(prepared.url)
    assert target is not None
    return target


@pytest.mark.slow
@settings(
    max_examples=600, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(_URL_TEXT)
@example(f"https://127.0.0.1\\{SUFFIX}/jobs")
@example(f"https://ep{SUFFIX}/jobs")
@example("https://[::1]:8443/jobs")
def test_every_accepted_url_is_read_the_same_by_every_reader(text: str) -> None:
    try:
        url = ServiceUrl.parse(text, path_suffix="/jobs")
    except ValueError:
        return  # refused: nothing to connect to
    split = urlsplit(text)
    u3 = parse_url(text)
    assert (split.hostname or "").lower() == url.host or url.host.count(":") > 1
    assert (u3.host or "").lower().strip("[]") in (url.host, f"{url.host}")
    assert split.port == url.port == u3.port
    scheme, host, port = _transport_reading(url.url)
    assert (scheme, port) == (url.scheme, url.effective_port)
    assert host == url.host or host.strip("[]") == url.host
    # Whatever the allowlist says of the validated host, it says of the connection's host.
    assert host_allowed(host, port, ALLOWED) == host_allowed(url.host, url.effective_port, ALLOWED)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, derandomize=True)
@given(_URL_TEXT)
def test_no_accepted_url_reaches_a_host_outside_the_allowlist(text: str) -> None:
    problem = endpoint_uri_problem(text)
    if problem is not None:
        return
    url = ServiceUrl.parse(text, path_suffix="/jobs")
    if not host_allowed(url.host, url.effective_port, ALLOWED):
        return  # the allowlist refuses it before any token is asked for
    scheme, host, port = _transport_reading(url.url)
    assert scheme == "https"
    assert host.endswith(".inference.ml.azure.com")
    assert host_allowed(host, port, ALLOWED)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(min_size=1, max_size=80))
def test_arbitrary_text_never_crashes_the_validator(text: str) -> None:
    problem = endpoint_uri_problem(text)
    assert problem is None or (problem.isascii() and problem.isprintable())


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (
            "HTTPS://EP.WestEurope.Inference.ML.Azure.com/jobs",
            "https://ep.westeurope.inference.ml.azure.com/jobs",
        ),
        ("http://[0:0::1]:5100/jobs", "http://[::1]:5100/jobs"),
        ("http://localhost:5100/endpoints/e/jobs", "http://localhost:5100/endpoints/e/jobs"),
        (
            "https://xn--bcher-kva.inference.ml.azure.com/jobs",
            "https://xn--bcher-kva.inference.ml.azure.com/jobs",
        ),
    ],
)
def test_accepted_urls_are_rebuilt_from_their_parts(text: str, canonical: str) -> None:
    url = ServiceUrl.parse(text, path_suffix="/jobs")
    assert url.url == canonical
    assert ServiceUrl.parse(url.url, path_suffix="/jobs") == url


def test_run_request_keeps_the_canonical_endpoint() -> None:
    request = parse_run_request(
        {
            "endpoint_uri": "HTTPS://EP.westeurope.inference.ml.azure.com/jobs",
            "endpoint_input_uri": "azureml://datastores/ds/paths/in/",
        },
        SETTINGS,
        run_id="run-1",
        now=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert request.endpoint_uri == GOOD
