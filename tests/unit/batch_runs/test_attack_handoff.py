"""Security pass 3: where the hand-off may write, and where its URL reading agrees with the SDK.

docs/deploy.md offers ``COPY_ALLOWED_HOSTS=*.blob.core.windows.net``; with it, the host check
alone let any caller overwrite blobs in the app's own storage account, which the app identity
may write: the Functions host's keys (``azure-webjobs-secrets``), its locks
(``azure-webjobs-hosts``), the task hub's lease and large-message containers (Learn, "Task hubs
in Durable Functions": one container of lease blobs, one of large message payloads; named
``<hub>-leases``, ``<hub>-applease``, ``<hub>-largemessages`` by DurableTask.AzureStorage) and a
Flex Consumption app's deployment package container (``app-package-...``).
"""

import pytest

from batch_runs.handoff import copy_url_problem, parse_blob_url

HOSTS = ("*.blob.core.windows.net", "*.dfs.core.windows.net")


@pytest.mark.parametrize(
    "container",
    [
        "azure-webjobs-secrets",
        "azure-webjobs-hosts",
        "batchscoring-leases",
        "batchscoring-applease",
        "batchscoring-largemessages",
        "app-package-myapp-1a2b3c4",
    ],
)
def test_the_function_apps_own_containers_are_refused(container: str) -> None:
    for host in ("funcstore.blob.core.windows.net", "funcstore.dfs.core.windows.net"):
        problem = copy_url_problem(f"https://{host}/{container}/x/host.json", HOSTS)
        assert problem is not None
        assert "reserved" in problem, problem


def test_an_ordinary_container_is_still_a_destination() -> None:
    assert copy_url_problem("https://lake.blob.core.windows.net/handoff/run/p.csv", HOSTS) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://user@lake.blob.core.windows.net/handoff/p.csv",
        "https://lake.blob.core.windows.net./handoff/p.csv",
        "https://lake.blob.core.windows.net/handoff/%2e%2e/p.csv",
        "https://lake.blob.core.windows.net:0443/handoff/p.csv",
        "https://lake.blob.core.windows.net\\@evil.example/handoff/p.csv",
        "https://lake.blob.core.windows.net/handoff/p.csv?sv=1&sig=x",
        "https://lake.blob.core.windows.net/handoff//p.csv",
        "https://[::1]/devstoreaccount1/handoff/p.csv",  # loopback, but not in the allowlist
    ],
)
def test_odd_destination_spellings_are_refused(url: str) -> None:
    assert copy_url_problem(url, HOSTS) is not None


def test_the_sdk_reads_the_destination_as_the_allowlist_did() -> None:
    """The BlobClient is built from the parsed parts; the SDK's own reading of them must name
    the same host, port, container and blob."""
    from azure.storage.blob import BlobClient

    for url, port in (
        ("https://lake.blob.core.windows.net/handoff/a/b-1.csv", None),
        ("https://lake.dfs.core.windows.net:8443/handoff/a/b_1.csv", 8443),
    ):
        problem, target = parse_blob_url(url)
        assert target is not None, problem
        client = BlobClient(target.account_url, target.container, target.blob, credential=None)
        assert client.primary_hostname == "lake.blob.core.windows.net" + (
            f":{port}" if port else ""
        )
        assert (client.container_name, client.blob_name) == ("handoff", target.blob)
        assert client.url == target.url


def test_the_source_sas_reads_one_blob_and_lives_no_longer_than_the_copy() -> None:
    """The SAS travels in ``x-ms-copy-source`` and stays readable in the destination blob's
    properties (Azurite returns it there with its signature; no source says Azure strips it):
    read-only, this one blob, and valid only for the copy's bound plus clock skew."""
    from datetime import UTC, datetime
    from urllib.parse import parse_qs

    from batch_runs.handoff import COPY_TIMEOUT_SECONDS, BlobTarget, StorageAccess

    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
    source = BlobTarget("devstoreaccount1", "http://127.0.0.1:10000/devstoreaccount1", "c", "p.csv")
    sas = parse_qs(StorageAccess(None, key).source_sas(source, now))
    assert sas["sp"] == ["r"]
    assert sas["sr"] == ["b"]
    expiry = datetime.fromisoformat(sas["se"][0].replace("Z", "+00:00"))
    assert (expiry - now).total_seconds() <= COPY_TIMEOUT_SECONDS + 300
