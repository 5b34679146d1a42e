"""notify_url / copy_output_to: URL rules, allowlists and settings; bad input is 400 by field."""

from datetime import UTC, datetime
from typing import Any

import pytest

from batch_runs import (
    InvalidRunRequest,
    RunRequest,
    Settings,
    SettingsError,
    load_settings,
    parse_run_request,
)
from batch_runs.handoff import copy_url_problem, parse_blob_url, source_blob

NOW = datetime(2026, 11, 25, 6, 30, 0, tzinfo=UTC)
ENDPOINT = "https://heart.westeurope.inference.ml.azure.com/jobs"
INPUT = "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/"
SECRET = "s3cret-signing-key-0123456789"
ON = load_settings(
    {
        "NOTIFY_ALLOWED_HOSTS": "hooks.example.com,127.0.0.1:8123",
        "NOTIFY_SIGNING_SECRET": SECRET,
        "COPY_ALLOWED_HOSTS": "*.blob.core.windows.net,*.dfs.core.windows.net,127.0.0.1:10000",
        "OUTPUT_DATASTORE_URLS": (
            "workspaceblobstore=https://wsacct.blob.core.windows.net/azureml-blobstore-1"
        ),
    }
)


def parse(body: dict[str, Any], settings: Settings = ON) -> RunRequest:
    return parse_run_request(
        {"endpoint_uri": ENDPOINT, "endpoint_input_uri": INPUT, **body},
        settings,
        run_id="run-1",
        now=NOW,
    )


def problem_fields(body: dict[str, Any], settings: Settings = ON) -> dict[str, str]:
    with pytest.raises(InvalidRunRequest) as info:
        parse(body, settings)
    return {d.field: d.message for d in info.value.details}


def test_valid_urls_are_kept_and_survive_the_durable_round_trip() -> None:
    request = parse(
        {
            "notify_url": "https://hooks.example.com/batch/done",
            "copy_output_to": "https://dest01.dfs.core.windows.net/handoff/in/predictions.csv",
        }
    )
    assert request.notify_url == "https://hooks.example.com/batch/done"
    assert (
        request.copy_output_to == "https://dest01.dfs.core.windows.net/handoff/in/predictions.csv"
    )
    again = RunRequest.from_resolved(request.to_dict())
    assert again == request


def test_loopback_http_receiver_is_allowed_when_its_port_is_listed() -> None:
    assert parse({"notify_url": "http://127.0.0.1:8123/hook"}).notify_url == (
        "http://127.0.0.1:8123/hook"
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://hooks.example.com/hook", "https"),
        ("https://evil.example.net/hook", "NOTIFY_ALLOWED_HOSTS"),
        ("http://127.0.0.1:9999/hook", "NOTIFY_ALLOWED_HOSTS"),
        ("https://user:pw@hooks.example.com/hook", "user info"),
        ("https://hooks.example.com/hook?token=abc", "query"),
        ("https://hooks.example.com\\@evil.net/", "backslash"),
        ("hooks.example.com/hook", "absolute URL"),
        ("https://hooks.example.com/%2e%2e/x", "percent"),
        (42, "must be a string"),
    ],
)
def test_bad_notify_url_is_refused_naming_the_field(url: object, expected: str) -> None:
    problems = problem_fields({"notify_url": url})
    assert set(problems) == {"notify_url"}
    assert expected in problems["notify_url"]
    assert problems["notify_url"].startswith("notify_url ")


def test_notify_url_is_refused_when_notifications_are_not_configured() -> None:
    off = load_settings({})
    assert (
        "NOTIFY_ALLOWED_HOSTS is not set"
        in problem_fields({"notify_url": "https://hooks.example.com/x"}, off)["notify_url"]
    )
    no_secret = load_settings({"NOTIFY_ALLOWED_HOSTS": "hooks.example.com"})
    message = problem_fields({"notify_url": "https://hooks.example.com/x"}, no_secret)["notify_url"]
    assert "NOTIFY_SIGNING_SECRET is not set" in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://dest01.blob.core.windows.net/handoff", "must name a file"),
        ("https://dest01.blob.core.windows.net/Bad_Container/x.csv", "container"),
        ("https://example.com/container/x.csv", "Blob or ADLS Gen2 URL"),
        ("http://dest01.blob.core.windows.net/c1c/x.csv", "https"),
        ("http://127.0.0.1:10001/devstoreaccount1/c1c/x.csv", "COPY_ALLOWED_HOSTS"),
        ("https://dest01.blob.core.windows.net/c1c/x.csv?sv=2020&sig=abc", "query"),
        ("https://dest01.blob.core.windows.net/c1c/../x.csv", "'..'"),
    ],
)
def test_bad_copy_output_to_is_refused_naming_the_field(url: str, expected: str) -> None:
    problems = problem_fields({"copy_output_to": url})
    assert set(problems) == {"copy_output_to"}
    assert expected in problems["copy_output_to"]
    assert "sig=abc" not in problems["copy_output_to"]


def test_copy_needs_the_output_datastore_mapped() -> None:
    unmapped = load_settings({"COPY_ALLOWED_HOSTS": "*.blob.core.windows.net"})
    message = problem_fields(
        {"copy_output_to": "https://dest01.blob.core.windows.net/c1c/x.csv"}, unmapped
    )["copy_output_to"]
    assert "OUTPUT_DATASTORE_URLS" in message
    assert "workspaceblobstore" in message
    assert (
        "COPY_ALLOWED_HOSTS is not set"
        in problem_fields(
            {"copy_output_to": "https://dest01.blob.core.windows.net/c1c/x.csv"}, load_settings({})
        )["copy_output_to"]
    )


def test_blob_urls_map_to_the_blob_api() -> None:
    _, dfs = parse_blob_url("https://dest01.dfs.core.windows.net/handoff/a/b.csv")
    assert dfs is not None
    assert dfs.account_url == "https://dest01.blob.core.windows.net"
    assert (dfs.account, dfs.container, dfs.blob) == ("dest01", "handoff", "a/b.csv")
    _, azurite = parse_blob_url("http://127.0.0.1:10000/devstoreaccount1/out/p.csv")
    assert azurite is not None
    assert azurite.account_url == "http://127.0.0.1:10000/devstoreaccount1"
    assert azurite.url == "http://127.0.0.1:10000/devstoreaccount1/out/p.csv"
    assert copy_url_problem(azurite.url, ("127.0.0.1:10000",)) is None


def test_source_blob_resolves_the_datastore_output() -> None:
    stores = dict(ON.output_datastore_urls)
    uri = "azureml://datastores/WorkspaceBlobStore/paths/out/r1/predictions.csv"
    src = source_blob(uri, stores)
    assert src is not None
    assert src.url == (
        "https://wsacct.blob.core.windows.net/azureml-blobstore-1/out/r1/predictions.csv"
    )
    assert source_blob("azureml://datastores/other/paths/x.csv", stores) is None


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"NOTIFY_ALLOWED_HOSTS": "*"}, "NOTIFY_ALLOWED_HOSTS"),
        ({"COPY_ALLOWED_HOSTS": "*.net"}, "COPY_ALLOWED_HOSTS"),
        ({"NOTIFY_SIGNING_SECRET": "short"}, "NOTIFY_SIGNING_SECRET"),
        ({"OUTPUT_DATASTORE_URLS": "workspaceblobstore"}, "OUTPUT_DATASTORE_URLS"),
        ({"OUTPUT_DATASTORE_URLS": "ws=https://a.example.com/c"}, "OUTPUT_DATASTORE_URLS"),
        ({"OUTPUT_DATASTORE_URLS": "ws=https://acct1.blob.core.windows.net/c1c/p"}, "OUTPUT_DATA"),
    ],
)
def test_bad_settings_are_named(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env)
    assert name in str(info.value)


def test_signing_secret_is_never_shown() -> None:
    assert SECRET not in repr(ON)
    with pytest.raises(SettingsError) as info:
        load_settings({"NOTIFY_SIGNING_SECRET": "tiny-secret"})
    assert "tiny-secret" not in str(info.value)
