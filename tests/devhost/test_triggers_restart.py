"""devhost as a process with Azurite: blob and timer triggers, and kill -9 restarts."""

import json
import time
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from tests.devhost.hostproc import DevhostProcess
from tests.support import wait_until

pytestmark = pytest.mark.integration


def _settings(azurite: Any, **extra: str) -> dict[str, str]:
    return {
        "SAMPLE_HUB": "triggerhub",
        "SAMPLE_BLOB_PATH": "samples/{name}",
        "SAMPLE_SCHEDULE": "0 0 0 1 1 *",  # once a year: never during a test unless overridden
        "AzureWebJobsStorage": azurite.connection_string,
        **extra,
    }


def _blob_names(proc: DevhostProcess) -> list[str]:
    return [json.loads(line)["name"] for line in proc.events_lines("blob.log")]


def test_blob_trigger_fires_once_per_blob_version_also_across_restart(azurite, tmp_path):
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client("samples")
    container.create_container()
    proc = DevhostProcess(
        workdir=tmp_path, settings=_settings(azurite), env={"DEVHOST_BLOB_POLL_SECONDS": "0.2"}
    ).start()
    try:
        container.upload_blob("a.csv", b"x,y\n1,2\n")
        wait_until(lambda: _blob_names(proc) == ["samples/a.csv"], timeout=20, what="blob a")
        first = json.loads(proc.events_lines("blob.log")[0])
        # A later blob is picked up by a later scan, which also saw a.csv again.
        container.upload_blob("b.csv", b"1")
        wait_until(lambda: "samples/b.csv" in _blob_names(proc), timeout=20, what="blob b")
        container.upload_blob("a.csv", b"x,y\n3,4\n5,6\n", overwrite=True)  # new version
        wait_until(
            lambda: _blob_names(proc).count("samples/a.csv") == 2,
            timeout=20,
            what="a.csv new version",
        )
        proc.stop()
        proc.start()
        container.upload_blob("c.csv", b"22")
        wait_until(lambda: "samples/c.csv" in _blob_names(proc), timeout=20, what="blob c")
        listed = proc.mgmt("GET", "instances", params={"runtimeStatus": "Completed"}).json()
        wait_until(lambda: len(proc.mgmt("GET", "instances").json()) == 4, timeout=20)
    finally:
        proc.stop()
        container.delete_container()
        service.close()

    assert sorted(_blob_names(proc)) == [
        "samples/a.csv",
        "samples/a.csv",
        "samples/b.csv",
        "samples/c.csv",
    ]
    assert first["length"] == 8
    assert first["size"] == 8
    assert first["uri"].endswith("/samples/a.csv")
    assert first["etag"]
    assert all(s["name"] == "chain" for s in listed)
    assert "Executing 'Functions.on_blob' (Reason='New blob detected: samples/a.csv'" in proc.log()


def test_timer_trigger_fires_on_its_schedule(azurite, tmp_path):
    proc = DevhostProcess(
        workdir=tmp_path, settings=_settings(azurite, SAMPLE_SCHEDULE="*/1 * * * * *")
    ).start()
    try:
        wait_until(lambda: len(proc.events_lines("timer.log")) >= 2, timeout=20, what="2 ticks")
    finally:
        proc.stop()

    ticks = [json.loads(line) for line in proc.events_lines("timer.log")]
    assert ticks[0] == {"past_due": False}
    assert "Executed 'Functions.on_timer' (Succeeded" in proc.log()


def test_a_disabled_function_is_not_triggered(azurite, tmp_path):
    """``AzureWebJobs.<fn>.Disabled=true`` keeps the trigger's listener from starting.

    Reproduces Azure/azure-webjobs-sdk
    ``src/Microsoft.Azure.WebJobs.Host/Listeners/HostListenerFactory.cs`` (``IsDisabled``:
    ``AzureWebJobs.{0}.Disabled`` or ``AzureWebJobs_{0}_Disabled`` enabled → no listener).
    """
    settings = _settings(azurite, SAMPLE_SCHEDULE="*/1 * * * * *")
    settings["AzureWebJobs.on_timer.Disabled"] = "true"
    proc = DevhostProcess(workdir=tmp_path, settings=settings).start()
    try:
        wait_until(lambda: "function on_timer is disabled" in proc.log(), timeout=20)
        time.sleep(2.5)  # two ticks of the schedule
    finally:
        proc.stop()

    assert proc.events_lines("timer.log") == []


def test_kill9_mid_run_then_restart_completes_without_rerunning_done_activity(azurite, tmp_path):
    proc = DevhostProcess(workdir=tmp_path, settings=_settings(azurite)).start()
    try:
        started = proc.mgmt("POST", "orchestrators/slow_chain/crash-1", json={"wait": 2})
        assert started.status_code == 202

        def first_completed() -> bool:
            status = proc.mgmt("GET", "instances/crash-1", params={"showHistory": "true"}).json()
            return any(h["EventType"] == "TimerCreated" for h in status.get("history", []))

        wait_until(first_completed, timeout=20, what="first activity recorded + timer created")
        proc.kill9()
        proc.start()
        status = proc.wait_status("crash-1", {"Completed"}, timeout=30)
    finally:
        proc.stop()

    assert status["output"] == ["crash-1:first", "crash-1:second"]
    assert proc.events_lines("record.log") == ["crash-1:first", "crash-1:second"]


def test_bad_setting_is_a_clear_error_naming_it(tmp_path):
    proc = DevhostProcess(workdir=tmp_path, settings={"SAMPLE_HUB": "hub"})
    import subprocess

    result = subprocess.run(
        proc.command(), env={**proc.env, **_clean_env()}, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert "SAMPLE_BLOB_PATH" in result.stderr
    assert "on_blob" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_app_is_a_clear_error(tmp_path):
    import subprocess

    proc = DevhostProcess(workdir=tmp_path, app_dir=tmp_path)
    result = subprocess.run(
        proc.command(), env={**proc.env, **_clean_env()}, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert "function_app.py not found" in result.stderr


def _clean_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    for key in ("SAMPLE_BLOB_PATH", "SAMPLE_SCHEDULE", "AzureWebJobsStorage"):
        env.pop(key, None)
    return env


def test_a_timer_function_runs_now_through_the_admin_api(azurite, tmp_path):
    """``POST /admin/functions/{name}`` runs a non-HTTP function once (202, in the background),
    as the Functions host's admin API does (MicrosoftDocs azure-docs
    ``articles/azure-functions/functions-manually-run-non-http.md``); devhost asks for its
    function key where Azure asks for the master key."""
    import requests

    from tests.devhost.hostproc import KEY

    proc = DevhostProcess(workdir=tmp_path, settings=_settings(azurite)).start()  # yearly
    try:
        url = f"{proc.base}/admin/functions/on_timer"
        no_key = requests.post(url, json={"input": ""}, timeout=5)
        wrong_method = requests.get(url, headers={"x-functions-key": KEY}, timeout=5)
        unknown = requests.post(
            f"{proc.base}/admin/functions/nope", headers={"x-functions-key": KEY}, timeout=5
        )
        run = requests.post(url, json={"input": ""}, headers={"x-functions-key": KEY}, timeout=5)
        wait_until(lambda: len(proc.events_lines("timer.log")) == 1, timeout=20, what="the run")
    finally:
        proc.stop()

    assert no_key.status_code == 401
    assert wrong_method.status_code == 405
    assert unknown.status_code == 404
    assert run.status_code == 202
    assert [json.loads(line) for line in proc.events_lines("timer.log")] == [{"past_due": False}]
    assert "programmatically called via the host APIs" in proc.log()


def test_log_lines_show_the_structured_fields_of_a_record():
    import logging

    from devhost.logs import FieldsFormatter

    formatter = FieldsFormatter("%(message)s")
    record = logging.LogRecord("app", logging.INFO, __file__, 1, "run %s: submitted", ("r",), None)
    plain = logging.LogRecord("app", logging.INFO, __file__, 1, "no fields", (), None)
    record.run_id, record.job_name, record.trigger = "r", "bs-1", "http"

    assert formatter.format(record) == "run r: submitted run_id=r job_name=bs-1 trigger=http"
    assert formatter.format(plain) == "no fields"
