"""The azd hooks, run for real with a stand-in ``az`` on PATH that records its arguments."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.infra_text import ROOT

FAKE_AZ = """#!/bin/sh
printf '%s\\n' "$@" > "$AZ_LOG.$(date +%s%N)"
case "$1 $2" in
  "functionapp keys") echo "blobs-extension-key" ;;
esac
"""

OUTPUTS = {  # what azd puts in the hook's environment from infra/main.bicep's outputs
    "AZURE_FUNCTION_APP_NAME": "func-abc",
    "AZURE_RESOURCE_GROUP": "rg-test",
    "SERVICE_APP_URI": "https://func-abc.azurewebsites.net",
    "EVENT_GRID_SYSTEM_TOPIC_NAME": "evgt-abc",
    "SCORING_BLOB_CONTAINER": "scoring-input",
}

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")


def _run_postdeploy(
    tmp_path: Path, **extra: str
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "az").write_text(FAKE_AZ)
    (bin_dir / "az").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "AZ_LOG": str(tmp_path / "az"),
        **OUTPUTS,
        **extra,
    }
    done = subprocess.run(
        ["sh", str(ROOT / "infra/hooks/postdeploy.sh")],
        env=env,
        text=True,
        capture_output=True,
        timeout=30,
    )
    calls = [p.read_text().splitlines() for p in sorted(tmp_path.glob("az.*"))]
    return done, calls


def test_postdeploy_subscribes_blob_created_to_the_blob_extension_webhook(tmp_path):
    done, calls = _run_postdeploy(tmp_path, SCORING_BLOB_SOURCE="EventGrid")

    assert done.returncode == 0, done.stderr
    keys, create = calls
    assert keys[:3] == ["functionapp", "keys", "list"]
    assert create[:4] == ["eventgrid", "system-topic", "event-subscription", "create"]
    args = dict(zip(create[4::2], create[5::2], strict=False))
    assert args["--endpoint"] == (
        "https://func-abc.azurewebsites.net/runtime/webhooks/blobs"
        "?functionName=Host.Functions.start_run_on_blob"
        "&code=blobs-extension-key"
    )
    assert args["--endpoint-type"] == "webhook"
    assert args["--included-event-types"] == "Microsoft.Storage.BlobCreated"
    assert args["--subject-begins-with"] == "/blobServices/default/containers/scoring-input/"
    assert args["--system-topic-name"] == "evgt-abc"
    assert "blobs-extension-key" not in done.stdout  # the key is not printed


def test_postdeploy_does_nothing_for_the_polling_source(tmp_path):
    done, calls = _run_postdeploy(tmp_path, SCORING_BLOB_SOURCE="LogsAndContainerScan")

    assert done.returncode == 0, done.stderr
    assert calls == []


@pytest.mark.parametrize("backend", ["azureStorage", "durableTaskScheduler"])
def test_prepackage_hook_puts_the_backend_host_json_in_place(tmp_path, backend):
    copy = tmp_path / "repo"
    (copy / "infra" / "hooks").mkdir(parents=True)
    shutil.copytree(ROOT / "infra" / "host", copy / "infra" / "host")
    shutil.copy(ROOT / "infra" / "hooks" / "select-host-json.sh", copy / "infra" / "hooks")
    shutil.copy(ROOT / "host.json", copy / "host.json")

    done = subprocess.run(
        ["sh", str(copy / "infra/hooks/select-host-json.sh")],
        text=True,
        capture_output=True,
        timeout=30,
        env={"PATH": os.environ["PATH"], "DURABLE_BACKEND": backend},
    )

    assert done.returncode == 0, done.stderr
    expected = (copy / f"infra/host/host.{backend}.json").read_text()
    assert (copy / "host.json").read_text() == expected


def test_prepackage_hook_refuses_an_unknown_backend(tmp_path):
    done = subprocess.run(
        ["sh", str(ROOT / "infra/hooks/select-host-json.sh")],
        text=True,
        capture_output=True,
        timeout=30,
        env={"PATH": os.environ["PATH"], "DURABLE_BACKEND": "netherite"},
    )
    assert done.returncode == 1
    assert "netherite" in done.stderr
