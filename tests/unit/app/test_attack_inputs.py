"""Bad-input attacks on the batch routes and the folder sources (security pass 3).

Each test first failed against the code it names; see the commit that added it."""

import asyncio
import json

import azure.functions as func
import pytest

from tests.unit.app.fake_client import FakeDurableClient
from triggers import http_batches

URL = "http://127.0.0.1:7071/api/batches"


def _call(decorated, *args):
    fn = decorated.build().get_user_function().client_function
    return asyncio.run(fn(*args))


def _get(batch_id: str, params: dict[str, str]) -> func.HttpRequest:
    return func.HttpRequest(
        method="GET",
        url=f"{URL}/{batch_id}",
        body=b"",
        route_params={"instance_id": batch_id},
        params=params,
    )


@pytest.mark.usefixtures("app_settings")
@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("children_from", "\u00b2"),  # SUPERSCRIPT TWO: str.isdigit() but int() refuses it
        ("children_top", "\u00b9"),
        ("children_from", "\u0661"),  # ARABIC-INDIC ONE: int() reads it, but it is no ASCII
        ("children_from", "1" * 5000),  # int() refuses more than 4300 digits
        ("children_top", "0" * 4000 + "5"),
        ("children_from", " 1"),
        ("children_top", "+5"),
    ],
)
def test_odd_paging_values_are_400_naming_the_parameter(
    client: FakeDurableClient, name: str, raw: str
):
    client.add("batch-x", name="batch_endpoint_batch", runtime_status="Running")
    resp = _call(http_batches.get_batch_http, _get("batch-x", {name: raw}), client)
    assert resp.status_code == 400, resp.get_body()
    assert json.loads(resp.get_body())["error"]["details"][0]["field"] == name


@pytest.fixture
def marker_mode(app_settings, monkeypatch: pytest.MonkeyPatch):
    from batch_runs import get_settings

    monkeypatch.setenv("SCORING_BLOB_MODE", "folder-marker")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _marker(name: str) -> func.blob.InputStream:
    return func.blob.InputStream(
        data=b"",
        name=name,
        length=0,
        uri=f"https://acct.blob.core.windows.net/{name}",
        blob_properties={"ETag": "0x1"},
    )


@pytest.mark.usefixtures("marker_mode")
@pytest.mark.parametrize("name", ["scoring-input/../_READY", "scoring-input/./_READY"])
def test_a_marker_in_a_dot_folder_is_refused_with_a_warning_not_retried(
    client: FakeDurableClient, caplog: pytest.LogCaptureFixture, name: str
):
    """``a/../_READY`` would score the container's parent: refused like a misplaced marker
    (a warning, nothing started), never an exception the host retries into the poison queue."""
    from triggers import blob_start

    caplog.set_level("WARNING")
    _call(blob_start.start_run_on_blob, _marker(name), client)
    assert client.started == []
    assert "is refused" in caplog.text


class _NoCancel:
    def __init__(self) -> None:
        self.cancelled: list[object] = []

    def cancel_job(self, job: object, *, workspace_id: str | None = None) -> None:
        self.cancelled.append(job)


@pytest.mark.usefixtures("app_settings")
@pytest.mark.parametrize(
    "endpoint",
    [
        "https://evil.example.com/jobs",
        "https://heart.westeurope.inference.ml.azure.com.evil.example/jobs",
        "http://heart.westeurope.inference.ml.azure.com/jobs",
        "https://heart.westeurope.inference.ml.azure.com@evil.example/jobs",
    ],
)
def test_reconcile_reads_and_cancels_nothing_on_an_endpoint_outside_the_allowlist(
    endpoint: str,
):
    """The endpoint of an ended run comes from its input (which the management API may have
    set to anything): the real client factory refuses it before any request or credential, and
    nothing is cancelled."""
    from datetime import UTC, datetime

    from batch_runs.clients import get_client
    from batch_runs.reconcile import ReconcileFailed, candidate_of, reconcile_job

    candidate = candidate_of(
        run_id="r1",
        runtime_status="Terminated",
        custom_status={"job_name": "bs-r", "job_status": "Running"},
        durable_input={"endpoint_uri": endpoint},
        default_endpoint=None,
    )
    assert candidate is not None
    assert candidate.endpoint_uri == endpoint
    jobs = _NoCancel()
    with pytest.raises(ReconcileFailed, match="bs-r failed"):
        reconcile_job(
            candidate,
            client_factory=get_client,
            jobs_client=lambda: jobs,  # type: ignore[arg-type,return-value]
            workspace_id=None,
            now=datetime(2026, 11, 30, tzinfo=UTC),
            by="reconcile_jobs",
        )
    assert jobs.cancelled == []
