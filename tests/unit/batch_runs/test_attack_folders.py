"""Security pass 3: the app's storage identity lists only the folders the operator allowed.

An ``https`` ``input_folder`` is listed with the app's identity (``DefaultAzureCredential``, or
the ``AzureWebJobsStorage`` key when its BlobEndpoint is that account). Before this pass any
caller could name any ``*.blob.core.windows.net`` container, e.g. the Functions storage's
``azure-webjobs-secrets`` or the task hub's large-message container, and get its blob names
back as child inputs (a confused deputy). Now the folder must lie in a container that
``OUTPUT_DATASTORE_URLS`` lists (the operator's map of containers the app reads).
"""

from datetime import UTC, datetime

import pytest

from batch_runs import InvalidRunRequest, load_settings
from batch_runs.batches import parse_batch_request
from batch_runs.folders import resolve_folder

ENDPOINT = "https://heart.westeurope.inference.ml.azure.com/jobs"
DATA = "https://datalake.blob.core.windows.net/scoring"
MAP = (("lake", DATA),)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "folder",
    [
        "https://funcstore.blob.core.windows.net/azure-webjobs-secrets/x/",
        "https://datalake.blob.core.windows.net/other/day1/",  # same account, other container
        "https://datalake2.blob.core.windows.net/scoring/day1/",
        "https://datalake.blob.core.chinacloudapi.cn/scoring/day1/",  # other cloud, other host
    ],
)
def test_an_unlisted_https_folder_is_refused_naming_the_setting(folder: str) -> None:
    with pytest.raises(ValueError, match="OUTPUT_DATASTORE_URLS"):
        resolve_folder(folder, MAP)
    with pytest.raises(ValueError, match="OUTPUT_DATASTORE_URLS"):
        resolve_folder(folder, ())


@pytest.mark.parametrize(
    "folder",
    [
        f"{DATA}/day1/",
        f"{DATA}/day1",
        "https://DataLake.blob.core.windows.net/scoring/day1/",  # host case
        "https://datalake.dfs.core.windows.net/scoring/day1/",  # the same container via dfs
    ],
)
def test_a_folder_in_a_listed_container_is_listed(folder: str) -> None:
    location = resolve_folder(folder, MAP)
    assert location.prefix == "day1/"


def test_the_batch_route_refuses_an_unlisted_https_folder_with_400_naming_input_folder() -> None:
    settings = load_settings(
        {"BATCH_ENDPOINT_URI": ENDPOINT, "OUTPUT_DATASTORE_URLS": f"lake={DATA}"}
    )
    body = {"input_folder": "https://funcstore.blob.core.windows.net/azure-webjobs-secrets/x/"}
    with pytest.raises(InvalidRunRequest) as caught:
        parse_batch_request(body, settings, batch_id="batch-1", now=NOW)
    ((detail,),) = [[d for d in caught.value.details]]
    assert detail.field == "input_folder"
    assert "OUTPUT_DATASTORE_URLS" in detail.message
    accepted = parse_batch_request(
        {"input_folder": f"{DATA}/day1/"}, settings, batch_id="batch-1", now=NOW
    )
    assert accepted.input_folder == f"{DATA}/day1/"


def test_a_huge_folder_is_refused_after_1001_files_not_listed_to_the_end() -> None:
    """A folder of millions of blobs must not be listed (and held in memory) in full before the
    1,000-file limit refuses it: the listing stops at the first file over the limit."""
    from collections.abc import Iterator
    from dataclasses import dataclass

    from batch_runs.folder_listing import BlobItem, list_folder_uris
    from batch_runs.folders import FolderLocation

    @dataclass
    class Item:
        name: str
        size: int | None

    pulled = 0

    def endless(location: FolderLocation) -> Iterator[BlobItem]:
        nonlocal pulled
        while True:
            pulled += 1
            if pulled > 5000:
                raise AssertionError("the listing went on past the limit")
            yield Item(f"d/{pulled:09d}.csv", 10)

    location = FolderLocation(container_url=f"{DATA}", prefix="d/", uri_base=f"{DATA}/d/")
    listing = list_folder_uris(location, endless)
    assert listing.uris == ()
    assert "at most 1000" in (listing.error or "")
    assert pulled == 1001
