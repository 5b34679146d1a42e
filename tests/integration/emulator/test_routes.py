"""Data plane, ARM cancel, auth and request errors over real HTTP."""

from __future__ import annotations

import uuid

import pytest
from azure.storage.blob import ContainerClient

from tests.integration.emulator.helpers import (
    WS_ID,
    EmulatorApi,
    body,
    csv_text,
    ds,
    jwt,
    put_blobs,
    uid,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def folder(container: ContainerClient) -> str:
    """A fresh input folder with one small CSV."""
    prefix = uid("in")
    put_blobs(container, {f"{prefix}/a.csv": csv_text(3)})
    return prefix


def test_healthz(api: EmulatorApi) -> None:
    response = api.session.get(f"{api.base_url}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("pascal", [True, False], ids=["PascalCase", "camelCase"])
def test_invoke_returns_the_batch_job_resource_in_both_casings(
    api: EmulatorApi, folder: str, pascal: bool
) -> None:
    out = ds(f"{uid('out')}/predictions.csv")
    response = api.invoke(body(ds(folder + "/"), out, pascal=pascal))
    assert response.status_code == 200
    job = response.json()
    name = job["name"]
    assert str(uuid.UUID(name)) == name  # a GUID when no name is given
    assert job["id"] == f"{WS_ID}/jobs/{name}"
    assert job["type"] == "Microsoft.MachineLearningServices/workspaces/batchEndpoints/jobs"
    props = job["properties"]
    assert props["status"] == "NotStarted"
    assert props["provisioningState"] == "InProgress"
    assert props["inputData"] == {
        "heart_data": {"jobInputType": "UriFolder", "uri": ds(folder + "/")}
    }
    assert props["outputData"] == {"score": {"jobOutputType": "UriFile", "uri": out}}
    assert props["interactionEndpoints"]["Studio"]["endpoint"] == (
        f"https://ml.azure.com/runs/{name}?wsid={WS_ID}"
    )
    assert props["tags"] == {}
    assert "errorMessage" not in props
    assert job["systemData"]["createdByType"] == "User"
    assert job["systemData"]["createdAt"].endswith("Z")
    done = api.wait_status(name)
    assert done["properties"]["status"] == "Completed"
    assert done["properties"]["provisioningState"] == "Succeeded"
    assert done["properties"]["properties"] == {"rowsScored": "3", "filesScored": "1"}
    assert "startTime" in done["properties"]
    assert "endTime" in done["properties"]


DEFAULT_SEQUENCE = ["NotStarted", "Queued", "Preparing", "Running", "Finalizing", "Completed"]


def test_state_machine_follows_the_default_phases_in_order(api: EmulatorApi, folder: str) -> None:
    name = api.submit(body(ds(folder), ds(f"{uid('out')}/p.csv")))["name"]
    seen = api.statuses_until_final(name)
    # 0.1 s phases: a loaded machine may miss one between polls, but never the order.
    assert seen[0] == "NotStarted"
    assert seen[-1] == "Completed"
    assert seen == [s for s in DEFAULT_SEQUENCE if s in seen]
    assert len(seen) >= 4


def test_every_phase_is_observable_with_longer_phases(api: EmulatorApi, folder: str) -> None:
    api.admin(
        "POST",
        "faults",
        {"kind": "job", "count": 1, "script": [[s, 0.4] for s in DEFAULT_SEQUENCE[:-1]]},
    )
    name = api.submit(body(ds(folder), ds(f"{uid('out')}/p.csv")))["name"]
    assert api.statuses_until_final(name) == DEFAULT_SEQUENCE


def test_get_unknown_job_is_404_with_error_body(api: EmulatorApi) -> None:
    response = api.get("no-such-job")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "UserError", "message": "Job no-such-job not found"}
    }


def test_unknown_endpoint_is_404(api: EmulatorApi, folder: str) -> None:
    response = api.invoke(body(ds(folder)), endpoint="nope")
    assert response.status_code == 404
    assert "nope" in response.json()["error"]["message"]


def test_unknown_route_and_wrong_method(api: EmulatorApi) -> None:
    missing = api.session.get(f"{api.base_url}/nothing/here", timeout=5)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NotFound"
    wrong = api.session.delete(api.scoring_uri(), headers=api.auth(), timeout=5)
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "MethodNotAllowed"


def test_list_jobs_returns_the_endpoints_jobs(api: EmulatorApi, folder: str) -> None:
    blue = api.submit(body(ds(folder), ds(f"{uid('o')}/p.csv")), endpoint="multi")["name"]
    green = api.submit(
        body(ds(folder), ds(f"{uid('o')}/p.csv")),
        endpoint="multi",
        **{"azureml-model-deployment": "green"},
    )["name"]
    listed = api.session.get(api.scoring_uri("multi"), headers=api.auth(), timeout=5).json()
    names = [j["name"] for j in listed["value"]]
    assert blue in names
    assert green in names
    assert listed["nextLink"] is None
    only_green = api.session.get(
        api.scoring_uri("multi"), params={"deployment": "green"}, headers=api.auth(), timeout=5
    ).json()
    assert green in [j["name"] for j in only_green["value"]]
    assert blue not in [j["name"] for j in only_green["value"]]


# --- auth -------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, ""], ids=["no-header", "empty-token"])
def test_a_bearer_token_is_required(api: EmulatorApi, folder: str, token: str | None) -> None:
    response = api.invoke(body(ds(folder)), token=token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "AuthenticationFailed"
    assert api.get("x", token=token).status_code == 401
    assert api.cancel("x", token=token).status_code == 401


def test_basic_auth_is_not_a_bearer_token(api: EmulatorApi, folder: str) -> None:
    response = api.session.post(
        api.scoring_uri(),
        json=body(ds(folder)),
        headers={"Authorization": "Basic dXNlcjpwYXNz"},
        timeout=5,
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    "token",
    [jwt("https://management.azure.com"), "not-a-jwt", jwt("api://something-else")],
    ids=["arm-audience", "opaque", "other-audience"],
)
def test_reject_audience_refuses_wrong_audience(api: EmulatorApi, folder: str, token: str) -> None:
    response = api.invoke(body(ds(folder)), endpoint="strict", token=token)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Audience or service not allowed"


def test_reject_audience_accepts_the_ml_audience(api: EmulatorApi, folder: str) -> None:
    response = api.invoke(
        body(ds(folder), ds(f"{uid('o')}/p.csv")),
        endpoint="strict",
        token=jwt("https://ml.azure.com"),
    )
    assert response.status_code == 200
    name = response.json()["name"]
    # ARM cancel for that endpoint's job wants the management audience, not the data-plane one.
    assert api.cancel(name, token=jwt("https://ml.azure.com")).status_code == 401
    assert api.cancel(name, token=jwt("https://management.azure.com")).status_code == 202


def test_any_token_is_accepted_by_default(api: EmulatorApi, folder: str) -> None:
    response = api.invoke(body(ds(folder), ds(f"{uid('o')}/p.csv")), token="anything")
    assert response.status_code == 200


# --- deployments ---------------------------------------------------------------------------


def test_deployment_header_selects_a_deployment(api: EmulatorApi, folder: str) -> None:
    default = api.submit(body(ds(folder), ds(f"{uid('o')}/p.csv")), endpoint="multi")
    chosen = api.submit(
        body(ds(folder), ds(f"{uid('o')}/p.csv")),
        endpoint="multi",
        **{"azureml-model-deployment": "green"},
    )
    assert default["properties"]["deployment"] == "blue"
    assert chosen["properties"]["deployment"] == "green"


def test_unknown_deployment_is_refused(api: EmulatorApi, folder: str) -> None:
    response = api.invoke(
        body(ds(folder)), endpoint="multi", **{"azureml-model-deployment": "purple"}
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "purple" in message
    assert "azureml-model-deployment" in message


def test_no_default_deployment_and_no_header(api: EmulatorApi, folder: str) -> None:
    response = api.invoke(body(ds(folder)), endpoint="nodefault")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("No valid deployments to route to.")
    routed = api.invoke(
        body(ds(folder), ds(f"{uid('o')}/p.csv")),
        endpoint="nodefault",
        **{"azureml-model-deployment": "only"},
    )
    assert routed.status_code == 200


# --- names and idempotency -----------------------------------------------------------------


def test_custom_name_and_duplicate_name_conflict(api: EmulatorApi, folder: str) -> None:
    name = uid("job")
    first = api.invoke(body(ds(folder), ds(f"{uid('o')}/p.csv"), Name=name))
    assert first.status_code == 200
    assert first.json()["name"] == name
    again = api.invoke(body(ds(folder), ds(f"{uid('o')}/p.csv"), name=name))
    assert again.status_code == 409
    assert again.json() == {
        "error": {"code": "UserError", "message": f"A job with name '{name}' already exists"}
    }


def test_repeatability_request_id_returns_the_same_job(api: EmulatorApi, folder: str) -> None:
    before = api.admin("GET", "counters").json()["jobs_created"]
    request_id = str(uuid.uuid4())
    payload = body(ds(folder), ds(f"{uid('o')}/p.csv"))
    first = api.submit(payload, **{"repeatability_request-id": request_id})
    second = api.submit(payload, **{"repeatability_request-id": request_id})
    assert first["name"] == second["name"]
    assert api.admin("GET", "counters").json()["jobs_created"] == before + 1


def test_same_name_with_same_request_id_is_200_same_job(api: EmulatorApi, folder: str) -> None:
    name, request_id = uid("job"), str(uuid.uuid4())
    payload = body(ds(folder), ds(f"{uid('o')}/p.csv"), Name=name)
    first = api.invoke(payload, **{"repeatability_request-id": request_id})
    second = api.invoke(payload, **{"repeatability_request-id": request_id})
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["id"] == first.json()["id"]
    other = api.invoke(payload, **{"repeatability_request-id": str(uuid.uuid4())})
    assert other.status_code == 409


def test_overrides_tags_and_properties_are_echoed(api: EmulatorApi, folder: str) -> None:
    job = api.submit(
        body(
            ds(folder),
            ds(f"{uid('o')}/p.csv"),
            MiniBatchSize=2,
            Compute={"InstanceCount": 1},
            ErrorThreshold=-1,
            RetrySettings={"MaxRetries": 3, "Timeout": "PT300S"},
            OutputFileName="preds.csv",
            Tags={"team": "a"},
            Properties={"experimentName": "x"},
        )
    )
    props = job["properties"]
    assert props["miniBatchSize"] == 2
    assert props["compute"] == {"instanceCount": 1}
    assert props["errorThreshold"] == -1
    assert props["retrySettings"] == {"maxRetries": 3, "timeout": "PT300S"}
    assert props["outputFileName"] == "preds.csv"
    assert props["tags"] == {"team": "a"}
    assert props["properties"]["experimentName"] == "x"


# --- malformed requests ----------------------------------------------------------------------

BAD_BODIES = [
    ({"nope": 1}, "properties"),
    ({"properties": {}}, "properties.inputData"),
    ({"properties": {"InputData": {}}}, "properties.inputData"),
    (
        {"properties": {"InputData": {"a": {"Uri": "azureml://datastores/x/paths/y"}}}},
        "properties.inputData.a.jobInputType",
    ),
    (
        {"properties": {"InputData": {"a": {"JobInputType": "Weird", "Uri": "x"}}}},
        "properties.inputData.a.jobInputType",
    ),
    (
        {"properties": {"InputData": {"a": {"JobInputType": "MLTable", "Uri": "x"}}}},
        "properties.inputData.a.jobInputType",
    ),
    (
        {"properties": {"InputData": {"a": {"JobInputType": "Literal", "Value": "x"}}}},
        "properties.inputData.a.jobInputType",
    ),
    (
        {"properties": {"InputData": {"a": {"JobInputType": "UriFolder"}}}},
        "properties.inputData.a.uri",
    ),
    (
        {"properties": {"InputData": {"a": {"JobInputType": "UriFolder", "Uri": "not a uri"}}}},
        "properties.inputData.a.uri",
    ),
    (
        {
            "properties": {
                "InputData": {
                    "a": {"JobInputType": "UriFolder", "Uri": "azureml://datastores/w/paths/a"},
                    "b": {"JobInputType": "UriFolder", "Uri": "azureml://datastores/w/paths/b"},
                }
            }
        },
        "exactly one data input",
    ),
    (
        {
            "properties": {
                "InputData": {
                    "a": {"JobInputType": "UriFolder", "Uri": "azureml://datastores/w/paths/a"}
                },
                "OutputData": {"o": {"JobOutputType": "UriFile", "Uri": "nonsense"}},
            }
        },
        "properties.outputData.o.uri",
    ),
    (
        {
            "properties": {
                "InputData": {
                    "a": {"JobInputType": "UriFolder", "Uri": "azureml://datastores/w/paths/a"}
                },
                "MiniBatchSize": 0,
            }
        },
        "properties.miniBatchSize",
    ),
    (
        {
            "properties": {
                "InputData": {
                    "a": {"JobInputType": "UriFolder", "Uri": "azureml://datastores/w/paths/a"}
                },
                "RetrySettings": {"Timeout": "30 seconds"},
            }
        },
        "properties.retrySettings.timeout",
    ),
    (
        {
            "properties": {
                "InputData": {
                    "a": {"JobInputType": "UriFolder", "Uri": "azureml://datastores/w/paths/a"}
                },
                "Name": "bad name!",
            }
        },
        "properties.name",
    ),
    (
        {
            "properties": {
                "InputData": {
                    "a": {"JobInputType": "UriFolder", "Uri": "azureml://datastores/w/paths/a"}
                },
                "Bogus": 1,
            }
        },
        "properties.bogus",
    ),
    ([1, 2], "body"),
]


@pytest.mark.parametrize(("payload", "field"), BAD_BODIES)
def test_malformed_body_is_400_naming_the_field(
    api: EmulatorApi, payload: object, field: str
) -> None:
    before = api.admin("GET", "counters").json()["jobs_created"]
    response = api.invoke(payload)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] in ("UserError", "BadRequest")
    assert field in error["message"]
    assert api.admin("GET", "counters").json()["jobs_created"] == before


def test_non_json_body_is_400(api: EmulatorApi) -> None:
    response = api.session.post(
        api.scoring_uri(),
        data=b"{not json",
        headers=api.auth(**{"Content-Type": "application/json"}),
        timeout=5,
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert "body" in response.json()["error"]["message"]


# --- ARM cancel --------------------------------------------------------------------------------


def test_cancel_is_arm_style_and_stops_the_job(
    api: EmulatorApi, folder: str, container: ContainerClient
) -> None:
    out = f"{uid('o')}/p.csv"
    api.admin("POST", "faults", {"kind": "job", "count": 1, "script": [["Running", 30]]})
    name = api.submit(body(ds(folder), ds(out)))["name"]
    assert api.job(name)["properties"]["status"] == "Running"
    response = api.cancel(name)
    assert response.status_code == 202
    assert response.headers["Retry-After"].isdigit()
    location = response.headers["Location"]
    assert location.startswith(api.base_url + f"{WS_ID}/jobs/{name}")
    assert api.job(name)["properties"]["status"] == "CancelRequested"
    done = api.wait_status(name)
    assert done["properties"]["status"] == "Canceled"
    assert done["properties"]["provisioningState"] == "Canceled"
    # The Location answers with the job, and no predictions were written.
    followed = api.session.get(location, headers=api.auth(), timeout=5)
    assert followed.status_code == 200
    assert followed.json()["properties"]["status"] == "Canceled"
    assert not container.get_blob_client(out).exists()


def test_cancel_unknown_job_and_unknown_workspace(api: EmulatorApi) -> None:
    assert api.cancel("no-such-job").status_code == 404
    wrong_ws = WS_ID.replace("local-ws", "other-ws")
    response = api.session.post(
        f"{api.base_url}{wrong_ws}/jobs/x/cancel", headers=api.auth(), timeout=5
    )
    assert response.status_code == 404
    assert "other-ws" in response.json()["error"]["message"]


def test_cancel_of_a_finished_job_changes_nothing(api: EmulatorApi, folder: str) -> None:
    name = api.submit(body(ds(folder), ds(f"{uid('o')}/p.csv")))["name"]
    assert api.wait_status(name)["properties"]["status"] == "Completed"
    response = api.cancel(name)
    assert response.status_code == 200
    assert api.job(name)["properties"]["status"] == "Completed"
