"""Folders, pure: input_folder resolution, listing rules, datastore map, folder markers."""

from dataclasses import dataclass

import pytest

from batch_runs import load_settings
from batch_runs.folder_listing import connection_matches, list_folder_uris
from batch_runs.folders import (
    FolderLocation,
    instance_id_for_marker,
    marker_decision,
    resolve_folder,
)
from batch_runs.settings import SettingsError
from batch_runs.settings import load_settings as load

DS = "azureml://datastores/workspaceblobstore/paths/"
AZURITE = "http://127.0.0.1:10000/devstoreaccount1/azureml-blobstore"
MAP = (("workspaceblobstore", AZURITE),)


def test_datastore_folder_resolves_through_the_map() -> None:
    loc = resolve_folder(f"{DS}day1", MAP)
    assert loc == FolderLocation(container_url=AZURITE, prefix="day1/", uri_base=f"{DS}day1/")
    assert loc.child_uri("day1/a.csv") == f"{DS}day1/a.csv"


def test_unmapped_datastore_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="OUTPUT_DATASTORE_URLS"):
        resolve_folder("azureml://datastores/other/paths/day1/", MAP)


def test_blob_urls_name_their_container() -> None:
    listed = (("data", "https://acct.blob.core.windows.net/data"),)  # https needs its container
    azure = resolve_folder("https://acct.blob.core.windows.net/data/day1/", listed)
    assert (azure.container_url, azure.prefix) == (
        "https://acct.blob.core.windows.net/data",
        "day1/",
    )
    local = resolve_folder(f"{AZURITE}/day1/", ())
    assert (local.container_url, local.prefix) == (AZURITE, "day1/")
    with pytest.raises(ValueError, match="Azure Blob"):
        resolve_folder("https://evil.example.com/data/day1/", ())


@dataclass
class Item:
    name: str
    size: int | None


def test_listing_keeps_top_level_non_empty_files_sorted() -> None:
    loc = FolderLocation(container_url=AZURITE, prefix="d/", uri_base=f"{DS}d/")
    items = [Item("d/b.csv", 5), Item("d/a.csv", 5), Item("d/_READY", 0), Item("d/sub/x.csv", 5)]
    listing = list_folder_uris(loc, lambda _loc: items)
    assert listing.uris == (f"{DS}d/a.csv", f"{DS}d/b.csv")
    assert listing.error is None
    assert "no files" in (list_folder_uris(loc, lambda _loc: []).error or "")
    many = [Item(f"d/{i:04d}.csv", 1) for i in range(1001)]
    assert "at most 1000" in (list_folder_uris(loc, lambda _loc: many).error or "")


def test_the_connection_key_is_used_only_for_its_own_account() -> None:
    cs = "AccountName=devstoreaccount1;AccountKey=k;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    assert connection_matches(cs, AZURITE)
    assert not connection_matches(cs, "http://127.0.0.1:10001/devstoreaccount1/c")
    assert not connection_matches(cs, "http://127.0.0.1:10000/devstoreaccount10/c")
    assert not connection_matches(None, AZURITE)


def test_input_folders_read_the_output_datastore_map() -> None:
    settings = load_settings({"OUTPUT_DATASTORE_URLS": f"workspaceblobstore={AZURITE}"})
    assert resolve_folder(f"{DS}d/", settings.output_datastore_urls).container_url == AZURITE


def test_blob_mode_and_marker_settings() -> None:
    assert load({}).scoring_blob_mode == "file"
    assert load({}).scoring_marker_name == "_READY"
    assert load({"SCORING_BLOB_MODE": "Folder-Marker"}).scoring_blob_mode == "folder-marker"
    with pytest.raises(SettingsError, match="SCORING_BLOB_MODE"):
        load({"SCORING_BLOB_MODE": "folders"})
    with pytest.raises(SettingsError, match="SCORING_MARKER_NAME"):
        load({"SCORING_MARKER_NAME": "a/b"})


@pytest.mark.parametrize(
    ("blob", "start", "refused", "folder"),
    [
        ("scoring-input/day1/_READY", True, False, "day1/"),
        ("scoring-input/day1/a.csv", False, False, ""),
        ("scoring-input/_READY", False, True, ""),
        ("scoring-input/a/b/_READY", False, True, ""),
        ("scoring-input//_READY", False, True, ""),
        ("scoring-input/day1/_READY.csv", False, False, ""),
    ],
)
def test_marker_decisions(blob: str, start: bool, refused: bool, folder: str) -> None:
    decision = marker_decision(blob, "_READY")
    assert (decision.start, decision.refused, decision.folder) == (start, refused, folder)
    assert decision.start or decision.reason


def test_one_marker_version_one_instance_id() -> None:
    first = instance_id_for_marker("scoring-input/day1/_READY", "0x1")
    assert first == instance_id_for_marker("scoring-input/day1/_READY", "0x1")
    assert first != instance_id_for_marker("scoring-input/day1/_READY", "0x2")
    assert first != instance_id_for_marker("scoring-input/day2/_READY", "0x1")
    assert first.startswith("folder-")
