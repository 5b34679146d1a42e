"""BatchEndpointClient against a real local HTTP server (scripted per test)."""

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from batch_endpoint import (
    ARM_CANCEL_API_VERSION,
    AuthError,
    BatchEndpointClient,
    BatchJob,
    ClientError,
    ConflictError,
    HostNotAllowedError,
    HttpError,
    JobStatus,
    NotFoundError,
    RetryableHttpError,
    RetryPolicy,
    StaticTokenProvider,
    TransportError,
    WorkspaceJobsClient,
)
from batch_runs import get_settings, load_settings, parse_run_request
from batch_runs.clients import get_client, get_session
from tests.integration.client.scripted_server import Reply, ScriptedServer
from tests.support import free_port

pytestmark = pytest.mark.integration

TOKEN = "data-plane-token-abc"
ARM_TOKEN = "arm-token-xyz"
JOB_PATH = "/endpoints/heart/jobs"
ARM_ID = (
    "/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.MachineLearningServices"
    "/workspaces/ws-1/jobs/batchjob-1"
)


class CountingTokens:
    """A token provider that counts how often a token was handed out."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.calls = 0

    def get_token(self) -> str:
        self.calls += 1
        return self.token


def camel_job(name: str = "batchjob-1", status: str = "NotStarted") -> dict[str, Any]:
    return {
        "id": ARM_ID.replace("batchjob-1", name),
        "name": name,
        "properties": {
            "status": status,
            "inputData": {
                "input_data": {
                    "jobInputType": "UriFolder",
                    "uri": "azureml://datastores/d/paths/in/",
                }
            },
            "outputData": {
                "score": {"jobOutputType": "UriFile", "uri": "azureml://datastores/d/paths/o.csv"}
            },
            "interactionEndpoints": {"Studio": {"endpoint": f"https://ml.azure.com/runs/{name}"}},
        },
    }


def pascal_job(name: str = "batchjob-1", status: str = "Queued") -> dict[str, Any]:
    return {
        "Id": ARM_ID.replace("batchjob-1", name),
        "Name": name,
        "Properties": {
            "Status": status,
            "OutputData": {
                "score": {"JobOutputType": "UriFile", "Uri": "azureml://datastores/d/paths/p.csv"}
            },
        },
    }


class Harness:
    """Builds clients for the scripted server and records injected sleeps."""

    def __init__(self, server: ScriptedServer, session: requests.Session) -> None:
        self.server = server
        self.session = session
        self.sleeps: list[float] = []
        self.now = 0.0
        self.endpoint = f"{server.base_url}{JOB_PATH}"
        settings = load_settings({"BATCH_ENDPOINT_ALLOWED_HOSTS": "127.0.0.1"})
        self.run_request = parse_run_request(
            {
                "endpoint_uri": self.endpoint,
                "endpoint_input_uri": "azureml://datastores/workspaceblobstore/paths/heart/",
            },
            settings,
            run_id="run-1",
            now=datetime(2026, 11, 25, tzinfo=UTC),
        )
        self.request = self.run_request.to_invocation()

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds  # the fake clock advances only by (fake) sleeps

    def policy(self, max_attempts: int = 3, budget_seconds: float = 60.0) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=max_attempts,
            budget_seconds=budget_seconds,
            sleep=self.sleep,
            rng=lambda: 0.5,
            clock=lambda: self.now,
        )

    def client(
        self, *, max_attempts: int = 3, retry_budget_seconds: float = 60.0, **overrides: Any
    ) -> BatchEndpointClient:
        options: dict[str, Any] = {
            "session": self.session,
            "allowed_hosts": ["127.0.0.1"],
            "timeout": (2.0, 5.0),
            "retry_policy": self.policy(max_attempts, retry_budget_seconds),
        }
        options.update(overrides)
        tokens = options.pop("token_provider", StaticTokenProvider(TOKEN))
        return BatchEndpointClient(options.pop("endpoint", self.endpoint), tokens, **options)

    def jobs_client(self) -> WorkspaceJobsClient:
        return WorkspaceJobsClient(
            self.server.base_url,
            StaticTokenProvider(ARM_TOKEN),
            session=self.session,
            timeout=(2.0, 5.0),
            retry_policy=self.policy(),
        )


@pytest.fixture
def h(server: ScriptedServer, session: requests.Session) -> Harness:
    return Harness(server, session)


def test_invoke_200_camel_case_sends_the_expected_request(h: Harness) -> None:
    h.server.push(Reply(200, camel_job()))

    job = h.client().invoke(h.request)

    assert job.name == "batchjob-1"
    assert job.status is JobStatus.NOT_STARTED
    assert job.studio_url == "https://ml.azure.com/runs/batchjob-1"
    [seen] = h.server.requests
    assert (seen.method, seen.path) == ("POST", JOB_PATH)
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["repeatability_request-id"]
    assert seen.headers["x-ms-client-request-id"] == seen.headers["repeatability_request-id"]
    assert "azureml-model-deployment" not in seen.headers
    assert seen.json() == h.request.body(None)


def test_invoke_201_pascal_case(h: Harness) -> None:
    h.server.push(Reply(201, pascal_job(status="Queued")))

    job = h.client().invoke(h.request)

    assert job.status is JobStatus.QUEUED
    assert job.output_uri == "azureml://datastores/d/paths/p.csv"
    assert job.id.endswith("/jobs/batchjob-1")


def test_deployment_header_is_sent(h: Harness) -> None:
    request = parse_run_request(
        {**h.run_request.to_dict(), "deployment_name": "classifier-xgboost"},
        load_settings({"BATCH_ENDPOINT_ALLOWED_HOSTS": "127.0.0.1"}),
        run_id="run-1",
        now=datetime.now(UTC),
    )
    h.server.push(Reply(200, camel_job()))

    h.client().invoke(request.to_invocation())

    assert h.server.requests[0].headers["azureml-model-deployment"] == "classifier-xgboost"


def test_invoke_with_job_name_looks_up_then_posts_with_the_name(h: Harness) -> None:
    h.server.push(
        Reply(404, {"error": {"code": "NotFound", "message": "no job"}}),
        Reply(200, camel_job("bs-abc")),
    )

    job = h.client().invoke(h.request, job_name="bs-abc", request_id="rid-1")

    assert job.name == "bs-abc"
    get, post = h.server.requests
    assert (get.method, get.path) == ("GET", f"{JOB_PATH}/bs-abc")
    assert post.method == "POST"
    assert post.json()["properties"]["Name"] == "bs-abc"
    assert post.headers["repeatability_request-id"] == "rid-1"


def test_invoke_with_existing_job_name_returns_it_without_posting(h: Harness) -> None:
    h.server.push(Reply(200, camel_job("bs-abc", "Running")))

    job = h.client().invoke(h.request, job_name="bs-abc")

    assert job.status is JobStatus.RUNNING
    assert [r.method for r in h.server.requests] == ["GET"]


def test_ambiguous_post_timeout_finds_the_job_instead_of_resubmitting(h: Harness) -> None:
    h.server.push(
        Reply(404, {"error": {"code": "NotFound", "message": "no job"}}),
        Reply(200, camel_job("bs-abc"), delay=5.0),  # created, but the answer is too late
        Reply(200, camel_job("bs-abc", "Queued")),
    )

    job = h.client(timeout=(2.0, 0.2)).invoke(h.request, job_name="bs-abc")

    assert job.status is JobStatus.QUEUED
    assert [r.method for r in h.server.requests] == ["GET", "POST", "GET"]
    assert len(h.sleeps) == 1


def test_conflict_with_job_name_reads_the_existing_job(h: Harness) -> None:
    h.server.push(
        Reply(404, {"error": {"code": "NotFound", "message": "no job"}}),
        Reply(409, {"error": {"code": "Conflict", "message": "job exists"}}),
        Reply(200, camel_job("bs-abc", "Preparing")),
    )

    job = h.client().invoke(h.request, job_name="bs-abc")

    assert job.status is JobStatus.PREPARING
    assert [r.method for r in h.server.requests] == ["GET", "POST", "GET"]


def test_conflict_without_job_name_raises(h: Harness) -> None:
    h.server.push(Reply(409, {"error": {"code": "Conflict", "message": "duplicate"}}))

    with pytest.raises(ConflictError) as caught:
        h.client().invoke(h.request)

    assert caught.value.status == 409
    assert not caught.value.retryable


@pytest.mark.parametrize("status", [401, 403])
def test_auth_failures_are_not_retried(h: Harness, status: int) -> None:
    h.server.push(
        Reply(
            status,
            {"error": {"code": "Unauthorized", "message": "Audience not allowed"}},
            headers={"x-ms-request-id": "req-42"},
        )
    )

    with pytest.raises(AuthError) as caught:
        h.client().invoke(h.request)

    error = caught.value
    assert (error.status, error.code, error.request_id) == (status, "Unauthorized", "req-42")
    assert "Audience not allowed" in str(error)
    assert TOKEN not in str(error)
    assert len(h.server.requests) == 1
    assert h.sleeps == []


def test_get_job_404_is_not_found(h: Harness) -> None:
    h.server.push(Reply(404, {"error": {"code": "UserError", "message": "Job nope not found"}}))

    with pytest.raises(NotFoundError, match="Job nope not found"):
        h.client().get_job("nope")

    assert h.server.requests[0].path == f"{JOB_PATH}/nope"


def test_client_error_with_non_json_body_keeps_raw_text(h: Harness) -> None:
    h.server.push(Reply(400, "x" * 2000))

    with pytest.raises(ClientError) as caught:
        h.client().invoke(h.request)

    assert caught.value.code is None
    assert len(caught.value.message) <= 500
    assert caught.value.message.startswith("xxx")


def test_429_retry_after_is_honoured(h: Harness) -> None:
    h.server.push(
        Reply(
            429,
            {"error": {"code": "TooManyRequests", "message": "slow"}},
            headers={"Retry-After": "7"},
        ),
        Reply(200, camel_job()),
    )

    job = h.client().invoke(h.request)

    assert job.name == "batchjob-1"
    assert h.sleeps == [7.0]
    assert len(h.server.requests) == 2


def test_5xx_then_success_with_jittered_backoff(h: Harness) -> None:
    h.server.push(
        Reply(500, "oops"),
        Reply(503, {"error": {"code": "Busy", "message": "b"}}),
        Reply(200, camel_job(status="Running")),
    )

    job = h.client().get_job("batchjob-1")

    assert job.status is JobStatus.RUNNING
    assert h.sleeps == [0.5, 1.0]  # rng 0.5 x (1, 2)
    assert len(h.server.requests) == 3


def test_gives_up_after_max_attempts(h: Harness) -> None:
    h.server.push(*[Reply(503, {"error": {"code": "Unavailable", "message": "down"}})] * 5)

    with pytest.raises(RetryableHttpError) as caught:
        h.client(max_attempts=3).get_job("batchjob-1")

    assert caught.value.status == 503
    assert caught.value.retryable
    assert len(h.server.requests) == 3
    assert len(h.sleeps) == 2


def test_gives_up_when_the_retry_budget_would_be_exceeded(h: Harness) -> None:
    busy = Reply(
        429, {"error": {"code": "Throttled", "message": "x"}}, headers={"Retry-After": "50"}
    )
    h.server.push(busy, busy, busy)

    with pytest.raises(RetryableHttpError):
        h.client(max_attempts=5, retry_budget_seconds=60.0).get_job("batchjob-1")

    assert h.sleeps == [50.0]
    assert len(h.server.requests) == 2


def test_read_timeout_becomes_transport_error_after_retries(h: Harness) -> None:
    h.server.push(Reply(200, camel_job(), delay=5.0), Reply(200, camel_job(), delay=5.0))

    with pytest.raises(TransportError, match="timed out") as caught:
        h.client(timeout=(2.0, 0.2), max_attempts=2).get_job("batchjob-1")

    assert caught.value.retryable
    assert len(h.server.requests) == 2
    assert len(h.sleeps) == 1


def test_connection_refused_is_a_transport_error(h: Harness) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}{JOB_PATH}"

    with pytest.raises(TransportError):
        h.client(endpoint=endpoint, max_attempts=2).get_job("j")

    assert len(h.sleeps) == 1


def test_unknown_status_strings_map_to_unknown(h: Harness) -> None:
    h.server.push(
        Reply(200, camel_job(status="Exploding")), Reply(200, {"name": "j", "status": None})
    )
    client = h.client()

    assert client.get_job("batchjob-1").status is JobStatus.UNKNOWN
    assert client.get_job("j").status is JobStatus.UNKNOWN


def test_same_repeatability_id_across_retries_and_new_id_per_call(h: Harness) -> None:
    h.server.push(Reply(503, "busy"), Reply(200, camel_job()), Reply(200, camel_job()))
    client = h.client()

    client.invoke(h.request)
    client.invoke(h.request)

    ids = [r.headers["repeatability_request-id"] for r in h.server.requests]
    assert ids[0] == ids[1]
    assert ids[2] != ids[0]


def test_token_never_requested_or_sent_for_a_host_not_allowed(h: Harness) -> None:
    tokens = CountingTokens(TOKEN)

    with pytest.raises(HostNotAllowedError, match=r"127\.0\.0\.1"):
        h.client(token_provider=tokens, allowed_hosts=["*.inference.ml.azure.com"])
    with pytest.raises(HostNotAllowedError):
        h.client(token_provider=tokens, allowed_hosts=["127.0.0.1:1"])

    assert tokens.calls == 0
    assert h.server.requests == []


def test_constructor_validates_uri_before_tokens(h: Harness) -> None:
    tokens = CountingTokens(TOKEN)

    with pytest.raises(ValueError, match="/jobs"):
        h.client(token_provider=tokens, endpoint=f"{h.server.base_url}/score")
    with pytest.raises(ValueError, match="max_attempts"):
        h.client(max_attempts=0)
    with pytest.raises(ValueError, match="arm_endpoint"):
        WorkspaceJobsClient("http://management.example.com", tokens)

    assert tokens.calls == 0


def test_redirects_are_not_followed(h: Harness) -> None:
    h.server.push(Reply(302, "", headers={"Location": "http://127.0.0.1:1/steal"}))

    with pytest.raises(HttpError) as caught:
        h.client().get_job("batchjob-1")

    assert caught.value.status == 302
    assert not caught.value.retryable
    assert len(h.server.requests) == 1


def test_success_without_a_json_job_is_an_unexpected_response(h: Harness) -> None:
    h.server.push(Reply(200, "<html>proxy</html>"))

    with pytest.raises(HttpError, match="UnexpectedResponse"):
        h.client().get_job("batchjob-1")


@pytest.mark.parametrize("name", ["", "a/b", "a?b", "a#b", "..", "has space"])
def test_get_job_validates_the_name(h: Harness, name: str) -> None:
    with pytest.raises(ValueError, match="job name"):
        h.client().get_job(name)

    assert h.server.requests == []


def test_cancel_job_posts_to_arm_with_the_arm_token(h: Harness) -> None:
    h.server.push(Reply(202, "", headers={"Location": "/op", "Retry-After": "10"}))
    job = BatchJob(name="batchjob-1", id=ARM_ID, status=JobStatus.RUNNING)

    h.jobs_client().cancel_job(job)

    [seen] = h.server.requests
    assert seen.method == "POST"
    assert seen.path == f"{ARM_ID}/cancel?api-version={ARM_CANCEL_API_VERSION}"
    assert seen.headers["authorization"] == f"Bearer {ARM_TOKEN}"
    assert h.sleeps == []


def test_cancel_uses_the_workspace_jobs_route_for_other_id_shapes(h: Harness) -> None:
    h.server.push(Reply(200, {}))
    workspace = ARM_ID.rsplit("/jobs/", 1)[0]
    job = BatchJob(
        name="batchjob-9",
        id=f"{workspace}/batchEndpoints/heart/jobs/batchjob-9",
        status=JobStatus.RUNNING,
    )

    h.jobs_client().cancel_job(job)

    assert h.server.requests[0].path == (
        f"{workspace}/jobs/batchjob-9/cancel?api-version={ARM_CANCEL_API_VERSION}"
    )


def test_cancel_job_404_and_bad_ids(h: Harness) -> None:
    h.server.push(Reply(404, {"error": {"code": "NotFound", "message": "gone"}}))
    client = h.jobs_client()

    with pytest.raises(NotFoundError):
        client.cancel_job(BatchJob(name="batchjob-1", id=ARM_ID, status=JobStatus.RUNNING))
    with pytest.raises(ValueError, match="AML_WORKSPACE_ID"):
        client.cancel_job(
            BatchJob(name="j", id="/endpoints/heart/jobs/j", status=JobStatus.RUNNING)
        )

    assert len(h.server.requests) == 1


def test_cancel_is_retried_on_5xx(h: Harness) -> None:
    h.server.push(Reply(500, "x"), Reply(200, {}))

    h.jobs_client().cancel_job(BatchJob(name="batchjob-1", id=ARM_ID, status=JobStatus.RUNNING))

    assert len(h.server.requests) == 2


def test_logs_never_contain_the_token(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h.server.push(
        Reply(503, "busy"), Reply(401, {"error": {"code": "Unauthorized", "message": "no"}})
    )
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AuthError):
        h.client().invoke(h.request)

    assert "retrying" in caplog.text
    assert "failed" in caplog.text
    assert TOKEN not in caplog.text
    assert "Bearer" not in caplog.text


def test_get_client_builds_from_settings_and_caches(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = f"{server.base_url}{JOB_PATH}"
    monkeypatch.setenv("BATCH_ENDPOINT_AUTH", "none")
    monkeypatch.setenv("BATCH_ENDPOINT_ALLOWED_HOSTS", f"127.0.0.1:{server.port}")
    get_settings.cache_clear()
    get_client.cache_clear()
    server.push(Reply(200, camel_job(status="Completed")))
    try:
        client = get_client(endpoint)
        job = client.get_job("batchjob-1")
        same = get_client(endpoint)
        shared_twice = (get_session(), get_session())
        with pytest.raises(HostNotAllowedError):
            get_client("http://127.0.0.1:1/jobs")
    finally:
        get_settings.cache_clear()
        get_client.cache_clear()
        get_session().close()  # drop the pooled keep-alive socket to the stopped server
        get_session.cache_clear()

    assert job.status is JobStatus.COMPLETED
    assert same is client
    assert server.requests[0].headers["authorization"] == "Bearer local-dev"
    assert shared_twice[0] is shared_twice[1]
    assert client._pipeline._session is shared_twice[0]


WORKSPACE = ARM_ID.rsplit("/jobs/", 1)[0]


def test_invoke_adopts_the_job_a_search_finds_before_submitting(h: Harness) -> None:
    found = BatchJob(name="guid-1", id="guid-1", status=JobStatus.RUNNING)

    job = h.client().invoke(h.request, find_existing=lambda: found)

    assert job is found
    assert h.server.requests == []  # nothing was posted


def test_invoke_searches_again_after_an_ambiguous_attempt_and_adopts(h: Harness) -> None:
    searches: list[int] = []
    created = BatchJob(name="guid-7", id="guid-7", status=JobStatus.QUEUED)

    def find() -> BatchJob | None:
        searches.append(1)
        return created if len(searches) > 1 else None  # the first POST did create it

    h.server.push(Reply(503, {"error": {"code": "ServiceUnavailable", "message": "busy"}}))

    job = h.client().invoke(h.request, find_existing=find)

    assert job is created
    assert len(searches) == 2
    assert [r.method for r in h.server.requests] == ["POST"]  # never posted twice


def test_a_failing_first_search_does_not_block_the_submit(h: Harness) -> None:
    def find() -> BatchJob | None:
        raise AuthError(403, "AuthorizationFailed", "no list permission")

    h.server.push(Reply(201, camel_job("guid-2")))

    job = h.client().invoke(h.request, find_existing=find)

    assert job.name == "guid-2"


def test_find_jobs_filters_on_properties_and_follows_next_links(h: Harness) -> None:
    base = h.server.base_url
    h.server.push(
        Reply(200, {"value": [camel_job("a")], "nextLink": f"{base}{WORKSPACE}/jobs?page=2"}),
        Reply(200, {"value": [camel_job("b")]}),
    )

    jobs = list(
        h.jobs_client().find_jobs(workspace_id=WORKSPACE, properties={"batch_run_key": "bs-1"})
    )

    assert [j.name for j in jobs] == ["a", "b"]
    first, second = h.server.requests
    assert first.path.startswith(f"{WORKSPACE}/jobs?api-version=")
    assert "properties=batch_run_key%3Dbs-1" in first.path
    assert second.path == f"{WORKSPACE}/jobs?page=2"
    assert first.headers["authorization"] == f"Bearer {ARM_TOKEN}"


def test_a_next_link_off_the_arm_host_is_refused(h: Harness) -> None:
    h.server.push(Reply(200, {"value": [], "nextLink": "https://evil.example.com/steal"}))

    with pytest.raises(HostNotAllowedError, match="nextLink"):
        list(h.jobs_client().find_jobs(workspace_id=WORKSPACE))

    assert len(h.server.requests) == 1


def test_cancel_uses_the_configured_workspace_when_the_job_id_has_none(h: Harness) -> None:
    h.server.push(Reply(202, ""))
    job = BatchJob(name="guid-3", id="guid-3", status=JobStatus.RUNNING)

    h.jobs_client().cancel_job(job, workspace_id=WORKSPACE)

    assert h.server.requests[0].path == (
        f"{WORKSPACE}/jobs/guid-3/cancel?api-version={ARM_CANCEL_API_VERSION}"
    )
    with pytest.raises(ValueError, match="AML_WORKSPACE_ID"):
        h.jobs_client().cancel_job(job)


# ------------------------------------------------------------------ hostile answers (attack pass)


def test_an_answer_over_the_size_cap_is_refused_not_buffered(h: Harness) -> None:
    h.server.push(Reply(200, b"x" * (5 * 1024 * 1024)))

    with pytest.raises(HttpError, match="ResponseTooLarge"):
        h.client().get_job("batchjob-1")


def test_a_deeply_nested_answer_is_an_unexpected_response_not_a_crash(h: Harness) -> None:
    h.server.push(Reply(200, b"[" * 200_000), Reply(400, b'{"error": ' + b"[" * 200_000))

    with pytest.raises(HttpError, match="UnexpectedResponse"):
        h.client().get_job("batchjob-1")
    with pytest.raises(ClientError):
        h.client().get_job("batchjob-1")


def test_a_job_name_that_is_not_a_plain_name_is_refused(h: Harness) -> None:
    evil = camel_job("bs-x\n[2026-11-30] FAKE: admin logged in\u202e")
    h.server.push(Reply(200, evil))

    with pytest.raises(HttpError, match="UnexpectedResponse"):
        h.client().get_job("batchjob-1")


def test_a_studio_link_elsewhere_than_azure_ml_studio_is_dropped() -> None:
    job = BatchJob.from_response(
        {
            "name": "j",
            "properties": {
                "status": "Running",
                "interactionEndpoints": {
                    "Studio": {"endpoint": "javascript:alert(1)//ml.azure.com"}
                },
            },
        }
    )
    ok = BatchJob.from_response(
        {
            "name": "j",
            "properties": {
                "status": "Running",
                "interactionEndpoints": {
                    "Studio": {"endpoint": "https://ml.azure.com/runs/j?wsid=/subscriptions/s"}
                },
            },
        }
    )

    assert job.studio_url is None
    assert ok.studio_url == "https://ml.azure.com/runs/j?wsid=/subscriptions/s"


def test_service_error_text_is_redacted_before_it_reaches_a_message(h: Harness) -> None:
    text = (
        f"you sent Bearer {TOKEN}; mount wasbs://c@a.blob.core.windows.net/x?sv=1&sig=S3KR1T "
        "and eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl code=abc " + "http://" * 50_000
    )
    h.server.push(Reply(400, {"error": {"code": "BadRequest", "message": text}}))

    with pytest.raises(ClientError) as caught:
        h.client().get_job("batchjob-1")

    message = str(caught.value)
    for secret in (TOKEN, "S3KR1T", "eyJhbGciOiJIUzI1NiJ9", "code=abc"):
        assert secret not in message
    assert "wasbs://c@a.blob.core.windows.net/x" in message
    assert len(message) < 800
