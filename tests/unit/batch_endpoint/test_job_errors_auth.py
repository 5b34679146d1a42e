"""BatchJob parsing, the error tree's dicts and messages, and token caching/factories."""

import threading
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from batch_endpoint import (
    DEV_TOKEN,
    AuthError,
    BatchEndpointError,
    BatchJob,
    ClientError,
    ConflictError,
    CredentialTokenProvider,
    HostNotAllowedError,
    HttpError,
    JobStatus,
    NotFoundError,
    RetryableHttpError,
    StaticTokenProvider,
    TransportError,
    redact_url,
)
from batch_runs import load_settings
from batch_runs.clients import create_token_provider

JOB_ID = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices"
    "/workspaces/ws/jobs/batchjob-123"
)
CAMEL = {
    "id": JOB_ID,
    "name": "batchjob-123",
    "type": "Microsoft.MachineLearningServices/workspaces/jobs",
    "properties": {
        "status": "Running",
        "inputData": {
            "heart_data": {"jobInputType": "UriFolder", "uri": "azureml://datastores/d/paths/in/"}
        },
        "outputData": {
            "score": {"jobOutputType": "UriFile", "uri": "azureml://datastores/d/paths/o.csv"}
        },
        "interactionEndpoints": {
            "Studio": {"endpoint": "https://ml.azure.com/runs/batchjob-123?wsid=x"}
        },
    },
    "systemData": {"createdAt": "2026-11-25T06:00:00Z"},
}
PASCAL = {
    "Id": JOB_ID,
    "Properties": {
        "Status": "FAILED",
        "InputData": {
            "x": {
                "JobInputType": "UriFile",
                "Uri": "https://a.blob.core.windows.net/c/f.csv?sig=SECRET",
            }
        },
        "OutputData": {
            "y": {"JobOutputType": "UriFile", "Uri": "azureml://datastores/d/paths/p.csv"}
        },
        "InteractionEndpoints": {"studio": {"Endpoint": "https://ml.azure.com/runs/batchjob-123"}},
        "Error": {"Message": "Dataset initialization failed"},
    },
    "SystemData": {"CreatedAt": "2026-11-25T07:00:00Z"},
}


def test_from_response_camel_case() -> None:
    job = BatchJob.from_response(CAMEL)

    assert job.name == "batchjob-123"
    assert job.id == JOB_ID
    assert job.status is JobStatus.RUNNING
    assert job.studio_url == "https://ml.azure.com/runs/batchjob-123?wsid=x"
    assert job.input_uri == "azureml://datastores/d/paths/in/"
    assert job.output_uri == "azureml://datastores/d/paths/o.csv"
    assert job.error_message is None
    assert job.created_at == "2026-11-25T06:00:00Z"
    assert not job.is_final


def test_from_response_pascal_case_name_from_id_and_redaction() -> None:
    job = BatchJob.from_response(PASCAL)

    assert job.name == "batchjob-123"
    assert job.status is JobStatus.FAILED
    assert job.is_final
    assert job.studio_url == "https://ml.azure.com/runs/batchjob-123"
    assert job.input_uri == "https://a.blob.core.windows.net/c/f.csv"
    assert job.error_message == "Dataset initialization failed"
    assert job.created_at == "2026-11-25T07:00:00Z"


def test_from_response_top_level_status_and_error_message_and_unknown() -> None:
    top = BatchJob.from_response({"name": "j", "status": "Completed"})
    msg = BatchJob.from_response(
        {"name": "j", "properties": {"status": "Exploded", "errorMessage": "boom"}}
    )

    assert top.status is JobStatus.COMPLETED
    assert top.id == ""
    assert msg.status is JobStatus.UNKNOWN
    assert msg.error_message == "boom"


@pytest.mark.parametrize("payload", [{}, {"properties": {"status": "Running"}}, [], "x", None])
def test_from_response_without_name_or_id_raises(payload: object) -> None:
    with pytest.raises(ValueError, match="job response"):
        BatchJob.from_response(payload)


def test_job_dict_round_trip_is_json_able() -> None:
    job = BatchJob.from_response(CAMEL)

    data = job.to_dict()

    assert data["status"] == "Running"
    assert BatchJob.from_dict(data) == job
    with pytest.raises(ValueError, match="name"):
        BatchJob.from_dict({"status": "Running"})


def test_error_tree_and_retryable_flags() -> None:
    assert TransportError("t").retryable
    assert RetryableHttpError(503, None, "busy").retryable
    assert not ClientError(400, "Bad", "bad").retryable
    assert issubclass(AuthError, ClientError)
    assert issubclass(NotFoundError, ClientError)
    assert issubclass(ConflictError, ClientError)
    assert issubclass(ClientError, HttpError)
    assert issubclass(HttpError, BatchEndpointError)
    assert not HostNotAllowedError("x.com").retryable


def test_http_error_str_and_dict() -> None:
    error = NotFoundError(404, "NotFound", "job missing", "req-1", host="ep.example.com")

    assert str(error) == "HTTP 404 NotFound from ep.example.com: job missing (request id req-1)"
    assert error.to_dict() == {
        "type": "NotFoundError",
        "message": str(error),
        "retryable": False,
        "status": 404,
        "code": "NotFound",
        "request_id": "req-1",
    }


def test_error_messages_strip_sas_query_strings() -> None:
    error = ClientError(
        400, "UserError", "cannot read https://a.blob.core.windows.net/c?sig=SECRET ok"
    )

    assert "SECRET" not in str(error)
    assert "https://a.blob.core.windows.net/c ok" in str(error)
    assert redact_url("https://u:pw@h.example.com/p?sig=1#f") == "https://h.example.com/p"


def test_retryable_http_error_dict_has_retry_after() -> None:
    data = RetryableHttpError(429, "TooMany", "slow down", retry_after=5.0).to_dict()

    assert data["retry_after"] == 5.0
    assert data["retryable"] is True
    assert data["type"] == "RetryableHttpError"


def test_host_not_allowed_names_host_and_setting() -> None:
    message = str(HostNotAllowedError("evil.example.com"))

    assert "evil.example.com" in message
    assert "BATCH_ENDPOINT_ALLOWED_HOSTS" in message


class FakeCredential:
    """Hand-written fake of azure-core's TokenCredential."""

    def __init__(self, lifetime: float, clock: list[float]) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.lifetime = lifetime
        self.clock = clock
        self.fail_with: Exception | None = None

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(scopes)
        if self.fail_with is not None:
            raise self.fail_with
        return AccessToken(f"token-{len(self.calls)}", int(self.clock[0] + self.lifetime))


def test_token_is_cached_until_five_minutes_before_expiry() -> None:
    now = [1_000_000.0]
    credential = FakeCredential(3600, now)
    provider = CredentialTokenProvider(
        credential, "https://ml.azure.com/.default", clock=lambda: now[0]
    )

    first = provider.get_token()
    now[0] += 3600 - 301
    still = provider.get_token()
    now[0] += 2
    refreshed = provider.get_token()

    assert (first, still, refreshed) == ("token-1", "token-1", "token-2")
    assert credential.calls == [("https://ml.azure.com/.default",)] * 2
    assert "token" not in repr(provider).replace("TokenProvider", "")


def test_token_cache_is_thread_safe() -> None:
    now = [0.0]
    credential = FakeCredential(3600, now)
    provider = CredentialTokenProvider(credential, "scope/.default", clock=lambda: now[0])
    results: list[str] = []

    threads = [
        threading.Thread(target=lambda: results.append(provider.get_token())) for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == ["token-1"] * 16
    assert len(credential.calls) == 1


def test_credential_failure_becomes_batch_endpoint_error() -> None:
    now = [0.0]
    credential = FakeCredential(3600, now)
    credential.fail_with = ClientAuthenticationError("IMDS unavailable")
    provider = CredentialTokenProvider(credential, "scope/.default", clock=lambda: now[0])

    with pytest.raises(BatchEndpointError, match="could not get an access token") as caught:
        provider.get_token()

    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, ClientAuthenticationError)


def test_static_provider_and_factory_for_auth_none() -> None:
    settings = load_settings({"BATCH_ENDPOINT_AUTH": "none"})

    provider = create_token_provider(settings, scope=settings.token_scope)

    assert provider.get_token() == DEV_TOKEN == "local-dev"
    assert StaticTokenProvider("abc").get_token() == "abc"
    assert "abc" not in repr(StaticTokenProvider("abc"))


def test_factory_for_azure_caches_per_scope_and_shares_the_credential() -> None:
    settings = load_settings({"AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555"})

    data = create_token_provider(settings, scope=settings.token_scope)
    again = create_token_provider(settings, scope=settings.token_scope)
    arm = create_token_provider(settings, scope=settings.arm_token_scope)

    assert isinstance(data, CredentialTokenProvider)
    assert isinstance(arm, CredentialTokenProvider)
    assert data is again
    assert arm is not data
    assert data.scope == "https://ml.azure.com/.default"
    assert arm.scope == "https://management.azure.com/.default"
    assert data._credential is arm._credential
