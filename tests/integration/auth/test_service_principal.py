"""Service principal auth: the app's token provider, through azure-identity's EnvironmentCredential,
against a local Entra token endpoint that checks the client-credentials request.

Nothing here is mocked: ``create_token_provider`` builds the same ``DefaultAzureCredential`` it
builds in Azure; the environment carries ``AZURE_TENANT_ID``, ``AZURE_CLIENT_ID`` and the secret
(in Azure: a Key Vault reference the platform resolves) or a certificate path; requests to the
real authority host go through ``HTTPS_PROXY`` to ``token_server`` on 127.0.0.1.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_endpoint import BatchEndpointError
from batch_runs import clients as _auth
from batch_runs import load_settings
from batch_runs.clients import create_token_provider
from tests.integration.auth.token_server import (
    AUTHORITY_HOST,
    Registration,
    Tls,
    TokenServer,
    client_certificate,
)

pytestmark = pytest.mark.integration

TENANT = "72f988bf-0000-4000-8000-00000000aaaa"
CLIENT_ID = "5b1f0b4e-0000-4000-8000-00000000bbbb"
SECRET = "s3cr3t-from-key-vault"
ML_SCOPE = "https://ml.azure.com/.default"
ARM_SCOPE = "https://management.azure.com/.default"

# Variables that would change which credential DefaultAzureCredential picks, or where it goes.
_CLEARED = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_AUTHORITY_HOST",
    "AZURE_TOKEN_CREDENTIALS",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_REGIONAL_AUTHORITY_NAME",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "NO_PROXY",
    "no_proxy",
    "https_proxy",
    "http_proxy",
    "CURL_CA_BUNDLE",
)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture(autouse=True)
def _fresh_credentials() -> Iterator[None]:
    # One credential per process in the app; each test builds its own from its environment.
    _auth._default_credential.cache_clear()
    _auth._cached_provider.cache_clear()
    yield
    if _auth._default_credential.cache_info().currsize:
        _auth._default_credential(CLIENT_ID).close()  # the cached one: its HTTP sessions
    _auth._default_credential.cache_clear()
    _auth._cached_provider.cache_clear()


def _environment(
    monkeypatch: pytest.MonkeyPatch, tls: Tls, server: TokenServer, **values: str
) -> None:
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", server.proxy_url)
    monkeypatch.setenv("HTTP_PROXY", server.proxy_url)  # a managed identity probe would show up
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.ca_file))
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_client_secret_from_the_environment_gets_a_token_per_scope_and_caches_it(
    monkeypatch: pytest.MonkeyPatch, tls: Tls
) -> None:
    registration = Registration(tenant_id=TENANT, client_id=CLIENT_ID, client_secret=SECRET)
    with TokenServer(tls, registration) as server:
        _environment(monkeypatch, tls, server, AZURE_CLIENT_SECRET=SECRET)
        settings = load_settings({"AZURE_CLIENT_ID": CLIENT_ID})
        ml = create_token_provider(settings, scope=settings.token_scope)
        arm = create_token_provider(settings, scope=settings.arm_token_scope)

        first, again, arm_token = ml.get_token(), ml.get_token(), arm.get_token()

    rec = server.recorded
    assert (first, again, arm_token) == ("sp-token-1", "sp-token-1", "sp-token-2")
    assert rec.problems == []
    assert [r["scope"].split()[0] for r in rec.token_requests] == [ML_SCOPE, ARM_SCOPE]
    for form in rec.token_requests:
        assert form["grant_type"] == "client_credentials"
        assert (form["client_id"], form["client_secret"]) == (CLIENT_ID, SECRET)
    assert rec.discovery_requests == [f"/{TENANT}/v2.0/.well-known/openid-configuration"]
    assert set(rec.connects) == {f"{AUTHORITY_HOST}:443"}
    assert rec.refused_connects == []
    assert rec.plain_proxy_requests == []


def test_a_wrong_secret_fails_without_falling_back_to_another_identity(
    monkeypatch: pytest.MonkeyPatch, tls: Tls
) -> None:
    registration = Registration(tenant_id=TENANT, client_id=CLIENT_ID, client_secret=SECRET)
    with TokenServer(tls, registration) as server:
        _environment(monkeypatch, tls, server, AZURE_CLIENT_SECRET="expired-secret")
        settings = load_settings({"AZURE_CLIENT_ID": CLIENT_ID})

        with pytest.raises(BatchEndpointError) as caught:
            create_token_provider(settings, scope=ML_SCOPE).get_token()

    assert "ml.azure.com" in str(caught.value)
    assert "expired-secret" not in str(caught.value)
    assert server.recorded.problems == ["client_secret"]
    assert server.recorded.tokens_issued == []
    # DefaultAzureCredential stops at the failing EnvironmentCredential: no managed identity call.
    assert server.recorded.plain_proxy_requests == []
    assert server.recorded.refused_connects == []


def test_client_certificate_from_the_environment_signs_a_client_assertion(
    monkeypatch: pytest.MonkeyPatch, tls: Tls, tmp_path: Path
) -> None:
    pem, public_key = client_certificate(tmp_path)
    registration = Registration(
        tenant_id=TENANT, client_id=CLIENT_ID, certificate_public_key=public_key
    )
    with TokenServer(tls, registration) as server:
        _environment(monkeypatch, tls, server, AZURE_CLIENT_CERTIFICATE_PATH=str(pem))
        settings = load_settings({"AZURE_CLIENT_ID": CLIENT_ID})

        token = create_token_provider(settings, scope=ML_SCOPE).get_token()

    assert token == "sp-token-1"
    assert server.recorded.problems == []
    (form,) = server.recorded.token_requests
    assert form["grant_type"] == "client_credentials"
    assert "client_secret" not in form
    assert form["client_assertion_type"].endswith(":jwt-bearer")
