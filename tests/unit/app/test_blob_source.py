"""SCORING_BLOB_SOURCE: parsed by the settings module and indexed into the blob trigger's source.

The host does not resolve ``%SETTING%`` in a blob trigger's source, so the value must be in the
function metadata the worker sends at indexing time; these tests index ``function_app`` in a
child process with the setting in its environment, as the Functions worker does.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from batch_runs import SettingsError, blob_trigger_source, load_settings
from batch_runs.settings import BLOB_SOURCES

ROOT = Path(__file__).resolve().parents[3]

_INDEX = """
import json, function_app
fns = {f.get_function_name(): json.loads(f.get_function_json())
       for f in function_app.app.get_functions()}
print(json.dumps(fns["start_run_on_blob"]["bindings"]))
"""


def _indexed_blob_trigger(source: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SCORING_BLOB_SOURCE"}
    if source is not None:
        env["SCORING_BLOB_SOURCE"] = source
    out = subprocess.run(
        [sys.executable, "-c", _INDEX],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    bindings: list[dict[str, str]] = json.loads(out)
    (trigger,) = [b for b in bindings if b["type"] == "blobTrigger"]
    return trigger


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "LogsAndContainerScan"),
        ("EventGrid", "EventGrid"),
        ("eventgrid", "EventGrid"),
        ("LogsAndContainerScan", "LogsAndContainerScan"),
        ("Polling", "LogsAndContainerScan"),  # invalid: default indexed, settings report it
    ],
)
def test_blob_trigger_source_reads_the_setting_and_never_raises(raw, expected):
    env = {} if raw is None else {"SCORING_BLOB_SOURCE": raw}
    assert blob_trigger_source(env) == expected


def test_settings_parse_the_source_case_insensitively_to_the_host_spelling():
    assert load_settings({}).scoring_blob_source == "LogsAndContainerScan"
    assert load_settings({"SCORING_BLOB_SOURCE": " eventGRID "}).scoring_blob_source == "EventGrid"
    assert set(BLOB_SOURCES) == {"EventGrid", "LogsAndContainerScan"}


def test_an_invalid_source_is_reported_by_name():
    with pytest.raises(SettingsError, match="SCORING_BLOB_SOURCE must be one of"):
        load_settings({"SCORING_BLOB_SOURCE": "Polling"})


@pytest.mark.slow  # indexes the app in a subprocess
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "LogsAndContainerScan"),
        ("EventGrid", "EventGrid"),
    ],
)
def test_function_metadata_carries_the_source_from_the_environment(raw, expected):
    trigger = _indexed_blob_trigger(raw)

    assert trigger["source"] == expected
    assert trigger["path"] == "%SCORING_BLOB_PATH%"  # the path stays a host-resolved expression
    assert trigger["connection"] == "AzureWebJobsStorage"
