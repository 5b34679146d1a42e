"""Fast in-process checks of the emulator's pure pieces (no servers needed)."""

from __future__ import annotations

import pytest

from aml_emulator import ConfigError, EmulatorConfig, config_from_dict, predict_row, score_csv
from aml_emulator._config import FaultSpec, parse_fault
from aml_emulator._faults import FaultRegistry
from aml_emulator._http import token_audiences
from aml_emulator._jobs import RequestError, parse_job_request
from aml_emulator._model import ScoringError, prediction_lines
from aml_emulator._storage import (
    DEV_CONNECTION_STRING,
    Storage,
    StorageError,
    expand_connection_string,
    parse_datastore_uri,
)
from tests.integration.emulator.helpers import HEADER, ROW, csv_text, jwt

WS = "subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "azureml://datastores/workspaceblobstore/paths/a/b.csv",
            ("workspaceblobstore", "a/b.csv"),
        ),
        (
            "azureml://subscriptions/s/resourcegroups/rg/workspaces/ws/datastores/ds/paths/x/",
            ("ds", "x/"),
        ),
        (f"/{WS}/datastores/ds/paths/x/y", ("ds", "x/y")),
        (f"azureml:/{WS}/datastores/ds/paths/x%20y", ("ds", "x y")),
        (f"/{WS}/data/asset/versions/1", None),
        ("https://acct.blob.core.windows.net/c/p", None),
    ],
)
def test_datastore_uri_forms(uri: str, expected: tuple[str, str] | None) -> None:
    assert parse_datastore_uri(uri) == expected


def test_use_development_storage_is_expanded() -> None:
    assert expand_connection_string("UseDevelopmentStorage=true") == DEV_CONNECTION_STRING
    assert expand_connection_string("UseDevelopmentStorage=true;") == DEV_CONNECTION_STRING
    other = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=a2V5;EndpointSuffix=x.net"
    assert expand_connection_string(other) == other


def test_storage_resolves_urls_in_its_account_only() -> None:
    storage = Storage(DEV_CONNECTION_STRING, {"workspaceblobstore": "azureml-blobstore"})
    try:
        azurite = storage.resolve("http://127.0.0.1:10000/devstoreaccount1/c/dir/f.csv?sv=x")
        assert (azurite.container, azurite.path) == ("c", "dir/f.csv")
        local = storage.resolve("http://localhost:10000/devstoreaccount1/c/dir/")
        assert (local.container, local.path) == ("c", "dir/")
        host_style = storage.resolve("https://devstoreaccount1.blob.core.windows.net/c/p")
        assert (host_style.container, host_style.path) == ("c", "p")
        ds = storage.resolve("azureml://datastores/WorkspaceBlobStore/paths/in/")
        assert (ds.container, ds.path) == ("azureml-blobstore", "in/")
        for bad in (
            "http://127.0.0.1:10001/devstoreaccount1/c/p",
            "http://127.0.0.1:10000/otheraccount/c/p",
            "https://other.blob.core.windows.net/c/p",
            "azureml://datastores/nostore/paths/x",
            f"/{WS}/data/asset/versions/1",
        ):
            with pytest.raises(StorageError):
                storage.resolve(bad)
    finally:
        storage.close()


def test_model_scores_rows_and_encodes_thal() -> None:
    data = "\n".join([HEADER, ROW, ROW.replace("fixed", "1"), "", ROW]) + "\n"
    score = score_csv("f.csv", data.encode())
    assert len(score.predictions) == 3  # the blank line is not a row
    assert score.predictions[0] == score.predictions[1]  # "fixed" == "1"
    assert prediction_lines([score]).splitlines()[0] == f"0,{score.predictions[0]},f.csv"
    high = dict(
        zip(HEADER.split(","), [70, 1, 4, 170, 300, 0, 2, 100, 1, 4.0, 3, 3, 2], strict=True)
    )
    low = dict(
        zip(HEADER.split(","), [35, 0, 1, 110, 180, 0, 0, 190, 0, 0.0, 1, 0, 0], strict=True)
    )
    assert predict_row({k: float(v) for k, v in high.items()}) == 1
    assert predict_row({k: float(v) for k, v in low.items()}) == 0


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "No columns"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (HEADER.replace("chol", "cholesterol").encode() + b"\n", "'chol'"),
        (csv_text(1, ROW.replace("fixed", "weird")), "'thal'"),
        (csv_text(1, "1,2,3"), "Row 0"),
        (csv_text(1, ROW.replace("2.3", "inf")), "'oldpeak'"),
    ],
)
def test_model_rejects_bad_files_naming_the_problem(data: bytes, needle: str) -> None:
    with pytest.raises(ScoringError) as info:
        score_csv("bad.csv", data)
    assert "'bad.csv'" in str(info.value)
    assert needle in str(info.value)


def test_config_defaults_and_overrides() -> None:
    config = config_from_dict({})
    assert (config.port, config.host, config.phase_seconds) == (5100, "127.0.0.1", 2.0)
    assert config.state_path == ".emulator/state.sqlite"
    assert config.endpoints["heart-classifier"].deployments == ("default",)
    changed = config.with_overrides(port=0, phase_seconds=None)
    assert (changed.port, changed.phase_seconds) == (0, 2.0)
    with pytest.raises(ConfigError, match="port"):
        EmulatorConfig(port=70000)
    no_default = config_from_dict({"endpoints": {"e": {"deployments": []}}})
    assert no_default.endpoints["e"].default_deployment is None


def test_fault_registry_consumes_in_order_and_by_scope() -> None:
    registry = FaultRegistry()
    registry.add(
        parse_fault(
            {"kind": "http_error", "status": 429, "count": 2, "route": "get", "retry_after": 1.5}
        )
    )
    registry.add(parse_fault({"kind": "slow", "seconds": 0.5, "route": "any"}))
    registry.add(FaultSpec(kind="http_error", status=500, endpoint="other"))
    first = registry.for_request("get", "heart-classifier")
    assert (first.status, first.retry_after, first.delay) == (429, 1.5, 0.5)
    second = registry.for_request("get", "heart-classifier")
    assert (second.status, second.delay) == (429, 0.0)
    assert registry.for_request("get", "heart-classifier").status is None
    assert registry.for_request("invoke", "other").status == 500
    assert registry.list() == []


def test_job_fault_defaults_and_validation() -> None:
    fault = parse_fault({"kind": "job", "script": [["Queued", 1], ["Paused", 2.5]]})
    assert fault.script == (("Queued", 1.0), ("Paused", 2.5))
    assert fault.outcome == "Completed"
    with pytest.raises(ConfigError, match=r"fault\.script\[0\]"):
        parse_fault({"kind": "job", "script": [["Queued", -1]]})
    with pytest.raises(ConfigError, match=r"fault\.count"):
        parse_fault({"kind": "job", "count": True})


def test_token_audience_is_read_from_the_jwt_payload() -> None:
    assert token_audiences(jwt("https://ml.azure.com")) == {"https://ml.azure.com"}
    assert token_audiences("local-dev") == set()
    assert token_audiences("a.!!!.c") == set()


def test_request_parsing_handles_both_casings_and_legacy_output() -> None:
    pascal = parse_job_request(
        {
            "Properties": {
                "InputData": {
                    "x": {"JobInputType": "urifile", "Uri": "azureml://datastores/d/paths/f.csv"}
                }
            }
        }
    )
    camel = parse_job_request(
        {
            "properties": {
                "inputData": {
                    "x": {"jobInputType": "UriFile", "uri": "azureml://datastores/d/paths/f.csv"}
                }
            }
        }
    )
    assert pascal == camel
    assert pascal.input_type == "UriFile"
    assert pascal.output_uri is None
    legacy = parse_job_request(
        {
            "properties": {
                "inputData": {
                    "x": {"jobInputType": "UriFolder", "uri": "azureml://datastores/d/paths/f"}
                },
                "outputDataset": {"datastoreId": f"/{WS}/datastores/store", "path": "out/"},
                "outputFileName": "p.csv",
            }
        }
    )
    assert legacy.output_uri == "azureml://datastores/store/paths/out/p.csv"
    with pytest.raises(RequestError, match=r"properties\.inputData\.x\.uri"):
        parse_job_request(
            {
                "properties": {
                    "inputData": {
                        "x": {"jobInputType": "UriFile", "uri": "azureml://datastores/d/paths/dir/"}
                    }
                }
            }
        )


# --- ARM Jobs list filters (aml_emulator._arm) ---------------------------------------------------


def test_properties_filter_terms() -> None:
    from aml_emulator._arm import parse_properties_filter

    assert parse_properties_filter("a,b=c") == (("a", None), ("b", "c"))
    assert parse_properties_filter(" a , ,b=") == (("a", None), ("b", ""))
    assert parse_properties_filter("k=v=w") == (("k", "v=w"),)
    assert parse_properties_filter("") == ()


def test_properties_filter_rejects_an_empty_name() -> None:
    from aml_emulator._arm import parse_properties_filter
    from aml_emulator._http import ApiError

    with pytest.raises(ApiError, match="properties"):
        parse_properties_filter("=v")


def test_list_query_matches_tag_keys_and_every_property_term() -> None:
    from dataclasses import replace

    from aml_emulator._arm import parse_list_query
    from aml_emulator._jobs import JobRecord

    spec = parse_job_request(
        {
            "properties": {
                "inputData": {
                    "i": {"jobInputType": "UriFolder", "uri": "azureml://datastores/d/paths/p/"}
                },
                "tags": {"run": "r1"},
                "properties": {"a": "1", "b": "2"},
            }
        }
    )
    job = JobRecord(
        name="j",
        endpoint="e",
        deployment="d",
        spec=spec,
        request_id=None,
        created_at=0.0,
        status="Running",
        phase_index=0,
        phase_started_at=0.0,
        script=(("Running", 1.0),),
        outcome="Completed",
    )
    assert parse_list_query({"tag": ["run"]}).matches(job)
    assert not parse_list_query({"tag": ["run=r1"]}).matches(job)
    assert parse_list_query({"properties": ["a,b=2"]}).matches(job)
    assert not parse_list_query({"properties": ["a,b=3"]}).matches(job)
    assert not parse_list_query({"listViewType": ["ArchivedOnly"]}).matches(job)
    assert parse_list_query({"listViewType": ["all"], "jobType": ["pipeline"]}).matches(job)
    assert not parse_list_query({"jobType": ["Command"]}).matches(job)
    assert parse_list_query({"$skip": ["12"]}).before_seq == 12
    assert not parse_list_query({"tag": ["run"]}).matches(replace(job, spec=replace(spec, tags={})))
