"""Run control: the list query, continuation tokens, the paging core, rerun parameters,
retention settings (plain unit tests; the store is a hand-written fake of ``InstancesApi``)."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from batch_runs import InvalidRunRequest, load_settings
from batch_runs.request import parse_run_request
from batch_runs.run_control import (
    ManagementEndpoint,
    RunListQuery,
    decode_continuation,
    encode_continuation,
    list_runs,
    output_was_generated,
    parse_list_query,
    rerun_of,
    rerun_parameters,
    retention_cutoff,
    run_parameters_of,
)
from batch_runs.settings import (
    DEFAULT_RETENTION_SCHEDULE,
    SettingsError,
    retention_schedule_binding,
)

EP = "https://heart.westeurope.inference.ml.azure.com/jobs"
OTHER_EP = "https://other.westeurope.inference.ml.azure.com/jobs"
TEMPLATE = (
    "azureml://datastores/workspaceblobstore/paths/batch-scoring/{date}/{run_id}/predictions.csv"
)


def _fields(exc: pytest.ExceptionInfo[InvalidRunRequest]) -> set[str]:
    return {d.field for d in exc.value.details}


# ------------------------------------------------------------------------------- the query


def test_empty_query_lists_everything_with_the_default_page_size():
    query = parse_list_query({"code": "function-key"})

    assert query == RunListQuery()
    assert query.store_params(50) == {"top": "50", "showInput": "true"}


def test_filters_are_parsed_and_sent_in_the_management_api_names():
    query = parse_list_query(
        {
            "status": "completed, Failed",
            "endpoint": EP,
            "created_from": "2026-11-01T00:00:00Z",
            "created_to": "2026-11-30",
            "top": "7",
        }
    )

    assert query.statuses == ("Completed", "Failed")
    assert query.endpoint == EP
    assert query.created_from == datetime(2026, 11, 1, tzinfo=UTC)
    assert query.top == 7
    assert query.store_params(3) == {
        "top": "3",
        "showInput": "true",
        "runtimeStatus": "Completed,Failed",
        "createdTimeFrom": "2026-11-01T00:00:00.000000Z",
        "createdTimeTo": "2026-11-30T00:00:00.000000Z",
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "Done"}, "status"),
        ({"status": "Running,"}, "status"),
        ({"endpoint": "ftp://x/jobs"}, "endpoint"),
        ({"created_from": "yesterday"}, "created_from"),
        ({"created_to": "2026-13-01"}, "created_to"),
        ({"created_from": "2026-11-02", "created_to": "2026-11-01"}, "created_to"),
        ({"top": "0"}, "top"),
        ({"top": "101"}, "top"),
        ({"top": "ten"}, "top"),
        ({"top": "1e2"}, "top"),
        ({"continuation": "not a token"}, "continuation"),
        ({"continuation": ""}, "continuation"),
        ({"top": ""}, "top"),
        ({"continuation": "x" * 5000}, "continuation"),
        ({"status": "x" * 3000}, "status"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it(params: dict[str, str], field: str):
    with pytest.raises(InvalidRunRequest) as exc:
        parse_list_query(params)

    assert _fields(exc) == {field}


def test_every_bad_parameter_is_named_at_once():
    with pytest.raises(InvalidRunRequest) as exc:
        parse_list_query({"status": "Nope", "top": "0", "created_from": "never"})

    assert _fields(exc) == {"status", "top", "created_from"}


# ---------------------------------------------------------------------- continuation tokens


def test_a_continuation_round_trips_for_the_same_filters():
    query = RunListQuery(statuses=("Completed",), top=5)
    token = encode_continuation('{"nextPartitionKey":"1!abc"}', query)

    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_continuation(token, query) == '{"nextPartitionKey":"1!abc"}'
    parsed = parse_list_query({"status": "Completed", "top": "9", "continuation": token})
    assert parsed.store_token == '{"nextPartitionKey":"1!abc"}'  # top may change between pages


def test_a_continuation_is_refused_with_other_filters_or_when_forged():
    token = encode_continuation("abc", RunListQuery(statuses=("Completed",)))
    forged = encode_continuation("line\r\nX-Injected: 1", RunListQuery())

    with pytest.raises(InvalidRunRequest):
        decode_continuation(token, RunListQuery(statuses=("Failed",)))
    with pytest.raises(InvalidRunRequest):
        decode_continuation(forged, RunListQuery())  # not a safe header value
    with pytest.raises(InvalidRunRequest):
        decode_continuation("e30", RunListQuery())  # "{}"


# ------------------------------------------------------------------------------ the binding


def test_the_management_endpoint_prefers_the_loopback_rpc_url():
    binding = {
        "rpcBaseUrl": "http://127.0.0.1:17071/durabletask/",
        "baseUrl": "https://app.azurewebsites.net/runtime/webhooks/durabletask",
        "requiredQueryStringParameters": "taskHub=hub&connection=Storage&code=secret",
    }

    assert ManagementEndpoint.from_binding(binding).instances_url == (
        "http://127.0.0.1:17071/durabletask/instances/"
    )
    without_rpc = ManagementEndpoint.from_binding({**binding, "rpcBaseUrl": None})
    assert without_rpc.instances_url == (
        "https://app.azurewebsites.net/runtime/webhooks/durabletask/instances/"
    )
    assert dict(without_rpc.query) == {"taskHub": "hub", "connection": "Storage", "code": "secret"}


# ------------------------------------------------------------------------------ paging core


def _status(iid: str, *, name: str = "batch_endpoint_run", endpoint: str = EP) -> dict[str, Any]:
    return {
        "name": name,
        "instanceId": iid,
        "runtimeStatus": "Completed",
        "input": {"endpoint_uri": endpoint, "endpoint_input_uri": "azureml://x"},
        "customStatus": {"phase": "completed", "polls": 2},
        "output": {"job_name": "j"},
        "createdTime": "2026-11-30T10:00:00Z",
        "lastUpdatedTime": "2026-11-30T10:05:00.1234567Z",
    }


class FakeStore:
    """Instances served in pages as the extension does: ``top`` per page, then a token."""

    def __init__(self, statuses: list[dict[str, Any]], *, end_token: str | None = None) -> None:
        self.statuses = statuses
        self.end_token = end_token
        self.calls: list[tuple[dict[str, str], str | None]] = []

    def list_instances(
        self, params: Mapping[str, str], continuation: str | None
    ) -> tuple[list[Mapping[str, Any]], str | None]:
        self.calls.append((dict(params), continuation))
        start = int(continuation.removeprefix("at-")) if continuation else 0
        top = int(params["top"])
        page = self.statuses[start : start + top]
        more = start + top < len(self.statuses)
        return list(page), f"at-{start + top}" if more else self.end_token


def _all_pages(store: FakeStore, params: dict[str, str]) -> list[list[str]]:
    pages: list[list[str]] = []
    while True:
        page = list_runs(
            store, parse_list_query(params), orchestrator="batch_endpoint_run", default_endpoint=EP
        )
        pages.append([v["id"] for v in page.value])
        if page.continuation is None:
            return pages
        params = {**params, "continuation": page.continuation}


@pytest.mark.parametrize("end_token", [None, "", "bnVsbA=="])
def test_paging_reads_every_run_once_in_pages_of_top(end_token: str | None):
    store = FakeStore([_status(f"r{i}") for i in range(7)], end_token=end_token)

    pages = _all_pages(store, {"top": "3"})

    assert pages == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]


def test_other_orchestrations_and_endpoints_are_skipped_without_losing_runs():
    store = FakeStore(
        [
            _status("a"),
            _status("parent", name="nightly"),
            _status("b", endpoint=OTHER_EP),
            _status("c"),
            _status("d"),
        ]
    )

    pages = _all_pages(store, {"top": "2", "endpoint": EP})

    assert [i for page in pages for i in page] == ["a", "c", "d"]
    assert all(len(page) <= 2 for page in pages)
    assert all(call[0]["showInput"] == "true" for call in store.calls)


def test_a_run_without_endpoint_uri_counts_as_on_the_default_endpoint():
    status = _status("sub")
    status["input"] = {"endpoint_input_uri": "azureml://x"}  # a sub-orchestration's own input
    store = FakeStore([status])

    page = list_runs(
        store,
        parse_list_query({"endpoint": EP}),
        orchestrator="batch_endpoint_run",
        default_endpoint=EP,
    )

    assert [v["id"] for v in page.value] == ["sub"]


def test_a_listed_run_is_shown_as_the_run_view_shows_it():
    status = _status("r1")
    status["input"] = {"resume": {"run_parameters": {"endpoint_uri": EP, "rerun_of": "r0"}}}
    page = list_runs(
        FakeStore([status]), RunListQuery(), orchestrator="batch_endpoint_run", default_endpoint=EP
    )

    [view] = page.value
    assert view["id"] == "r1"
    assert view["runtime_status"] == "Completed"
    assert view["output"] == {"job_name": "j"}
    assert view["created"] == "2026-11-30T10:00:00+00:00"
    assert view["last_updated"] == "2026-11-30T10:05:00.123456+00:00"
    assert view["rerun_of"] == "r0"
    assert page.continuation is None


def test_the_store_pages_read_per_answer_are_bounded():
    store = FakeStore([_status(f"x{i}", name="other") for i in range(50)])

    page = list_runs(
        store,
        RunListQuery(top=2),
        orchestrator="batch_endpoint_run",
        default_endpoint=EP,
        max_store_pages=3,
    )

    assert page.value == []
    assert page.continuation is not None  # more to read: the caller follows it
    assert len(store.calls) == 3


# -------------------------------------------------------------------------------------- rerun


def test_run_parameters_are_read_from_the_input_also_after_continue_as_new():
    params = {"endpoint_input_uri": "azureml://x"}

    assert run_parameters_of(params) == params
    assert run_parameters_of('{"endpoint_input_uri": "azureml://x"}') == params
    assert run_parameters_of({"resume": {"run_parameters": params, "polls": 3}}) == params
    assert run_parameters_of(None) is None
    assert rerun_of({"rerun_of": "bad id!"}) is None


@pytest.mark.parametrize(
    ("output", "generated"),
    [
        (
            "azureml://datastores/workspaceblobstore/paths/batch-scoring/2026/11/30/r1/predictions.csv",
            True,
        ),
        ("azureml://datastores/workspaceblobstore/paths/old-layout/r1/out.csv", True),
        (
            "azureml://datastores/workspaceblobstore/paths/batch-scoring/2026/11/30/r2/predictions.csv",
            False,
        ),
        ("azureml://datastores/workspaceblobstore/paths/mine/predictions.csv", False),
    ],
)
def test_a_template_made_output_path_is_recognised(output: str, generated: bool):
    assert output_was_generated(output, run_id="r1", template=TEMPLATE) is generated


def test_a_rerun_gets_its_own_output_path_unless_the_caller_chose_one():
    settings = load_settings({"BATCH_ENDPOINT_URI": EP})
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    original = parse_run_request(
        {"endpoint_input_uri": "azureml://datastores/ws/paths/in/", "poll_interval": 60},
        settings,
        run_id="first",
        now=now,
    ).to_dict()
    chosen = {**original, "endpoint_output_uri": "azureml://datastores/ws/paths/mine/p.csv"}

    body = rerun_parameters(original, original_id="first", output_template=TEMPLATE)
    rerun = parse_run_request(body, settings, run_id="second", now=now)
    kept = rerun_parameters(chosen, original_id="first", output_template=TEMPLATE)

    assert "endpoint_output_uri" not in body
    assert "/second/" in rerun.output_uri
    assert "/first/" not in rerun.output_uri
    assert rerun.rerun_of == "first"
    assert rerun.poll_interval == 60
    assert rerun.to_dict()["rerun_of"] == "first"
    assert kept["endpoint_output_uri"] == "azureml://datastores/ws/paths/mine/p.csv"


def test_a_rerun_of_a_rerun_names_its_direct_original():
    body = rerun_parameters(
        {"endpoint_input_uri": "azureml://x", "rerun_of": "first"},
        original_id="second",
        output_template=TEMPLATE,
    )

    assert body["rerun_of"] == "second"


def test_rerun_of_must_be_a_run_id():
    settings = load_settings({"BATCH_ENDPOINT_URI": EP})
    with pytest.raises(InvalidRunRequest) as exc:
        parse_run_request(
            {"endpoint_input_uri": "azureml://datastores/ws/paths/in/", "rerun_of": "../x"},
            settings,
            run_id="r",
            now=datetime(2026, 11, 30, tzinfo=UTC),
        )

    assert _fields(exc) == {"rerun_of"}


# ---------------------------------------------------------------------------------- retention


def test_retention_settings_defaults_and_bounds():
    settings = load_settings({})

    assert settings.run_retention_days == 30
    assert settings.retention_schedule == DEFAULT_RETENTION_SCHEDULE
    assert load_settings({"RUN_RETENTION_DAYS": "0"}).run_retention_days == 0
    with pytest.raises(SettingsError, match="RUN_RETENTION_DAYS"):
        load_settings({"RUN_RETENTION_DAYS": "-1"})
    with pytest.raises(SettingsError, match="RETENTION_SCHEDULE"):
        load_settings({"RETENTION_SCHEDULE": "daily"})


def test_the_retention_timer_indexes_the_setting_only_when_it_is_set_and_valid():
    assert retention_schedule_binding({}) == DEFAULT_RETENTION_SCHEDULE
    assert retention_schedule_binding({"RETENTION_SCHEDULE": "0 0 4 * * *"}) == (
        "%RETENTION_SCHEDULE%"
    )
    assert retention_schedule_binding({"RETENTION_SCHEDULE": "daily"}) == (
        DEFAULT_RETENTION_SCHEDULE
    )


def test_the_retention_cutoff_is_whole_days_back():
    now = datetime(2026, 11, 30, 3, 30, tzinfo=UTC)

    assert retention_cutoff(now, 30) == datetime(2026, 10, 31, 3, 30, tzinfo=UTC)
    assert retention_cutoff(now, 0) == now
