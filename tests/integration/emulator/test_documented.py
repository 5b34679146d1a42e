"""The ``documented`` contract profile: every unconfirmed behaviour at its least helpful.

Sources (see also aml_emulator/README.md, "Profiles"):

- data-plane swagger ``2020-09-01-dataplanepreview`` (Azure/azure-sdk-for-python
  ``sdk/ml/azure-ai-ml/swagger/.../preview/2020-09-01-dataplanepreview/mfe.json``):
  ``BatchJobEndpoint_Create`` answers 200 *or* 201; ``#/definitions/BatchJob`` has ``name``,
  ``tags`` and ``properties`` but no error field and ``additionalProperties: false``; no
  ``repeatability_request-id`` header parameter;
- ARM Jobs API (azure-ai-ml ``_restclient/v2024_04_01_preview/operations/_jobs_operations.py``):
  ``build_list_request`` query ``$skip``/``jobType``/``tag``/``listViewType``/``properties``,
  ``_cancel_initial`` 200 or 202 + ``Location`` + ``Retry-After``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.blob import ContainerClient

from tests.integration.emulator.helpers import (
    WS_ID,
    EmulatorApi,
    body,
    csv_text,
    ds,
    jwt,
    put_blobs,
    running_emulator,
    uid,
)
from tests.support import Azurite

pytestmark = pytest.mark.integration

API = "api-version=2024-04-01"
# The profile must come from the default / config file here, whatever the caller's environment.
NO_ENV_PROFILE = {"AML_EMULATOR_CONTRACT": ""}
# This emulator has an audience-checking endpoint, so the workspace-wide ARM list wants an
# ARM token.
ARM_TOKEN = jwt("https://management.azure.com")
CONFIG = {
    "arm_page_size": 2,
    "datastores": {"workspaceblobstore": "azureml-blobstore"},
    "endpoints": {"heart-classifier": {}, "strict": {"reject_audience": True}},
}


@pytest.fixture(scope="module")
def doc_url(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An emulator under the documented profile (the default: no flag, no config key)."""
    root = tmp_path_factory.mktemp("documented")
    config = root / "config.json"
    config.write_text(json.dumps(CONFIG))
    with running_emulator(
        state=root / "state.sqlite",
        connection_string=azurite.connection_string,
        config=config,
        log_dir=root,
        contract=None,
        env=NO_ENV_PROFILE,
    ) as (_proc, url):
        yield url


@pytest.fixture
def doc(doc_url: str) -> Iterator[EmulatorApi]:
    with requests.Session() as session:
        client = EmulatorApi(doc_url, session)
        client.admin("DELETE", "faults")
        yield client
        client.admin("DELETE", "faults")


@pytest.fixture
def folder(container: ContainerClient) -> str:
    prefix = uid("doc")
    put_blobs(container, {f"{prefix}/a.csv": csv_text(2)})
    return prefix


def _arm(api: EmulatorApi, path: str = "", **params: str) -> requests.Response:
    return api.session.get(
        f"{api.base_url}{WS_ID}/jobs{path}",
        params={"api-version": "2024-04-01", **params},
        headers=api.auth(ARM_TOKEN),
        timeout=30,
    )


def _list_all(api: EmulatorApi, **params: str) -> tuple[list[dict[str, Any]], int]:
    """Follow nextLink; return every item and the number of pages."""
    response = _arm(api, **params)
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["value"]
        pages += 1
        if not page.get("nextLink"):
            return items, pages
        response = api.session.get(page["nextLink"], headers=api.auth(ARM_TOKEN), timeout=30)


def _job_body(folder: str, **props: Any) -> dict[str, Any]:
    return body(ds(folder), ds(f"{uid('out')}/p.csv"), **props)


def test_invoke_alternates_201_and_200_and_the_id_is_not_an_arm_id(
    doc: EmulatorApi, folder: str
) -> None:
    codes, jobs = [], []
    for _ in range(2):
        response = doc.invoke(_job_body(folder))
        codes.append(response.status_code)
        jobs.append(response.json())
    assert sorted(codes) == [200, 201]
    for job in jobs:
        assert str(uuid.UUID(job["name"])) == job["name"]
        assert job["id"] == job["name"]  # no workspace to read out of it
        assert "/workspaces/" not in job["id"]


def test_client_name_and_repeatability_id_are_ignored(doc: EmulatorApi, folder: str) -> None:
    tag = uid("run")
    payload = _job_body(folder, name=uid("client-name"), Tags={"run": tag})
    request_id = str(uuid.uuid4())
    first = doc.invoke(payload, **{"repeatability_request-id": request_id})
    second = doc.invoke(payload, **{"repeatability_request-id": request_id})
    assert {first.status_code, second.status_code} <= {200, 201}
    names = {first.json()["name"], second.json()["name"]}
    assert len(names) == 2
    assert payload["properties"]["name"] not in names
    found, _ = _list_all(doc, tag="run")
    assert names <= {j["name"] for j in found}


def test_tags_and_properties_are_stored_and_shown_on_both_planes(
    doc: EmulatorApi, folder: str
) -> None:
    payload = _job_body(folder, Tags={"run": "r1"}, Properties={"runId": "abc", "k": "v"})
    name = doc.invoke(payload).json()["name"]
    plane = doc.job(name)["properties"]
    assert plane["tags"] == {"run": "r1"}
    assert plane["properties"]["runId"] == "abc"
    arm = _arm(doc, f"/{name}")
    assert arm.status_code == 200
    resource = arm.json()
    assert resource["id"] == f"{WS_ID}/jobs/{name}"
    assert resource["type"] == "Microsoft.MachineLearningServices/workspaces/jobs"
    props = resource["properties"]
    assert props["jobType"] == "Pipeline"
    assert props["tags"] == {"run": "r1"}
    assert props["properties"] == {"runId": "abc", "k": "v"}
    assert props["status"] in ("NotStarted", "Queued", "Preparing", "Running", "Finalizing")
    assert props["services"]["Studio"]["endpoint"].startswith("https://ml.azure.com/runs/")


def test_failed_job_has_no_error_text_but_admin_shows_it(doc: EmulatorApi) -> None:
    name = doc.invoke(body(ds(f"{uid('missing')}/"), ds(f"{uid('o')}/p.csv"))).json()["name"]
    job = doc.wait_status(name)
    assert job["properties"]["status"] == "Failed"
    assert "errorMessage" not in job["properties"]
    assert not [k for k in job["properties"] if "error" in k.lower()]
    arm = _arm(doc, f"/{name}").json()["properties"]
    assert not [k for k in arm if "error" in k.lower()]
    admin = doc.admin("GET", f"jobs/{name}").json()
    assert "Dataset initialization failed" in admin["error_message"]


def test_cancel_of_a_terminal_job_is_a_400_user_error(doc: EmulatorApi) -> None:
    name = doc.invoke(body(ds(f"{uid('missing')}/"), ds(f"{uid('o')}/p.csv"))).json()["name"]
    assert doc.wait_status(name)["properties"]["status"] == "Failed"
    response = doc.cancel(name)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "UserError"
    assert doc.job(name)["properties"]["status"] == "Failed"


def test_cancel_of_a_running_job_then_arm_get_follows_location(
    doc: EmulatorApi, folder: str
) -> None:
    doc.admin("POST", "faults", {"kind": "job", "script": [["Running", 3600]]})
    name = doc.invoke(_job_body(folder)).json()["name"]
    assert doc.job(name)["properties"]["status"] == "Running"  # never ends by itself
    response = doc.cancel(name)
    assert response.status_code == 202
    assert int(response.headers["Retry-After"]) >= 1
    location = response.headers["Location"]
    assert location.endswith(f"{WS_ID}/jobs/{name}?api-version=2023-02-01-preview")

    def status() -> str:
        got = doc.session.get(location, headers=doc.auth(), timeout=30)
        assert got.status_code == 200
        return str(got.json()["properties"]["status"])

    assert status() in ("CancelRequested", "Canceled")
    assert doc.wait_status(name)["properties"]["status"] == "Canceled"
    assert status() == "Canceled"


def test_arm_routes_want_an_api_version(doc: EmulatorApi) -> None:
    response = doc.session.get(
        f"{doc.base_url}{WS_ID}/jobs", headers=doc.auth(ARM_TOKEN), timeout=30
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MissingApiVersionParameter"
    cancel = doc.session.post(
        f"{doc.base_url}{WS_ID}/jobs/x/cancel", headers=doc.auth(), timeout=30
    )
    assert cancel.status_code == 400


def test_arm_list_filters_on_tag_key_and_properties_and_pages(
    doc: EmulatorApi, folder: str
) -> None:
    marker = uid("m")
    made = {}
    for i in range(5):
        props = {"marker": marker, "n": str(i)}
        tags = {marker: "x"} if i % 2 == 0 else {"other": marker}
        made[i] = doc.invoke(_job_body(folder, Tags=tags, Properties=props)).json()["name"]
    by_tag, pages = _list_all(doc, tag=marker)
    assert [j["name"] for j in by_tag] == [made[4], made[2], made[0]]  # newest first
    assert pages == 2  # page size 2 in this emulator's config
    assert all(marker in j["properties"]["tags"] for j in by_tag)
    by_prop, _ = _list_all(doc, properties=f"marker={marker}")
    assert {j["name"] for j in by_prop} == set(made.values())
    both, _ = _list_all(doc, properties=f"marker={marker},n=3")
    assert [j["name"] for j in both] == [made[3]]
    present, _ = _list_all(doc, tag=marker, properties="n")
    assert len(present) == 3
    assert _list_all(doc, tag=f"{marker}=x")[0] == []  # a tag *key*, not key=value
    assert _list_all(doc, tag=marker, listViewType="ArchivedOnly")[0] == []
    assert len(_list_all(doc, tag=marker, listViewType="All")[0]) == 3
    assert _list_all(doc, tag=marker, jobType="Command")[0] == []
    assert len(_list_all(doc, tag=marker, jobType="Pipeline")[0]) == 3


def test_arm_list_paging_is_stable_while_jobs_are_created(doc: EmulatorApi, folder: str) -> None:
    marker = uid("p")
    names = [doc.invoke(_job_body(folder, Tags={marker: "1"})).json()["name"] for _ in range(3)]
    first = _arm(doc, tag=marker).json()
    doc.invoke(_job_body(folder, Tags={marker: "1"}))  # a newer job appears meanwhile
    second = doc.session.get(first["nextLink"], headers=doc.auth(ARM_TOKEN), timeout=30).json()
    seen = [j["name"] for j in first["value"] + second["value"]]
    assert seen == list(reversed(names))
    assert second["nextLink"] is None


@pytest.mark.parametrize(
    ("query", "param"),
    [({"listViewType": "Everything"}, "listViewType"), ({"$skip": "abc"}, "$skip")],
)
def test_arm_list_rejects_bad_parameters(
    doc: EmulatorApi, query: dict[str, str], param: str
) -> None:
    response = _arm(doc, **query)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(param)


def test_arm_list_wants_the_management_audience_when_audiences_are_checked(
    doc: EmulatorApi,
) -> None:
    url = f"{doc.base_url}{WS_ID}/jobs?{API}"
    ml = doc.session.get(url, headers=doc.auth(jwt("https://ml.azure.com")), timeout=30)
    assert ml.status_code == 401
    arm = doc.session.get(url, headers=doc.auth(jwt("https://management.azure.com")), timeout=30)
    assert arm.status_code == 200


def test_arm_get_of_unknown_job_and_workspace(doc: EmulatorApi) -> None:
    assert _arm(doc, "/no-such-job").status_code == 404
    other = WS_ID.replace("local-ws", "other-ws")
    response = doc.session.get(
        f"{doc.base_url}{other}/jobs?{API}", headers=doc.auth(ARM_TOKEN), timeout=30
    )
    assert response.status_code == 404


# --- faults the app's e2e tests use under this profile -----------------------------------------


def test_drop_fault_creates_the_job_and_loses_the_answer(doc: EmulatorApi, folder: str) -> None:
    tag = uid("lost")
    before = doc.admin("GET", "counters").json()["jobs_created"]
    doc.admin("POST", "faults", {"kind": "drop", "route": "invoke"})
    with pytest.raises(requests.ConnectionError):
        doc.invoke(_job_body(folder, Tags={tag: "1"}))
    assert doc.admin("GET", "counters").json()["jobs_created"] == before + 1
    found, _ = _list_all(doc, tag=tag)
    assert len(found) == 1  # the client can find the job it never heard of
    assert doc.admin("GET", "faults").json()["faults"] == []
    assert doc.invoke(_job_body(folder)).status_code in (200, 201)


def test_drop_fault_with_seconds_is_a_read_timeout(doc: EmulatorApi, folder: str) -> None:
    doc.admin("POST", "faults", {"kind": "drop", "route": "invoke", "seconds": 2})
    with pytest.raises(requests.ReadTimeout):
        doc.session.post(
            doc.scoring_uri(), json=_job_body(folder), headers=doc.auth(), timeout=(5, 0.5)
        )


def test_refused_cancel_for_one_job(doc: EmulatorApi, folder: str) -> None:
    doc.admin("POST", "faults", {"kind": "job", "count": 2, "script": [["Running", 3600]]})
    refused = doc.invoke(_job_body(folder)).json()["name"]
    other = doc.invoke(_job_body(folder)).json()["name"]
    fault = {"kind": "http_error", "route": "cancel", "status": 403, "job": refused, "count": 5}
    assert doc.admin("POST", "faults", fault).status_code == 200
    response = doc.cancel(refused)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "AuthorizationFailed"
    assert doc.job(refused)["properties"]["status"] == "Running"
    assert doc.cancel(other).status_code == 202
    custom = {
        "kind": "http_error",
        "route": "cancel",
        "status": 400,
        "job": refused,
        "code": "UserError",
        "message": "Cancel is not allowed now",
    }
    doc.admin("DELETE", "faults")
    doc.admin("POST", "faults", custom)
    second = doc.cancel(refused)
    assert second.status_code == 400
    assert second.json()["error"] == {"code": "UserError", "message": "Cancel is not allowed now"}
    assert doc.cancel(refused).status_code == 202


def test_config_key_and_environment_choose_the_profile(
    azurite: Azurite, tmp_path: Path, container: ContainerClient
) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"contract": "lenient"}))
    with (
        running_emulator(
            state=tmp_path / "a.sqlite",
            connection_string=azurite.connection_string,
            config=config,
            log_dir=tmp_path,
            contract=None,
            env=NO_ENV_PROFILE,
        ) as (_p, url),
        requests.Session() as s,
    ):
        job = EmulatorApi(url, s).invoke(body(ds(f"{uid('x')}/"))).json()
        assert job["id"] == f"{WS_ID}/jobs/{job['name']}"  # lenient: ARM-form id

    env = {"AML_EMULATOR_CONTRACT": "lenient"}
    with (
        running_emulator(
            state=tmp_path / "b.sqlite",
            connection_string=azurite.connection_string,
            log_dir=tmp_path / "b",
            contract=None,
            env=env,
        ) as (_p, url),
        requests.Session() as s,
    ):
        job = EmulatorApi(url, s).invoke(body(ds(f"{uid('x')}/"))).json()
        assert job["id"] == f"{WS_ID}/jobs/{job['name']}"
    with (
        running_emulator(
            state=tmp_path / "c.sqlite",
            connection_string=azurite.connection_string,
            config=config,
            log_dir=tmp_path / "c",
            contract="documented",  # the flag wins over the config file
        ) as (_p, url),
        requests.Session() as s,
    ):
        job = EmulatorApi(url, s).invoke(body(ds(f"{uid('x')}/"))).json()
        assert job["id"] == job["name"]


def test_the_library_default_is_documented() -> None:
    from aml_emulator import EmulatorConfig

    assert EmulatorConfig().contract == "documented"
    assert EmulatorConfig().documented
    assert EmulatorConfig().arm_page_size == 3
