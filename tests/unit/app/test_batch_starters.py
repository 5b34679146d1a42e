"""The batch routes and the folder-marker blob mode, with real Functions request objects and a
fake Durable client (network calls only; tests/unit/app/fake_client.py)."""

import asyncio
import json

import azure.functions as func
import pytest

from tests.unit.app.fake_client import FakeDurableClient
from triggers import blob_start, http_batches

DS = "azureml://datastores/workspaceblobstore/paths/"
URL = "http://127.0.0.1:7071/api/batches"


def _call(decorated, *args):
    fn = decorated.build().get_user_function().client_function
    return asyncio.run(fn(*args))


def _post(body, headers=None):
    return func.HttpRequest(
        method="POST", url=URL, body=json.dumps(body).encode(), headers=headers or {}
    )


def _route(batch_id, suffix="", params=None):
    return func.HttpRequest(
        method="POST" if suffix else "GET",
        url=f"{URL}/{batch_id}{suffix}",
        body=b"",
        route_params={"instance_id": batch_id},
        params=params or {},
    )


def _json(resp: func.HttpResponse):
    return json.loads(resp.get_body())


@pytest.mark.usefixtures("app_settings")
def test_start_batch_starts_the_parent_with_the_validated_batch(client: FakeDurableClient):
    resp = _call(
        http_batches.start_batch_http,
        _post({"inputs": [f"{DS}a.csv", f"{DS}b.csv"], "max_parallel_jobs": 2}),
        client,
    )
    assert resp.status_code == 202, resp.get_body()
    body = _json(resp)
    assert body["id"].startswith("batch-")
    assert resp.headers["Location"] == f"{URL}/{body['id']}"
    ((name, iid, payload),) = client.started
    assert (name, iid) == ("batch_endpoint_batch", body["id"])
    assert payload["batch"]["inputs"] == [f"{DS}a.csv", f"{DS}b.csv"]
    assert payload["batch"]["max_parallel_jobs"] == 2


@pytest.mark.usefixtures("app_settings")
def test_bad_batch_is_400_naming_the_field_and_starts_nothing(client: FakeDurableClient):
    resp = _call(http_batches.start_batch_http, _post({"inputs": ["nope"]}), client)
    assert resp.status_code == 400
    assert [d["field"] for d in _json(resp)["error"]["details"]] == ["inputs[0]"]
    assert client.started == []


@pytest.mark.usefixtures("app_settings")
def test_idempotency_key_returns_the_same_batch(client: FakeDurableClient):
    body = {"inputs": [f"{DS}a.csv"]}
    first = _call(http_batches.start_batch_http, _post(body, {"Idempotency-Key": "k1"}), client)
    again = _call(http_batches.start_batch_http, _post(body, {"Idempotency-Key": "k1"}), client)
    assert _json(first)["id"] == _json(again)["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(client.started) == 1


def _batch_with_children(client: FakeDurableClient, runtime: str = "Running") -> None:
    custom = {
        "phase": "running",
        "total": 3,
        "started_children": 2,
        "max_parallel_jobs": 2,
        "counts": {"pending": 1, "running": 1, "completed": 1, "failed": 0, "cancelled": 0},
    }
    client.add("batch-x", name="batch_endpoint_batch", runtime_status=runtime, custom_status=custom)
    client.add("batch-x:0", runtime_status="Completed", output={"status": "Completed"})
    client.add("batch-x:1", runtime_status="Running", custom_status={"phase": "waiting"})


@pytest.mark.usefixtures("app_settings")
def test_get_batch_shows_counts_and_a_page_of_child_views(client: FakeDurableClient):
    _batch_with_children(client)
    view = _json(_call(http_batches.get_batch_http, _route("batch-x"), client))
    assert view["counts"]["completed"] == 1
    assert [c["id"] for c in view["children"]] == ["batch-x:0", "batch-x:1"]
    assert view["children"][0]["output"] == {"status": "Completed"}
    assert view["children_next"] is None
    page = _call(
        http_batches.get_batch_http, _route("batch-x", params={"children_top": "1"}), client
    )
    assert _json(page)["children_next"] == 1
    bad = _call(
        http_batches.get_batch_http, _route("batch-x", params={"children_top": "0"}), client
    )
    assert bad.status_code == 400
    assert _json(bad)["error"]["details"][0]["field"] == "children_top"


@pytest.mark.usefixtures("app_settings")
def test_get_of_a_run_that_is_no_batch_is_404(client: FakeDurableClient):
    client.add("run-1")
    assert _call(http_batches.get_batch_http, _route("run-1"), client).status_code == 404


@pytest.mark.usefixtures("app_settings")
def test_cancel_raises_cancel_on_the_parent_and_on_every_active_child(
    client: FakeDurableClient, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(http_batches, "CANCEL_CONFIRM_SECONDS", 0.3)
    _batch_with_children(client)
    resp = _call(http_batches.cancel_batch_http, _route("batch-x", "/cancel"), client)
    assert resp.status_code == 202
    assert _json(resp)["children_cancelled"] == 1
    assert [(iid, name) for iid, name, _ in client.events] == [
        ("batch-x", "cancel"),
        ("batch-x:1", "cancel"),  # the completed child is left alone
    ]


@pytest.mark.usefixtures("app_settings")
def test_cancel_of_an_ended_batch_is_409(client: FakeDurableClient):
    _batch_with_children(client, runtime="Completed")
    resp = _call(http_batches.cancel_batch_http, _route("batch-x", "/cancel"), client)
    assert resp.status_code == 409
    assert client.events == []


# --- folder-marker blob mode -----------------------------------------------------------------


@pytest.fixture
def marker_mode(app_settings, monkeypatch: pytest.MonkeyPatch):
    from batch_runs import get_settings

    monkeypatch.setenv("SCORING_BLOB_MODE", "folder-marker")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _blob(name, data=b"", etag="0x1"):
    return func.blob.InputStream(
        data=data,
        name=name,
        length=len(data),
        uri=f"https://acct.blob.core.windows.net/{name}?sig=SECRET",
        blob_properties={"ETag": etag},
    )


@pytest.mark.usefixtures("marker_mode")
def test_a_marker_starts_one_folder_run_and_data_files_start_nothing(client, caplog):
    caplog.set_level("INFO")
    _call(blob_start.start_run_on_blob, _blob("scoring-input/day1/a.csv", b"x,y\n1,2\n"), client)
    assert client.started == []
    _call(blob_start.start_run_on_blob, _blob("scoring-input/day1/_READY"), client)
    _call(blob_start.start_run_on_blob, _blob("scoring-input/day1/_READY"), client)  # duplicate
    ((_, iid, params),) = client.started
    assert iid.startswith("folder-")
    assert params["endpoint_input_type"] == "UriFolder"
    assert params["endpoint_input_uri"] == "https://acct.blob.core.windows.net/scoring-input/day1/"
    assert "SECRET" not in json.dumps(params)
    _call(blob_start.start_run_on_blob, _blob("scoring-input/day1/_READY", etag="0x2"), client)
    assert len(client.started) == 2  # a rewritten marker scores the folder again


@pytest.mark.usefixtures("marker_mode")
@pytest.mark.parametrize("name", ["scoring-input/_READY", "scoring-input/a/b/_READY"])
def test_misplaced_markers_are_refused_with_a_warning(client, caplog, name):
    caplog.set_level("WARNING")
    _call(blob_start.start_run_on_blob, _blob(name), client)
    assert client.started == []
    assert "is refused" in caplog.text


class _ParentThatStartsOneMore(FakeDurableClient):
    """On the parent's cancel it confirms, having started one more child just before."""

    async def raise_event(
        self, instance_id, event_name, event_data=None, task_hub_name=None, connection_name=None
    ):
        await super().raise_event(instance_id, event_name, event_data)
        if instance_id == "batch-x":
            parent = self.instances["batch-x"]
            parent["customStatus"] = {
                **parent["customStatus"],
                "cancel_requested": True,
                "started_children": 3,
            }
            self.add("batch-x:2", runtime_status="Pending")


@pytest.mark.usefixtures("app_settings")
def test_cancel_also_reaches_a_child_started_just_before_the_parent_saw_it():
    client = _ParentThatStartsOneMore()
    _batch_with_children(client)
    resp = _call(http_batches.cancel_batch_http, _route("batch-x", "/cancel"), client)
    assert _json(resp)["children_cancelled"] == 2
    assert [iid for iid, _, _ in client.events] == ["batch-x", "batch-x:1", "batch-x:2"]
