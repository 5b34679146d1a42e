"""parse_run_request: every rule of the run parameter table, defaults, wire shapes."""

from datetime import UTC, datetime
from typing import Any

import pytest

from batch_runs import (
    FieldError,
    InvalidRunRequest,
    RunRequest,
    Settings,
    load_settings,
    parse_run_request,
)

NOW = datetime(2026, 11, 25, 6, 30, 0, tzinfo=UTC)
ENDPOINT = "https://heart.westeurope.inference.ml.azure.com/jobs"
INPUT = "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/"
SETTINGS = load_settings({})


def parse(body: object, settings: Settings = SETTINGS, **kw: Any) -> RunRequest:
    return parse_run_request(body, settings, run_id=kw.pop("run_id", "run-1"), now=NOW, **kw)


def minimal(**extra: object) -> dict[str, object]:
    return {"endpoint_uri": ENDPOINT, "endpoint_input_uri": INPUT, **extra}


def test_minimal_request_gets_defaults_from_settings() -> None:
    request = parse(minimal())

    assert request.endpoint_uri == ENDPOINT
    assert request.input_uri == INPUT
    assert request.input_type == "UriFolder"
    assert request.output_uri == (
        "azureml://datastores/workspaceblobstore/paths/batch-scoring/2026/11/25/run-1/predictions.csv"
    )
    assert request.poll_interval == 120
    assert request.timeout == 86400
    assert (request.input_name, request.output_name) == ("input_data", "score")
    assert request.deployment_name is None
    assert request.mini_batch_size is None


def test_endpoint_falls_back_to_setting_and_source_name_shapes_output() -> None:
    settings = load_settings(
        {
            "BATCH_ENDPOINT_URI": ENDPOINT,
            "OUTPUT_URI_TEMPLATE": "azureml://datastores/ws/paths/{source_name}/{run_id}.csv",
            "POLL_INTERVAL_SECONDS": "60",
            "RUN_TIMEOUT_SECONDS": "600",
        }
    )

    request = parse({"endpoint_input_uri": INPUT}, settings, run_id="r/1", source_name="a b.csv")

    assert request.endpoint_uri == ENDPOINT
    assert request.output_uri == "azureml://datastores/ws/paths/a-b.csv/r-1.csv"
    assert (request.poll_interval, request.timeout) == (60, 600)


def test_full_request_with_adf_string_numbers() -> None:
    body = minimal(
        endpoint_input_type="UriFile",
        endpoint_input_uri="https://azuremlexampledata.blob.core.windows.net/data/heart.csv",
        endpoint_output_uri="azureml://datastores/workspaceblobstore/paths/batch/predictions.csv",
        poll_interval="30",
        timeout=3600.0,
        deployment_name="classifier-xgboost",
        input_name="heart_data",
        output_name="scores_1",
        mini_batch_size="2",
        instance_count=2,
        error_threshold=-1,
        max_retries=0,
        retry_timeout=300,
        output_file_name="predictions.csv",
    )

    request = parse(body)

    assert request.input_type == "UriFile"
    assert (request.poll_interval, request.timeout) == (30, 3600)
    assert request.deployment_name == "classifier-xgboost"
    assert (request.mini_batch_size, request.instance_count) == (2, 2)
    assert (request.error_threshold, request.max_retries, request.retry_timeout) == (-1, 0, 300)
    assert request.output_file_name == "predictions.csv"


BAD_PARAMETERS: list[tuple[str, object, str]] = [
    ("endpoint_uri", "https://ep.westeurope.inference.ml.azure.com/score", "/jobs"),
    ("endpoint_uri", "http://ep.westeurope.inference.ml.azure.com/jobs", "https"),
    ("endpoint_uri", "https://evil.example.com/jobs", "BATCH_ENDPOINT_ALLOWED_HOSTS"),
    ("endpoint_uri", "https://ep.inference.ml.azure.com/jobs?x=1", "query"),
    ("endpoint_uri", 42, "string"),
    ("endpoint_input_uri", None, "required"),
    ("endpoint_input_uri", "", "required"),
    ("endpoint_input_uri", "/local/data", "local paths"),
    ("endpoint_input_uri", "https://a1.blob.core.windows.net/c/d?sig=SECRET", "SAS"),
    ("endpoint_input_uri", ["x"], "string"),
    ("endpoint_input_type", "MLTable", "UriFolder, UriFile"),
    ("endpoint_input_type", "urifolder", "exact case"),
    ("endpoint_output_uri", "azureml://datastores/ws/paths/out/", "file"),
    ("endpoint_output_uri", "https://a1.blob.core.windows.net/c/p.csv", "azureml://"),
    ("poll_interval", 5, "between 10 and 3600"),
    ("poll_interval", 4000, "between 10 and 3600"),
    ("poll_interval", True, "integer"),
    ("poll_interval", 30.5, "integer"),
    ("poll_interval", "thirty", "integer"),
    ("timeout", 0, "between 1 and 2592000"),
    ("timeout", 2592001, "between 1 and 2592000"),
    ("timeout", 60, "poll_interval"),
    ("timeout", False, "integer"),
    ("deployment_name", "1abc", "letter"),
    ("deployment_name", "a" * 33, "1-32"),
    ("deployment_name", "has_underscore", "letter"),
    ("input_name", "1x", "letter or '_'"),
    ("input_name", "with-dash", "letter or '_'"),
    ("output_name", "a b", "letter or '_'"),
    ("mini_batch_size", 0, "between 1 and 2147483647"),
    ("instance_count", 0, "between 1 and"),
    ("instance_count", "2.5", "integer"),
    ("error_threshold", -2, "between -1 and"),
    ("max_retries", -1, "between 0 and"),
    ("retry_timeout", 0, "between 1 and"),
    ("max_retries", 10**30, "too many digits"),
    ("mini_batch_size", 2**31, "between 1 and 2147483647"),
    ("output_file_name", "dir/predictions.csv", "plain file name"),
    ("output_file_name", "..", "plain file name"),
    ("surprise", 1, "unknown parameter"),
]


@pytest.mark.parametrize(("field", "value", "expected"), BAD_PARAMETERS)
def test_every_bad_parameter_names_its_field(field: str, value: object, expected: str) -> None:
    with pytest.raises(InvalidRunRequest) as caught:
        parse(minimal(**{field: value}))

    details = caught.value.details
    assert [d.field for d in details] == [field]
    assert details[0].message.startswith(field)
    assert expected in details[0].message
    assert "SECRET" not in details[0].message


def test_endpoint_required_names_the_setting() -> None:
    with pytest.raises(InvalidRunRequest) as caught:
        parse({"endpoint_input_uri": INPUT})

    assert caught.value.details == (
        FieldError(
            "endpoint_uri",
            "endpoint_uri is required (no default: BATCH_ENDPOINT_URI is not set)",
        ),
    )


def test_auth_none_refuses_remote_endpoint() -> None:
    settings = load_settings({"BATCH_ENDPOINT_AUTH": "none"})

    with pytest.raises(InvalidRunRequest) as caught:
        parse(minimal(), settings)

    assert caught.value.details[0].field == "endpoint_uri"
    assert "loopback" in caught.value.details[0].message


def test_urifile_with_a_folder_is_an_error() -> None:
    with pytest.raises(InvalidRunRequest) as caught:
        parse(minimal(endpoint_input_type="UriFile"))

    assert [d.field for d in caught.value.details] == ["endpoint_input_uri"]


@pytest.mark.parametrize("body", [None, [], "text", 3])
def test_body_must_be_an_object(body: object) -> None:
    with pytest.raises(InvalidRunRequest) as caught:
        parse(body)

    assert [d.field for d in caught.value.details] == ["body"]


def test_all_errors_are_collected_and_rendered_as_http_body() -> None:
    body = {
        "endpoint_uri": "https://evil.example.com/jobs",
        "endpoint_input_uri": "/tmp/x",
        "poll_interval": 1,
        "deployment_name": "-",
        "extra": True,
    }

    with pytest.raises(InvalidRunRequest) as caught:
        parse(body)

    error = caught.value.to_error_body()["error"]
    assert error["code"] == "InvalidRunRequest"
    assert {d["field"] for d in error["details"]} == {
        "endpoint_uri",
        "endpoint_input_uri",
        "poll_interval",
        "deployment_name",
        "extra",
    }
    assert all(set(d) == {"field", "message"} for d in error["details"])
    assert "5 problem(s)" in error["message"]
    assert isinstance(caught.value, ValueError)


def test_to_dict_uses_wire_names_and_round_trips() -> None:
    request = parse(minimal(deployment_name="blue", retry_timeout=30, poll_interval=15))

    data = request.to_dict()
    again = parse_run_request(data, SETTINGS, run_id="other-run", now=datetime.now(UTC))

    assert again == request
    assert RunRequest.from_resolved(data) == request
    assert data["endpoint_input_uri"] == INPUT
    assert data["endpoint_input_type"] == "UriFolder"
    assert data["endpoint_output_uri"] == request.output_uri
    assert data["retry_timeout"] == 30
    assert "mini_batch_size" not in data


def test_invoke_body_minimal_shape() -> None:
    request = parse(minimal())

    assert request.to_invocation().body(None) == {
        "properties": {
            "InputData": {"input_data": {"JobInputType": "UriFolder", "Uri": INPUT}},
            "OutputData": {"score": {"JobOutputType": "UriFile", "Uri": request.output_uri}},
        }
    }


def test_invoke_body_with_every_override() -> None:
    request = parse(
        minimal(
            input_name="heart_data",
            mini_batch_size=2,
            instance_count=3,
            error_threshold=-1,
            max_retries=4,
            retry_timeout=300,
            output_file_name="out.csv",
        )
    )

    props = request.to_invocation("bs-abc").body("bs-abc")["properties"]

    assert props["InputData"] == {"heart_data": {"JobInputType": "UriFolder", "Uri": INPUT}}
    assert props["MiniBatchSize"] == 2
    assert props["Compute"] == {"InstanceCount": 3}
    assert props["ErrorThreshold"] == -1
    assert props["RetrySettings"] == {"MaxRetries": 4, "Timeout": "PT300S"}
    # azure-ai-ml folds the file name into the output URI and never sends both.
    assert "OutputFileName" not in props
    out_uri = props["OutputData"]["score"]["Uri"]
    assert out_uri == request.output_uri.rsplit("/", 1)[0] + "/out.csv"
    assert props["Name"] == "bs-abc"
    assert props["Tags"] == props["Properties"] == {"batch_run_key": "bs-abc"}


def test_run_request_rejects_invalid_direct_construction() -> None:
    with pytest.raises(InvalidRunRequest) as caught:
        RunRequest(
            endpoint_uri="https://x/score",
            input_uri=INPUT,
            input_type="Folder",
            output_uri="azureml://datastores/ws/paths/o.csv",
            poll_interval=0,
            timeout=10,
        )

    assert {d.field for d in caught.value.details} == {
        "endpoint_uri",
        "endpoint_input_type",
        "poll_interval",
    }


def test_watchdogs_come_from_the_parameters_or_the_settings() -> None:
    settings = load_settings({"MAX_QUEUED_SECONDS": "900"})

    from_settings = parse(minimal(), settings=settings)
    from_parameter = parse(minimal(max_queued_seconds="120"), settings=settings)
    off = parse(minimal())

    assert (from_settings.max_queued_seconds, from_settings.max_not_responding_seconds) == (
        900,
        None,
    )
    assert from_parameter.max_queued_seconds == 120
    assert off.max_queued_seconds is None
    assert "max_queued_seconds" not in off.to_dict()
    assert (
        from_parameter.to_invocation()
        .body()["properties"]
        .keys()
        .isdisjoint({"max_queued_seconds", "MaxQueuedSeconds"})
    )


@pytest.mark.parametrize("value", [0, -5, "soon", 1.5, True, "9" * 20])
def test_bad_watchdog_values_name_the_field(value: object) -> None:
    with pytest.raises(InvalidRunRequest) as caught:
        parse(minimal(max_not_responding_seconds=value))

    assert [d.field for d in caught.value.details] == ["max_not_responding_seconds"]


def test_poll_backoff_is_a_bounded_number_and_its_cap_at_least_the_interval() -> None:
    request = parse(minimal(poll_interval=30, poll_backoff="1.5", poll_max_interval=600))

    assert (request.poll_backoff, request.poll_max_interval) == (1.5, 600)
    assert request.to_dict()["poll_backoff"] == 1.5
    assert "poll_backoff" not in parse(minimal()).to_dict()  # 1.0 = the ADF fixed interval
    assert RunRequest.from_resolved(request.to_dict()) == request


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("poll_backoff", 0.5),
        ("poll_backoff", 11),
        ("poll_backoff", "fast"),
        ("poll_backoff", True),
        ("poll_backoff", 10**400),
        ("poll_max_interval", 5),
        ("poll_max_interval", 10**9),
    ],
)
def test_bad_backoff_parameters_name_their_field(field: str, value: object) -> None:
    with pytest.raises(InvalidRunRequest) as caught:
        parse(minimal(poll_interval=30, **{field: value}))

    assert [d.field for d in caught.value.details] == [field]
