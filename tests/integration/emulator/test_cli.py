"""The command line, config handling, sample data, restart persistence and library use."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests
from azure.storage.blob import ContainerClient

from aml_emulator import EmulatorConfig, EmulatorServer, generate_sample_files
from tests.integration.emulator.helpers import (
    HEADER,
    EmulatorApi,
    body,
    csv_text,
    ds,
    emulator_process,
    listening_url,
    put_blobs,
    read_lines,
    running_emulator,
    uid,
)
from tests.support import PYTHON, REPO_ROOT, Azurite, http_ready

pytestmark = pytest.mark.integration


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "aml_emulator", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"prot": 5100}, "prot"),
        ({"port": "5100"}, "port"),
        ({"phase_seconds": -1}, "phase_seconds"),
        (
            {"endpoints": {"e": {"deployments": ["a"], "default_deployment": "b"}}},
            "endpoints.e.default_deployment",
        ),
        ({"endpoints": {"e": {"reject_audience": "yes"}}}, "endpoints.e.reject_audience"),
        (
            {"endpoints": {"e": {"faults": [{"kind": "http_error", "status": 201}]}}},
            "endpoints.e.faults[0].status",
        ),
        ({"datastores": {"workspaceblobstore": "Bad_Container"}}, "datastores.workspaceblobstore"),
        ({"contract": "strict"}, "contract"),
        ({"arm_page_size": 0}, "arm_page_size"),
        (
            {"endpoints": {"e": {"faults": [{"kind": "drop", "seconds": -1}]}}},
            "endpoints.e.faults[0].seconds",
        ),
        (
            {"endpoints": {"e": {"faults": [{"kind": "drop", "job": 7}]}}},
            "endpoints.e.faults[0].job",
        ),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, config: object, key: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = _run("serve", "--config", str(path), "--state", str(tmp_path / "s.sqlite"))
    assert result.returncode == 2
    assert key in result.stderr
    assert "Traceback" not in result.stderr


def test_unreadable_or_invalid_config_exits_2(tmp_path: Path) -> None:
    missing = _run("serve", "--config", str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert "config" in missing.stderr
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    invalid = _run("serve", "--config", str(path))
    assert invalid.returncode == 2
    assert "not valid JSON" in invalid.stderr
    assert "Traceback" not in missing.stderr + invalid.stderr


@pytest.mark.parametrize(
    ("flags", "key"),
    [
        (["--phase-seconds", "-0.5"], "phase_seconds"),
        (["--port", "70000"], "port"),
        (["--storage-connection-string", "garbage"], "storage_connection_string"),
        (["--contract", "strict"], "--contract"),
    ],
)
def test_bad_flag_exits_2(tmp_path: Path, flags: list[str], key: str) -> None:
    result = _run("serve", *flags, "--state", str(tmp_path / "s.sqlite"))
    assert result.returncode == 2
    assert key in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_contract_in_the_environment_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "AML_EMULATOR_CONTRACT": "strict"}
    result = _run("serve", "--state", str(tmp_path / "s.sqlite"), env=env)
    assert result.returncode == 2
    assert "contract" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_example_is_valid() -> None:
    from aml_emulator import load_config

    config = load_config(REPO_ROOT / "aml_emulator" / "config.example.json")
    assert config.port == 5100
    assert config.endpoints["heart-classifier"].default_deployment == "default"
    assert config.datastores == {"workspaceblobstore": "azureml-blobstore"}


def test_sample_data_is_deterministic_and_shaped_like_the_example(tmp_path: Path) -> None:
    first = _run("sample-data", "--out", str(tmp_path / "a"))
    second = _run("sample-data", "--out", str(tmp_path / "b"))
    assert first.returncode == second.returncode == 0
    names = [f"heart-unlabeled-{i}.csv" for i in range(4)]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert name in first.stdout
    rows = 0
    for name, expected in zip(names, (100, 100, 100, 3), strict=True):
        data = (tmp_path / "a" / name).read_bytes()
        assert b"\r" not in data
        lines = data.decode().splitlines()
        assert lines[0] == HEADER
        assert len(lines) - 1 == expected
        for line in lines[1:]:
            cells = line.split(",")
            assert len(cells) == 13
            assert "." in cells[9]
            assert cells[12] in ("normal", "fixed", "reversible")
        rows += expected
    assert rows == 303


def test_sample_data_upload_to_azurite(
    tmp_path: Path, azurite: Azurite, container: ContainerClient
) -> None:
    env = {**os.environ, "AML_EMULATOR_STORAGE_CONNECTION_STRING": azurite.connection_string}
    result = _run("sample-data", "--out", str(tmp_path), "--upload", env=env)
    assert result.returncode == 0, result.stderr
    assert "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/" in result.stdout
    expected = {f.name: f.content for f in generate_sample_files()}
    for name, content in expected.items():
        blob = container.get_blob_client(f"heart-unlabeled/{name}")
        assert blob.download_blob().readall() == content


def test_sample_upload_without_storage_fails_cleanly(tmp_path: Path) -> None:
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    result = _run(
        "sample-data", "--out", str(tmp_path), "--upload", "--storage-connection-string", dead
    )
    assert result.returncode == 1
    assert "upload failed" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_zero_prints_the_real_port_and_sigterm_stops_cleanly(
    tmp_path: Path, azurite: Azurite
) -> None:
    proc = emulator_process(
        state=tmp_path / "s.sqlite",
        connection_string=azurite.connection_string,
        port=0,
        log_dir=tmp_path,
    ).start()
    try:
        url = listening_url(proc)
        port = int(url.rsplit(":", 1)[1])
        assert port > 0
        proc.wait_ready(http_ready(f"{url}/healthz", ok=lambda s: s == 200))
    finally:
        proc.stop()
    assert proc.proc is not None
    assert proc.proc.returncode == 0
    assert "stopped" in proc.log_text()


def test_config_faults_and_endpoints(
    tmp_path: Path, azurite: Azurite, container: ContainerClient
) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "phase_seconds": 0.05,
                "endpoints": {
                    "scripted": {
                        "deployments": ["d1"],
                        "faults": [
                            {"kind": "http_error", "route": "get", "status": 503, "retry_after": 3},
                            {
                                "kind": "job",
                                "script": [["Queued", 0.1]],
                                "outcome": "Failed",
                                "message": "configured failure",
                            },
                        ],
                    }
                },
            }
        )
    )
    prefix = uid("cfg")
    put_blobs(container, {f"{prefix}/a.csv": csv_text(1)})
    with (
        running_emulator(
            state=tmp_path / "s.sqlite",
            connection_string=azurite.connection_string,
            config=config,
            log_dir=tmp_path,
        ) as (_p, url),
        requests.Session() as s,
    ):
        api = EmulatorApi(url, s)
        assert api.invoke(body(ds(prefix)), endpoint="heart-classifier").status_code == 404
        job = api.submit(body(ds(prefix), ds(f"{uid('o')}/p.csv")), endpoint="scripted")
        assert job["properties"]["deployment"] == "d1"  # the only one is the default
        throttled = api.get(job["name"], endpoint="scripted")
        assert throttled.status_code == 503
        assert throttled.headers["Retry-After"] == "3"
        done = api.wait_status(job["name"], endpoint="scripted")
        assert done["properties"]["status"] == "Failed"
        assert done["properties"]["errorMessage"] == "configured failure"


def test_restart_after_sigkill_resumes_the_job(
    tmp_path: Path, azurite: Azurite, container: ContainerClient
) -> None:
    prefix, out = uid("restart"), f"{uid('out')}/p.csv"
    put_blobs(container, {f"{prefix}/a.csv": csv_text(3), f"{prefix}/b.csv": csv_text(2)})
    state = tmp_path / "state.sqlite"
    proc = emulator_process(
        state=state,
        connection_string=azurite.connection_string,
        phase_seconds=0.4,
        log_dir=tmp_path,
    ).start()
    try:
        url = listening_url(proc)
        with requests.Session() as s:
            api = EmulatorApi(url, s)
            finished = api.submit(body(ds(prefix), ds(f"{uid('out')}/done.csv")))["name"]
            api.wait_status(finished)
            name = api.submit(body(ds(prefix), ds(out)))["name"]
            api.wait_status(name, ("Preparing", "Running"))
        proc.kill9()  # a crash mid-job, not a shutdown
        assert not container.get_blob_client(out).exists()
        proc.start()  # same state file, same port
        url = listening_url(proc, already=1)
        proc.wait_ready(http_ready(f"{url}/healthz", ok=lambda s: s == 200))
        with requests.Session() as s:
            api = EmulatorApi(url, s)
            assert api.job(finished)["properties"]["status"] == "Completed"
            resumed = api.job(name)["properties"]["status"]
            assert resumed not in ("NotStarted", "Failed", "Canceled")
            done = api.wait_status(name)
            assert done["properties"]["status"] == "Completed"
            assert done["properties"]["properties"] == {"rowsScored": "5", "filesScored": "2"}
    finally:
        proc.stop()
    assert read_lines(container, out) == [
        "0,0,a.csv",
        "1,0,a.csv",
        "2,0,a.csv",
        "0,0,b.csv",
        "1,0,b.csv",
    ]


def test_in_process_server(tmp_path: Path, azurite: Azurite, container: ContainerClient) -> None:
    prefix, out = uid("lib"), f"{uid('out')}/p.csv"
    put_blobs(container, {f"{prefix}/a.csv": csv_text(1)})
    config = EmulatorConfig(
        port=0,
        state_path=str(tmp_path / "s.sqlite"),
        phase_seconds=0.05,
        storage_connection_string=azurite.connection_string,
        contract="lenient",
    )
    with EmulatorServer(config) as server, requests.Session() as s:
        assert server.port > 0
        api = EmulatorApi(server.base_url, s)
        assert s.get(f"{server.base_url}/healthz", timeout=5).json() == {"status": "ok"}
        name = api.submit(body(ds(prefix), ds(out)))["name"]
        assert api.wait_status(name)["properties"]["status"] == "Completed"
        assert server.store.get(name) is not None
    assert read_lines(container, out) == ["0,0,a.csv"]
    with pytest.raises(RuntimeError):
        _ = server.port
