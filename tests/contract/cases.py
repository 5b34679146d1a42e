"""The contract cases: each written once, run against the emulator (both profiles) and live.

Every case asserts the *invariant the app relies on*, which must hold on the real service,
and then, on the emulator, what its profile does (``documented``: the least helpful plausible
service; ``lenient``: the historical emulator). Sources are in each docstring; the short names:

- *swagger*: Azure/azure-sdk-for-python
  ``sdk/ml/azure-ai-ml/swagger/machinelearningservices/resource-manager/Microsoft.MachineLearningServices/preview/2020-09-01-dataplanepreview/mfe.json``
  (operations ``BatchJobEndpoint_Create``/``BatchJobEndpoint_Get``, ``#/definitions/BatchJob``);
- *jobs client*: azure-ai-ml ``_restclient/v2024_04_01_preview/operations/_jobs_operations.py``
  (``build_list_request`` L36-76, ``_cancel_initial``, ``begin_cancel``);
- *invoke*: azure-ai-ml ``operations/_batch_endpoint_operations.py`` (``invoke``) and
  ``_utils/_endpoint_utils.py`` (``validate_response``);
- *REST sample*: Azure/azureml-examples ``cli/batch-score-rest.sh`` (``JOB_ID_SUFFIX``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.target import Target

JOB_STATUSES = {
    "NotStarted",
    "Queued",
    "Preparing",
    "Provisioning",
    "Starting",
    "Running",
    "CancelRequested",
    "Finalizing",
    "Completed",
    "Failed",
    "Canceled",
    "NotResponding",
    "Paused",
    "Unknown",
}


def _is_guid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert isinstance(body.get("error"), dict), response.text
    assert body["error"].get("code"), response.text
    assert "message" in body["error"], response.text
    error: dict[str, Any] = body["error"]
    return error


def _missing_input(target: Target) -> str:
    base = target.output_prefix.rsplit("/paths/", 1)[0]
    return f"{base}/paths/contract-missing/{uuid.uuid4().hex}/"


def invoke_shape(target: Target) -> None:
    """Invoke answers 200 or 201 with a ``BatchJobResource``.

    swagger: ``BatchJobEndpoint_Create`` responses ``200`` *and* ``201`` (both
    ``#/definitions/BatchJobResource``); invoke: ``validate_response`` accepts ``[200, 201]``.
    App invariant: both codes are a success and carry the job.
    """
    codes = []
    for _ in range(2):
        response = target.invoke(target.body())
        assert response.status_code in (200, 201), response.text
        codes.append(response.status_code)
        job = response.json()
        assert isinstance(job["name"], str)
        assert job["name"]
        assert isinstance(job["id"], str)
        assert job["id"]
        assert job["properties"]["status"] in JOB_STATUSES
        assert job["properties"]["interactionEndpoints"]["Studio"]["endpoint"].startswith(
            "https://"
        )
    if target.profile == "documented":
        assert sorted(codes) == [200, 201]
    elif target.profile == "lenient":
        assert codes == [200, 200]


def name_honoured_or_not(target: Target) -> None:
    """A client job name is either honoured or replaced by a service GUID.

    swagger: ``BatchJob.name`` exists; invoke: azure-ai-ml sends ``job_name`` only under private
    preview (``if is_private_preview_enabled() and job_name``); azure-sdk-for-python#32763.
    App invariant: the job is known by the name the answer gives, whatever was asked.
    """
    wanted = f"contract-{uuid.uuid4().hex[:12]}"
    response = target.invoke(target.body(name=wanted))
    assert response.status_code in (200, 201), response.text
    got = response.json()["name"]
    assert got == wanted or _is_guid(got)
    assert target.job(got)["name"] == got
    if target.profile == "documented":
        assert got != wanted
        assert _is_guid(got)
    elif target.profile == "lenient":
        assert got == wanted


def repeat_with_same_name_and_repeatability_id(target: Target) -> None:
    """Repeating an invoke with the same name and ``repeatability_request-id``.

    swagger: no ``repeatability_request-id`` parameter; the dedupe is *inferred* (batch-endpoint
    -rest.md 2.1). App invariant: whatever the service does (same job, 409, or a second job), the
    ARM ``Jobs_List`` ``tag`` filter (jobs client: "Jobs returned will have this tag key") finds
    every job the invokes created, following ``nextLink``.
    """
    tag = f"contract-{uuid.uuid4().hex[:12]}"
    payload = target.body(name=tag, tags={tag: "1"})
    request_id = str(uuid.uuid4())
    first = target.invoke(payload, **{"repeatability_request-id": request_id})
    second = target.invoke(payload, **{"repeatability_request-id": request_id})
    assert first.status_code in (200, 201), first.text
    assert second.status_code in (200, 201, 409), second.text
    names = {first.json()["name"]}
    if second.status_code != 409:
        names.add(second.json()["name"])
    found = target.find_by_tag(tag, expected=len(names))
    assert {j["name"] for j in found} == names
    for job in found:
        assert tag in job["properties"]["tags"]
    if target.profile == "documented":
        assert len(names) == 2
    elif target.profile == "lenient":
        assert second.status_code == 200
        assert names == {tag}


def get_unknown_job(target: Target) -> None:
    """GET of an unknown job: 404 with an ARM-style error body (swagger: ``default`` →
    ``ErrorResponse``). App invariant: a 404 is "no such job", not a transient failure."""
    response = target.get(f"contract-{uuid.uuid4()}")
    assert response.status_code == 404, response.text
    _error(response)


def job_id_format(target: Target) -> None:
    """The data-plane ``id`` ends with the job name; its form is otherwise undocumented.

    REST sample: ``JOB_ID_SUFFIX=$(echo ${JOB_ID##/*/})`` takes the last path segment. App
    invariant: the name is ``name`` (= the id's last segment); the workspace comes from the
    app's ``AML_WORKSPACE_ID`` setting, never from the id.
    """
    response = target.invoke(target.body())
    assert response.status_code in (200, 201), response.text
    job = response.json()
    assert job["id"].rstrip("/").rsplit("/", 1)[-1] == job["name"]
    if target.profile == "documented":
        assert "/workspaces/" not in job["id"].lower()
    elif target.profile == "lenient":
        assert job["id"].lower() == f"{target.workspace_id}/jobs/{job['name']}".lower()


def failed_job_contents(target: Target) -> None:
    """A job that fails (missing input) ends ``Failed``; error text is not promised.

    swagger: ``#/definitions/BatchJob`` has no error field (``additionalProperties: false``).
    App invariant: ``status`` and the Studio link are there; any error text is a bonus.
    """
    response = target.invoke(target.body(input_uri=_missing_input(target)))
    assert response.status_code in (200, 201), response.text
    job = target.wait_final(response.json()["name"])
    props = job["properties"]
    assert props["status"] == "Failed"
    assert props["interactionEndpoints"]["Studio"]["endpoint"].startswith("https://")
    error_keys = [k for k in props if "error" in k.lower()]
    if target.profile == "documented":
        assert error_keys == []
    elif target.profile == "lenient":
        assert "Dataset initialization failed" in props["errorMessage"]


def cancel_running_job(target: Target) -> None:
    """ARM cancel of a running job: 200, or 202 with ``Location`` and ``Retry-After``; the job
    then ends ``Canceled`` (jobs client: ``_cancel_initial`` accepts ``[200, 202]``, reads both
    headers on 202; ``begin_cancel`` polls "final-state-via: location")."""
    target.hold_next_job_running()
    response = target.invoke(target.body())
    assert response.status_code in (200, 201), response.text
    name = response.json()["name"]
    cancel = target.cancel(name)
    assert cancel.status_code in (200, 202), cancel.text
    if cancel.status_code == 202:
        assert cancel.headers.get("Location")
        assert int(cancel.headers["Retry-After"]) >= 0
    assert target.wait_final(name)["properties"]["status"] == "Canceled"
    arm = target.arm_get(name)
    assert arm.status_code == 200, arm.text
    assert arm.json()["properties"]["status"] == "Canceled"


def cancel_finished_job(target: Target) -> None:
    """ARM cancel of a job that already ended: undocumented (azureml-assets PR #2496: cancelling
    a Finalizing job "is an error"). App invariant: never a 5xx, and the job keeps its final
    status, so "already final" can be read back with a GET."""
    response = target.invoke(target.body(input_uri=_missing_input(target)))
    assert response.status_code in (200, 201), response.text
    name = response.json()["name"]
    assert target.wait_final(name)["properties"]["status"] == "Failed"
    cancel = target.cancel(name)
    assert cancel.status_code in (200, 202, 400, 409), cancel.text
    assert target.job(name)["properties"]["status"] == "Failed"
    if target.profile == "documented":
        assert cancel.status_code == 400
        assert _error(cancel)["code"] == "UserError"
    elif target.profile == "lenient":
        assert cancel.status_code == 200


def arm_token_on_data_plane(target: Target) -> None:
    """The two audiences are not interchangeable (batch-endpoint-rest.md sec. 1): an ARM token on
    the scoring URI, and a data-plane token on ARM, are refused with 401 or 403."""
    created = target.invoke(target.body())
    assert created.status_code in (200, 201), created.text
    name = created.json()["name"]
    invoke = target.invoke(target.body(), token=target.arm_token())
    assert invoke.status_code in (401, 403), invoke.text
    get = target.get(name, token=target.arm_token())
    assert get.status_code in (401, 403), get.text
    arm = target.arm_get(name, token=target.data_token())
    assert arm.status_code in (401, 403), arm.text


def throttled_invoke_has_retry_after(target: Target) -> None:
    """429 carries ``Retry-After`` (generic ARM behaviour; unconfirmed for batch endpoints,
    batch-endpoint-rest.md sec. 6). Needs fault injection, so the emulator only."""
    if not target.can_inject_faults:
        pytest.skip("a real endpoint cannot be made to throttle on demand")
    target.arm_fault({"kind": "http_error", "route": "invoke", "status": 429, "retry_after": 2})
    response = target.invoke(target.body())
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    _error(response)
    assert target.invoke(target.body()).status_code in (200, 201)


def arm_list_filters(target: Target) -> None:
    """``Jobs_List`` ``tag`` (a key) and ``properties`` (``name`` or ``name=value``, all must
    hold) filters, followed through ``nextLink`` (jobs client, ``build_list_request`` and the
    ``JobsOperations.list`` docstring: "Comma-separated list of property names (and optionally
    values). Example: prop1,prop2=value2")."""
    key = f"contract-{uuid.uuid4().hex[:12]}"
    names = set()
    for i in range(3):
        response = target.invoke(target.body(tags={key: "1"}, properties={key: str(i)}))
        assert response.status_code in (200, 201), response.text
        names.add(response.json()["name"])
    assert {j["name"] for j in target.find_by_tag(key, expected=3)} == names
    by_value = target.list_jobs(properties=f"{key}=1")
    assert len([j for j in by_value if j["name"] in names]) == 1
    by_name = target.list_jobs(properties=key)
    assert names <= {j["name"] for j in by_name}


def output_as_datastore_arm_id(target: Target) -> None:
    """The output ``uri`` in the ``<datastore ARM id>/paths/<file>`` form is accepted
    (batch-endpoint-rest.md 2.7, "Datastore ARM id + path"; issue 10 "Body fixes"). App
    invariant: invoke accepts it; on the emulator the job also completes."""
    prefix = target.output_prefix.removeprefix("azureml://datastores/")
    datastore, _, path = prefix.partition("/paths/")
    uri = (
        f"{target.workspace_id}/datastores/{datastore}/paths/{path}/"
        f"{uuid.uuid4().hex}/predictions.csv"
    )
    payload = target.body()
    payload["properties"]["OutputData"]["score"]["Uri"] = uri
    response = target.invoke(payload)
    assert response.status_code in (200, 201), response.text
    if target.profile is not None:
        job = target.wait_final(response.json()["name"])
        assert job["properties"]["status"] == "Completed"


CASES: tuple[Callable[[Target], None], ...] = (
    invoke_shape,
    name_honoured_or_not,
    repeat_with_same_name_and_repeatability_id,
    get_unknown_job,
    job_id_format,
    failed_job_contents,
    cancel_running_job,
    cancel_finished_job,
    arm_token_on_data_plane,
    throttled_invoke_has_retry_after,
    arm_list_filters,
    output_as_datastore_arm_id,
)
