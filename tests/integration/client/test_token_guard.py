"""The last guard: a token leaves only for the host it was approved for, decided at send time.

Two real local servers: the allowed endpoint and a trap on another port (both loopback). Each
test changes where a request goes *after* validation and checks the trap received nothing.
"""

import logging

import pytest
import requests

from batch_endpoint import (
    BatchEndpointClient,
    BatchJob,
    HostNotAllowedError,
    JobStatus,
    RetryPolicy,
    ServiceUrl,
    StaticTokenProvider,
    WorkspaceJobsClient,
)
from batch_endpoint._transport import BearerTokenAuth, HostGuard
from batch_runs.clients import get_session
from tests.integration.client.scripted_server import Reply, ScriptedServer

pytestmark = pytest.mark.integration

TOKEN = "guarded-token-0123456789"
JOBS = "/endpoints/heart/jobs"


@pytest.fixture
def servers():
    with ScriptedServer() as good, ScriptedServer() as trap:
        yield good, trap


def _client(good: ScriptedServer) -> BatchEndpointClient:
    return BatchEndpointClient(
        f"{good.base_url}{JOBS}",
        StaticTokenProvider(TOKEN),
        session=get_session(),
        allowed_hosts=[f"127.0.0.1:{good.port}"],
        auth_mode="none",
        retry_policy=RetryPolicy(max_attempts=1),
    )


def _approved_request(good: ScriptedServer) -> requests.PreparedRequest:
    """A GET to the good server, its token attached by the auth hook."""
    guard = HostGuard((f"127.0.0.1:{good.port}",), loopback_only=True)
    return get_session().prepare_request(
        requests.Request(
            "GET",
            f"{good.base_url}{JOBS}/j1",
            auth=BearerTokenAuth(StaticTokenProvider(TOKEN), guard),
        )
    )


def test_endpoint_swapped_after_validation_sends_nothing(servers, caplog) -> None:
    good, trap = servers
    client = _client(good)
    good.push(Reply(200, {"name": "j1", "id": "j1", "properties": {"status": "Running"}}))
    assert client.get_job("j1").name == "j1"  # the approved host works
    assert good.requests[0].headers["authorization"] == f"Bearer {TOKEN}"

    # Swap the validated URL for another host just before sending.
    client._endpoint = ServiceUrl.parse(f"{trap.base_url}{JOBS}", path_suffix="/jobs")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(HostNotAllowedError, match="refused to send"):
        client.get_job("j1")

    assert trap.requests == []
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert any("refused to send" in r.getMessage() for r in caplog.records)


def test_prepared_url_changed_after_auth_is_refused_by_the_adapter(servers) -> None:
    good, trap = servers
    session = get_session()
    prepared = _approved_request(good)
    assert prepared.headers["Authorization"] == f"Bearer {TOKEN}"

    prepared.url = f"{trap.base_url}{JOBS}/j1"
    with pytest.raises(HostNotAllowedError):
        session.send(prepared, timeout=(2, 2))

    assert trap.requests == []


def test_token_added_without_approval_is_refused_by_the_adapter(servers) -> None:
    _, trap = servers
    with pytest.raises(HostNotAllowedError):
        get_session().get(
            f"{trap.base_url}/x", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=(2, 2)
        )
    assert trap.requests == []


@pytest.mark.parametrize(
    "url_template",
    [
        "http://127.0.0.1:{trap}\\.allowed.test/jobs",
        "http://allowed.test@127.0.0.1:{trap}/jobs",
        "http://127.0.0.1:{trap}#@allowed.test/jobs",
        "http://127.0.0.1:{trap}/jobs",
    ],
    ids=["backslash", "userinfo", "fragment-at", "plain-other-host"],
)
def test_auth_hook_reads_the_url_the_connection_uses(servers, url_template: str) -> None:
    _, trap = servers
    guard = HostGuard(("*.allowed.test", "allowed.test"))
    with pytest.raises(HostNotAllowedError):
        get_session().get(
            url_template.format(trap=trap.port),
            auth=BearerTokenAuth(StaticTokenProvider(TOKEN), guard),
            timeout=(2, 2),
        )
    assert trap.requests == []


def test_arm_token_goes_only_to_the_arm_host(servers) -> None:
    good, trap = servers
    client = WorkspaceJobsClient(
        good.base_url,
        StaticTokenProvider("arm-token"),
        session=get_session(),
        retry_policy=RetryPolicy(max_attempts=1),
    )
    # Swap the validated ARM host for another one just before sending.
    client._arm = ServiceUrl.parse(trap.base_url, allow_path=False)
    job = BatchJob(
        name="j1",
        id="/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices"
        "/workspaces/w/jobs/j1",
        status=JobStatus.RUNNING,
    )
    with pytest.raises(HostNotAllowedError):
        client.cancel_job(job)
    assert trap.requests == []


def test_token_over_plain_http_is_never_sent_through_a_proxy(servers) -> None:
    good, trap = servers
    session = get_session()
    prepared = _approved_request(good)
    with pytest.raises(HostNotAllowedError, match="proxy"):
        session.send(prepared, proxies={"http": trap.base_url}, timeout=(2, 2))
    assert trap.requests == []
    assert good.requests == []
