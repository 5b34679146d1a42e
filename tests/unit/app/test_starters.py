"""The HTTP, blob and timer starters, called through ``.build().get_user_function()``.

Real ``func.HttpRequest`` / ``func.InputStream`` / ``func.TimerRequest`` objects; the Durable
client is the SDK's own class with its network calls replaced (tests/unit/app/fake_client.py).
"""

import asyncio
import json
from datetime import UTC, datetime

import azure.functions as func
import pytest

from tests.unit.app.conftest import ENDPOINT
from triggers import blob_start, http_runs, schedule_start

GOOD_BODY = {
    "endpoint_input_uri": "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/",
    "endpoint_input_type": "UriFolder",
    "poll_interval": 60,
}


def _call(decorated, *args):
    fn = decorated.build().get_user_function().client_function
    return asyncio.run(fn(*args))


def _post(body, *, headers=None, url="http://127.0.0.1:7071/api/runs", raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    return func.HttpRequest(
        method="POST",
        url=url,
        body=data,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _get(instance_id, suffix=""):
    return func.HttpRequest(
        method="GET" if not suffix else "POST",
        url=f"http://127.0.0.1:7071/api/runs/{instance_id}{suffix}",
        body=b"",
        route_params={"instance_id": instance_id},
    )


def _json(resp: func.HttpResponse):
    return json.loads(resp.get_body())


# --- POST /api/runs -------------------------------------------------------------------------


@pytest.mark.usefixtures("app_settings")
def test_start_returns_202_with_the_run_links_and_starts_one_run(client):
    resp = _call(http_runs.start_run_http, _post(GOOD_BODY), client)

    assert resp.status_code == 202
    body = _json(resp)
    instance_id = body["id"]
    assert resp.headers["Location"] == body["runStatusUri"]
    assert body["runStatusUri"] == f"http://127.0.0.1:7071/api/runs/{instance_id}"
    assert body["cancelUri"] == f"http://127.0.0.1:7071/api/runs/{instance_id}/cancel"
    # No Durable management URL (they carry the extension's system key) is handed out.
    assert set(body) == {"id", "runStatusUri", "cancelUri"}
    assert "code=" not in resp.get_body().decode()
    assert len(client.started) == 1
    name, started_id, params = client.started[0]
    assert (name, started_id) == ("batch_endpoint_run", instance_id)
    assert params["endpoint_uri"] == ENDPOINT
    assert params["poll_interval"] == 60
    assert params["endpoint_input_type"] == "UriFolder"
    assert instance_id in params["endpoint_output_uri"]
    assert params["endpoint_output_uri"].startswith("azureml://datastores/")
    assert params["trigger"] == "http"


@pytest.mark.usefixtures("app_settings")
def test_start_with_non_json_body_is_400_naming_body(client):
    resp = _call(http_runs.start_run_http, _post(None, raw=b"{not json"), client)
    assert resp.status_code == 400
    assert _json(resp)["error"]["details"][0]["field"] == "body"
    assert client.started == []


@pytest.mark.usefixtures("app_settings")
def test_start_with_many_bad_fields_names_every_one_and_starts_nothing(client):
    body = {
        "endpoint_input_uri": "",
        "endpoint_input_type": "MLTable",
        "poll_interval": 1,
        "endpoint_output_uri": "azureml://datastores/ws/paths/out/",
        "surprise": 1,
    }
    resp = _call(http_runs.start_run_http, _post(body), client)

    assert resp.status_code == 400
    error = _json(resp)["error"]
    assert error["code"] == "InvalidRunRequest"
    fields = {d["field"] for d in error["details"]}
    assert {
        "endpoint_input_uri",
        "endpoint_input_type",
        "poll_interval",
        "endpoint_output_uri",
        "surprise",
    } <= fields
    assert client.started == []


@pytest.mark.usefixtures("app_settings")
def test_start_refuses_an_endpoint_outside_the_allowlist(client):
    body = {**GOOD_BODY, "endpoint_uri": "https://attacker.example.com/jobs"}
    resp = _call(http_runs.start_run_http, _post(body), client)
    assert resp.status_code == 400
    details = _json(resp)["error"]["details"]
    assert [d["field"] for d in details] == ["endpoint_uri"]
    assert "attacker.example.com" in details[0]["message"]
    assert client.started == []


@pytest.mark.usefixtures("app_settings")
def test_idempotency_key_returns_the_existing_run_and_starts_nothing_new(client):
    headers = {"Idempotency-Key": "nightly-2026-11-25"}
    first = _call(http_runs.start_run_http, _post(GOOD_BODY, headers=headers), client)
    second = _call(http_runs.start_run_http, _post(GOOD_BODY, headers=headers), client)

    assert first.status_code == second.status_code == 202
    assert _json(first)["id"] == _json(second)["id"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(client.started) == 1


@pytest.mark.usefixtures("app_settings")
def test_idempotency_key_race_lost_on_start_returns_the_winner(client):
    headers = {"Idempotency-Key": "race-1"}
    first = _call(http_runs.start_run_http, _post(GOOD_BODY, headers=headers), client)
    run_id = _json(first)["id"]
    # Simulate the other request winning between our get_status and start_new.
    client.instances.pop(run_id)
    client.fail_next_start = True
    original_get = client.get_status
    calls = {"n": 0}

    async def get_status(instance_id, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            client.add(run_id)
        return await original_get(instance_id, *a, **kw)

    client.get_status = get_status
    second = _call(http_runs.start_run_http, _post(GOOD_BODY, headers=headers), client)
    assert second.status_code == 202
    assert _json(second)["id"] == run_id
    assert len(client.started) == 1


@pytest.mark.usefixtures("app_settings")
@pytest.mark.parametrize("key", ["", "has space", "x" * 129, "semi;colon"])
def test_bad_idempotency_key_is_400_naming_the_header(client, key):
    resp = _call(
        http_runs.start_run_http, _post(GOOD_BODY, headers={"Idempotency-Key": key}), client
    )
    assert resp.status_code == 400
    assert _json(resp)["error"]["details"][0]["field"] == "Idempotency-Key"
    assert client.started == []


@pytest.mark.usefixtures("app_settings")
def test_start_failure_without_key_is_503_not_500(client):
    client.fail_next_start = True
    resp = _call(http_runs.start_run_http, _post(GOOD_BODY), client)
    assert resp.status_code == 503
    assert _json(resp)["error"]["code"] == "StartFailed"


def test_invalid_settings_are_reported_by_name(client, app_settings, monkeypatch):
    from batch_runs import get_settings

    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "soon")
    get_settings.cache_clear()
    resp = _call(http_runs.start_run_http, _post(GOOD_BODY), client)
    assert resp.status_code == 500
    assert "POLL_INTERVAL_SECONDS" in _json(resp)["error"]["message"]
    assert client.started == []


# --- GET /api/runs/{id} and cancel ----------------------------------------------------------


def test_get_unknown_run_is_404(client):
    resp = _call(http_runs.get_run_http, _get("nope"), client)
    assert resp.status_code == 404
    assert _json(resp)["error"]["code"] == "RunNotFound"


def test_get_rejects_a_malformed_id(client):
    resp = _call(http_runs.get_run_http, _get("bad id!"), client)
    assert resp.status_code == 400
    assert _json(resp)["error"]["details"][0]["field"] == "instance_id"


def test_get_completed_run_shows_job_and_output(client):
    output = {"job_name": "bs-1", "status": "Completed", "output_uri": "azureml://x/y.csv"}
    client.add(
        "r1",
        runtime_status="Completed",
        output=output,
        custom_status={
            "phase": "completed",
            "job_name": "bs-1",
            "job_status": "Completed",
            "polls": 7,
            "studio_url": "https://ml.azure.com/runs/bs-1",
        },
    )
    view = _json(_call(http_runs.get_run_http, _get("r1"), client))
    assert view["runtime_status"] == "Completed"
    assert view["job_name"] == "bs-1"
    assert view["job_status"] == "Completed"
    assert view["polls"] == 7
    assert view["studio_url"] == "https://ml.azure.com/runs/bs-1"
    assert view["output"] == output
    assert "error" not in view


def test_get_failed_run_shows_the_error(client):
    client.add("r2", runtime_status="Failed", output="Batch job bs-2 ended Failed: boom.")
    view = _json(_call(http_runs.get_run_http, _get("r2"), client))
    assert view["runtime_status"] == "Failed"
    assert view["error"] == "Batch job bs-2 ended Failed: boom."
    assert "output" not in view


def test_cancel_running_run_raises_the_cancel_event(client):
    client.add("r3", runtime_status="Running")
    resp = _call(http_runs.cancel_run_http, _get("r3", "/cancel"), client)
    assert resp.status_code == 202
    assert _json(resp)["cancel_requested"] is True
    assert [(i, e) for i, e, _ in client.events] == [("r3", "cancel")]


def test_cancel_finished_run_is_409_and_raises_nothing(client):
    client.add("r4", runtime_status="Completed")
    resp = _call(http_runs.cancel_run_http, _get("r4", "/cancel"), client)
    assert resp.status_code == 409
    assert _json(resp)["error"]["code"] == "RunNotActive"
    assert client.events == []


def test_cancel_unknown_run_is_404(client):
    resp = _call(http_runs.cancel_run_http, _get("ghost", "/cancel"), client)
    assert resp.status_code == 404


# --- blob trigger ---------------------------------------------------------------------------


def _blob(name="scoring-input/batch-1.csv", data=b"age,sex\n1,2\n", etag="0x8DC1"):
    return func.blob.InputStream(
        data=data,
        name=name,
        length=len(data),
        uri=f"https://acct.blob.core.windows.net/{name}?sv=2024&sig=SECRET",
        blob_properties={"ETag": etag} if etag else {},
    )


@pytest.mark.usefixtures("app_settings")
def test_blob_upload_starts_one_urifile_run_without_the_sas(client):
    _call(blob_start.start_run_on_blob, _blob(), client)

    assert len(client.started) == 1
    _, instance_id, params = client.started[0]
    assert instance_id.startswith("blob-")
    assert params["endpoint_input_type"] == "UriFile"
    expected = "https://acct.blob.core.windows.net/scoring-input/batch-1.csv"
    assert params["endpoint_input_uri"] == expected
    assert "SECRET" not in json.dumps(params)
    assert instance_id in params["endpoint_output_uri"]
    assert params["trigger"] == "blob"


@pytest.mark.usefixtures("app_settings")
def test_duplicate_blob_event_starts_nothing_but_a_new_version_does(client):
    _call(blob_start.start_run_on_blob, _blob(), client)
    _call(blob_start.start_run_on_blob, _blob(), client)
    assert len(client.started) == 1
    _call(blob_start.start_run_on_blob, _blob(etag="0x8DC2"), client)
    assert len(client.started) == 2


@pytest.mark.usefixtures("app_settings")
def test_zero_byte_blob_is_skipped(client):
    _call(blob_start.start_run_on_blob, _blob(data=b""), client)
    assert client.started == []


def test_blob_without_endpoint_setting_fails_loudly_naming_it(client, app_settings, monkeypatch):
    from batch_runs import get_settings

    monkeypatch.delenv("BATCH_ENDPOINT_URI")
    get_settings.cache_clear()
    with pytest.raises(ValueError, match="BATCH_ENDPOINT_URI"):
        _call(blob_start.start_run_on_blob, _blob(), client)
    assert client.started == []


# --- timer trigger --------------------------------------------------------------------------


@pytest.mark.usefixtures("app_settings")
def test_schedule_starts_a_folder_run_with_a_slot_id(client):
    _call(schedule_start.start_run_on_schedule, func.timer.TimerRequest(past_due=False), client)
    assert len(client.started) == 1
    _, instance_id, params = client.started[0]
    assert instance_id.startswith("schedule-")
    assert params["endpoint_input_type"] == "UriFolder"
    assert params["endpoint_input_uri"].endswith("/heart-unlabeled/")
    assert params["trigger"] == "schedule"


@pytest.mark.usefixtures("app_settings")
def test_schedule_skips_while_the_previous_scheduled_run_is_active(client):
    client.add("schedule-20261125T020000Z", runtime_status="Running")
    _call(schedule_start.start_run_on_schedule, func.timer.TimerRequest(past_due=True), client)
    assert client.started == []


@pytest.mark.usefixtures("app_settings")
def test_schedule_runs_again_once_the_previous_run_ended(client):
    client.add("schedule-20261125T020000Z", runtime_status="Completed")
    _call(schedule_start.start_run_on_schedule, func.timer.TimerRequest(past_due=False), client)
    assert len(client.started) == 1


def test_schedule_without_input_setting_is_skipped(client, app_settings, monkeypatch):
    from batch_runs import get_settings

    monkeypatch.delenv("SCHEDULED_INPUT_URI")
    get_settings.cache_clear()
    _call(schedule_start.start_run_on_schedule, func.timer.TimerRequest(past_due=False), client)
    assert client.started == []


# Every parameter of the design's table, each with a bad value: a 400 that names it.
BAD_PARAMETERS = [
    ("endpoint_uri", "ftp://heart.westeurope.inference.ml.azure.com/jobs"),
    ("endpoint_uri", "https://heart.westeurope.inference.ml.azure.com/score"),
    ("endpoint_uri", "https://evil.example.com/jobs"),
    ("endpoint_input_uri", None),
    ("endpoint_input_uri", "/home/me/data.csv"),
    ("endpoint_input_uri", "https://acct.blob.core.windows.net/c/d?sig=secret"),
    ("endpoint_input_type", "MLTable"),
    ("endpoint_output_uri", "https://acct.blob.core.windows.net/c/out.csv"),
    ("endpoint_output_uri", "azureml://datastores/workspaceblobstore/paths/out/"),
    ("poll_interval", 5),
    ("poll_interval", 99999),
    ("poll_interval", "soon"),
    ("poll_interval", True),
    ("timeout", 0),
    ("timeout", 10**9),
    ("deployment_name", "has spaces"),
    ("input_name", "1-bad"),
    ("output_name", "score-out"),
    ("mini_batch_size", 0),
    ("instance_count", -1),
    ("error_threshold", -2),
    ("max_retries", -1),
    ("retry_timeout", 0),
    ("output_file_name", "../escape.csv"),
    ("not_a_parameter", 1),
]


@pytest.mark.usefixtures("app_settings")
@pytest.mark.parametrize(("field", "value"), BAD_PARAMETERS)
def test_every_bad_parameter_is_a_400_naming_it(client, field, value):
    body = {**GOOD_BODY}
    if value is None:
        body.pop(field, None)
    else:
        body[field] = value
    resp = _call(http_runs.start_run_http, _post(body), client)

    assert resp.status_code == 400
    error = _json(resp)["error"]
    assert error["code"] == "InvalidRunRequest"
    details = {d["field"]: d["message"] for d in error["details"]}
    assert field in details
    assert details[field]  # a message says what is expected
    assert "secret" not in json.dumps(error)  # a SAS is never echoed back
    assert client.started == []


@pytest.mark.usefixtures("app_settings")
def test_two_fires_of_one_schedule_slot_start_one_run(client, monkeypatch):
    """A duplicate fire (a restart, a second host) a few seconds later is the same slot."""
    monkeypatch.setenv("SCORING_SCHEDULE", "0 0 2 * * *")
    from batch_runs import get_settings

    get_settings.cache_clear()
    fires = iter(
        [
            datetime(2026, 11, 25, 2, 0, 0, 40_000, tzinfo=UTC),
            datetime(2026, 11, 25, 2, 0, 3, 900_000, tzinfo=UTC),
        ]
    )

    class Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return next(fires)

    monkeypatch.setattr(schedule_start, "datetime", Clock)
    for _ in range(2):
        _call(schedule_start.start_run_on_schedule, func.timer.TimerRequest(past_due=False), client)

    assert [started[1] for started in client.started] == ["schedule-20261125T020000Z"]


@pytest.mark.usefixtures("app_settings")
def test_a_suspended_scheduled_run_also_blocks_the_next_slot(client):
    client.add("schedule-20261125T020000Z", runtime_status="Suspended")
    _call(schedule_start.start_run_on_schedule, func.timer.TimerRequest(past_due=False), client)

    assert client.started == []
