"""URI forms (every accepted and rejected form) and the host allowlist."""

import pytest

from batch_endpoint import HostNotAllowedError, check_host, host_allowed, is_loopback
from batch_runs import endpoint_uri_problem, input_uri_problem, load_settings, output_uri_problem

SUB = "/subscriptions/0000-11/resourceGroups/rg-1/providers/Microsoft.MachineLearningServices"
ACCEPTED_INPUTS = [
    "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/",
    "azureml://datastores/workspaceblobstore/paths/heart/heart.csv",
    "azureml://subscriptions/0000-11/resourcegroups/rg-1/workspaces/ws/datastores/ds/paths/a/b/",
    f"{SUB}/workspaces/ws/datastores/ds/paths/data/folder/",
    f"azureml:{SUB}/workspaces/ws/datastores/ds/paths/data/folder/",
    f"{SUB}/workspaces/ws/data/heart-data/versions/3",
    "azureml://locations/westeurope/workspaces/ws-guid/data/heart/versions/labels/latest",
    "azureml://locations/westeurope/workspaces/ws-guid/data/heart/versions/2",
    "https://azuremlexampledata.blob.core.windows.net/data/heart-disease-uci/data",
    "https://account1.dfs.core.windows.net/fs/dir/",
    "https://account1.blob.core.chinacloudapi.cn/c/d/",
    "https://account1.blob.core.usgovcloudapi.net/c/d/",
    "http://127.0.0.1:10000/devstoreaccount1/azureml-blobstore/heart-unlabeled/",
    "https://localhost:10000/devstoreaccount1/c/d",
]


@pytest.mark.parametrize("uri", ACCEPTED_INPUTS)
def test_accepted_input_forms(uri: str) -> None:
    assert input_uri_problem(uri, "UriFolder") is None


REJECTED_INPUTS = [
    ("https://acct.blob.core.windows.net/c/d?sv=2024&sig=SECRET", "SAS token or query string"),
    ("azureml://datastores/ds/paths/a?x=1", "SAS token or query string"),
    ("http://127.0.0.1:10000/devstoreaccount1/c/d#frag", "SAS token or query string"),
    ("/tmp/data/", "local paths"),
    ("./data", "local paths"),
    ("C:\\data\\x.csv", "local paths"),
    ("file:///tmp/data", "local paths"),
    ("http://acct.blob.core.windows.net/c/d", "https"),
    ("https://example.com/c/d", "Blob/ADLS"),
    ("https://acct.blob.core.windows.net.evil.com/c/d", "Blob/ADLS"),
    ("https://acct.blob.core.windows.net/", "container"),
    ("https://user:pw@acct.blob.core.windows.net/c/d", "user info"),
    ("abfss://fs@acct.dfs.core.windows.net/dir", "must be one of"),
    ("azureml:heart:1", "must be one of"),
    ("azureml://datastores/ds/paths/", "must be one of"),
    ("azureml://datastores/ds/paths/a/../b", "'..'"),
    ("", "empty"),
    (" azureml://datastores/ds/paths/a", "spaces"),
]


@pytest.mark.parametrize(("uri", "fragment"), REJECTED_INPUTS)
def test_rejected_input_forms(uri: str, fragment: str) -> None:
    problem = input_uri_problem(uri, "UriFolder")

    assert problem is not None
    assert fragment in problem
    assert "SECRET" not in problem


def test_urifile_must_not_end_in_slash() -> None:
    problem = input_uri_problem("azureml://datastores/ds/paths/folder/", "UriFile")

    assert problem is not None
    assert "UriFile" in problem
    assert input_uri_problem("azureml://datastores/ds/paths/folder/a.csv", "UriFile") is None


@pytest.mark.parametrize(
    "uri",
    [
        "https://ep.westeurope.inference.ml.azure.com/jobs",
        "http://127.0.0.1:5100/endpoints/heart-classifier/jobs",
        "http://localhost:5100/jobs",
        "http://[::1]:5100/jobs",
        "https://host.example.com/mferp/subscriptions/s/batchEndpoints/e/jobs",
    ],
)
def test_valid_endpoint_uris(uri: str) -> None:
    assert endpoint_uri_problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("http://ep.westeurope.inference.ml.azure.com/jobs", "https"),
        ("https://ep.westeurope.inference.ml.azure.com/score", "/jobs"),
        ("https://ep.westeurope.inference.ml.azure.com/jobs/", "/jobs"),
        ("https://ep.westeurope.inference.ml.azure.com/jobs?code=SECRET", "query string"),
        ("https://ep.westeurope.inference.ml.azure.com/jobs#x", "query string"),
        ("https://u:SECRET@ep.inference.ml.azure.com/jobs", "user info"),
        ("ftp://ep.inference.ml.azure.com/jobs", "https"),
        ("ep.inference.ml.azure.com/jobs", "https"),
        ("https://ep.inference.ml.azure.com:99999/jobs", "https"),
        ("https://ep.inference.ml.azure.com/a/../jobs", "'..'"),
        ("", "https"),
    ],
)
def test_invalid_endpoint_uris(uri: str, fragment: str) -> None:
    problem = endpoint_uri_problem(uri)

    assert problem is not None
    assert fragment in problem
    assert "SECRET" not in problem


@pytest.mark.parametrize(
    "uri",
    [
        "azureml://datastores/workspaceblobstore/paths/batch/predictions.csv",
        "azureml://datastores/ws/paths/out/predictions",
        "azureml://subscriptions/s/resourcegroups/rg/workspaces/ws/datastores/ds/paths/o/p.csv",
    ],
)
def test_valid_output_uris(uri: str) -> None:
    assert output_uri_problem(uri) is None


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("azureml://datastores/ws/paths/out/", "file"),
        ("https://acct.blob.core.windows.net/c/p.csv", "azureml://datastores"),
        ("azureml://datastores/ws/paths/a/p.csv?sig=SECRET", "SAS"),
        ("azureml://datastores/ws/paths/a//p.csv", "empty path segments"),
        ("azureml://datastores/ws/paths/../p.csv", "'..'"),
        ("/tmp/p.csv", "azureml://datastores"),
        ("", "empty"),
    ],
)
def test_invalid_output_uris(uri: str, fragment: str) -> None:
    problem = output_uri_problem(uri)

    assert problem is not None
    assert fragment in problem
    assert "SECRET" not in problem


@pytest.mark.parametrize(
    ("host", "port", "patterns", "expected"),
    [
        ("ep.westeurope.inference.ml.azure.com", 443, ["*.inference.ml.azure.com"], True),
        ("a.b.inference.ml.azure.com", 443, ["*.inference.ml.azure.com"], True),
        ("EP.WestEurope.Inference.ML.Azure.com", 443, ["*.inference.ml.azure.com"], True),
        ("inference.ml.azure.com", 443, ["*.inference.ml.azure.com"], False),
        ("evilinference.ml.azure.com", 443, ["*.inference.ml.azure.com"], False),
        ("x.inference.ml.azure.com.evil.com", 443, ["*.inference.ml.azure.com"], False),
        ("exact.example.com", 443, ["exact.example.com"], True),
        ("sub.exact.example.com", 443, ["exact.example.com"], False),
        ("127.0.0.1", 5100, ["127.0.0.1:5100"], True),
        ("127.0.0.1", 5101, ["127.0.0.1:5100"], False),
        ("127.0.0.1", None, ["127.0.0.1:5100"], False),
        ("127.0.0.1", 5101, ["127.0.0.1"], True),
        ("::1", 5100, ["[::1]:5100"], True),
        ("[::1]", 5100, ["[::1]"], True),
        ("anything.com", 443, ["*"], False),
        ("anything.com", 443, [], False),
        ("", 443, ["*.com.x"], False),
    ],
)
def test_host_patterns(host: str, port: int | None, patterns: list[str], expected: bool) -> None:
    assert host_allowed(host, port, patterns) is expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("LOCALHOST", True),
        ("10.0.0.1", False),
        ("localhost.evil.com", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_check_host_uses_allowlist_and_auth_mode() -> None:
    azure = load_settings({})
    offline = load_settings(
        {
            "BATCH_ENDPOINT_AUTH": "none",
            "BATCH_ENDPOINT_ALLOWED_HOSTS": "127.0.0.1:5100,*.example.com",
        }
    )

    def check(uri: str, settings) -> None:
        check_host(uri, settings.allowed_hosts, settings.auth_mode)

    check("https://ep.westeurope.inference.ml.azure.com/jobs", azure)
    check("http://127.0.0.1:5100/endpoints/e/jobs", offline)
    with pytest.raises(HostNotAllowedError, match="BATCH_ENDPOINT_ALLOWED_HOSTS") as refused:
        check("https://collector.evil.com/jobs", azure)
    assert "collector.evil.com" in str(refused.value)
    assert refused.value.retryable is False
    with pytest.raises(HostNotAllowedError, match="loopback"):
        check("https://ep.example.com/jobs", offline)
    with pytest.raises(HostNotAllowedError):
        check("http://127.0.0.1:5999/jobs", offline)
