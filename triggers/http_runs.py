"""HTTP routes: start a run, read a run, cancel a run.

- ``POST /api/runs``: body = run parameters (ADF names). 400 names every bad field and starts
  nothing; a body over 64 KiB is 413 and is not parsed; JSON nested deeper than a flat object
  needs is 400. An ``Idempotency-Key`` header maps to a deterministic instance id, so a repeated
  call returns the existing run (202, ``Idempotent-Replayed: true``) and starts nothing new.
- ``GET /api/runs/{instance_id}``: the friendly run view (job name, job status, polls, next
  check, Studio link, output or error); 404 for unknown ids.
- ``POST /api/runs/{instance_id}/cancel``: raises the ``cancel`` event; the orchestrator cancels
  the Azure ML job and ends when the job reports ``Canceled``. On a Terminated or Failed run
  whose job still runs (e.g. terminated through the management API), the job is cancelled
  directly and the reconciliation recorded (``triggers/reconcile.py``); 409 when there is
  nothing to cancel.
- ``GET /api/runs``: run views, filtered and paged through the Durable management API
  (``batch_runs.run_control``: the SDK's ``get_status_by`` reads only the first page).
- ``POST /api/runs/{instance_id}/rerun``: a new run with the ended run's parameters
  (``rerun_of`` recorded; a template-made output path is made anew).

Starters are ``async def`` (the Durable client middleware awaits them) and never block.
"""

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from batch_runs import (
    InvalidRunRequest,
    RunRequest,
    Settings,
    SettingsError,
    get_settings,
    parse_run_request,
)
from batch_runs.clients import get_session
from batch_runs.notify import notification_view, notify_instance_id, notify_url_of
from batch_runs.reconcile import ReconcileFailed, candidate_of, job_left_active
from batch_runs.run_control import (
    HttpInstancesApi,
    ManagementApiError,
    ManagementEndpoint,
    list_runs,
    parse_list_query,
    rerun_of,
    rerun_parameters,
    run_parameters_of,
)
from batch_runs.starts import (
    ACTIVE_STATUSES,
    IDEMPOTENCY_HEADER,
    BodyTooLarge,
    decode_json_body,
    error_body,
    instance_id_for_idempotency_key,
    is_valid_instance_id,
    run_view,
    runtime_name,
)
from batch_runs.state import CANCEL_EVENT
from batch_runs.telemetry import run_fields
from orchestrators.batch_run import ORCHESTRATOR_NAME
from triggers.http_common import invalid, json_response, misconfigured, resource_uri
from triggers.reconcile import read_reconciliation, reconcile_one

logger = logging.getLogger(__name__)

bp = df.Blueprint()


def _accepted(
    req: func.HttpRequest,
    client: df.DurableOrchestrationClient,
    instance_id: str,
    *,
    replayed: bool = False,
) -> func.HttpResponse:
    """202 with this API's own links to the run.

    Not the Durable check-status payload: its management URLs carry the extension's system key,
    which would let anyone holding a function key start any orchestration with any input,
    terminate or purge any run. Callers watch and cancel runs through this API.
    """
    run_uri = resource_uri(req, "runs", instance_id)
    body = {"id": instance_id, "runStatusUri": run_uri, "cancelUri": f"{run_uri}/cancel"}
    headers = {"Location": run_uri, "Retry-After": "10"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return json_response(body, 202, headers)


async def _find_run(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> tuple[str, Any, func.HttpResponse | None]:
    """``(instance_id, status, None)`` for a known run, else ``(.., .., error response)``."""
    instance_id = req.route_params.get("instance_id", "")
    if not is_valid_instance_id(instance_id):
        return instance_id, None, invalid("instance_id", "instance_id is not a valid run id")
    status = await client.get_status(instance_id, show_input=True)
    if not status:
        return (
            instance_id,
            None,
            json_response(error_body("RunNotFound", f"No run with id '{instance_id}'."), 404),
        )
    return instance_id, status, None


async def _find_batch_run(
    req: func.HttpRequest, client: df.DurableOrchestrationClient
) -> tuple[str, Any, str, func.HttpResponse | None]:
    """As :func:`_find_run`, plus the runtime status; 409 for an instance that is no batch run."""
    instance_id, status, problem = await _find_run(req, client)
    if problem is not None:
        return instance_id, status, "", problem
    runtime = runtime_name(status)
    if status.name != ORCHESTRATOR_NAME:
        message = f"Run '{instance_id}' is not a batch run."
        return instance_id, status, runtime, json_response(error_body("NotABatchRun", message), 409)
    return instance_id, status, runtime, None


def _new_run(
    req: func.HttpRequest,
) -> tuple[str, str | None, Settings | None, func.HttpResponse | None]:
    """``(run id, Idempotency-Key, settings, None)`` for a run about to start, else an error.

    The run id comes from the key (the same key, the same run) or is random without one.
    """
    key = req.headers.get(IDEMPOTENCY_HEADER)
    try:
        instance_id = instance_id_for_idempotency_key(key) if key is not None else uuid.uuid4().hex
    except ValueError as exc:
        return "", key, None, invalid(IDEMPOTENCY_HEADER, str(exc))
    try:
        return instance_id, key, get_settings(), None
    except SettingsError as exc:
        return instance_id, key, None, misconfigured(exc)


async def _start_once(
    req: func.HttpRequest,
    client: df.DurableOrchestrationClient,
    instance_id: str,
    key: str | None,
    request: RunRequest,
    what: str,
) -> func.HttpResponse:
    """Start the run unless its Idempotency-Key already started it (202 replayed then)."""
    if key is not None and await client.get_status(instance_id):
        logger.info("run %s: Idempotency-Key replay; returning the existing run", instance_id)
        return _accepted(req, client, instance_id, replayed=True)
    try:
        await client.start_new(ORCHESTRATOR_NAME, instance_id, request.to_dict())
    except Exception as exc:  # the SDK raises a bare Exception (e.g. a concurrent duplicate)
        if key is not None and await client.get_status(instance_id):
            return _accepted(req, client, instance_id, replayed=True)
        logger.warning("run %s: could not start (%s): %s", instance_id, what, exc)
        return json_response(
            error_body("StartFailed", "The run could not be started; try again."), 503
        )
    fields = run_fields(run_id=instance_id, endpoint=request.endpoint_uri, trigger=request.trigger)
    logger.info("run %s: started (%s)", instance_id, what, extra=fields)
    return _accepted(req, client, instance_id)


@bp.route(route="runs", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_run_http(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        body = decode_json_body(req.get_body() or b"")
    except BodyTooLarge as exc:
        return json_response(exc.to_error_body(), 413)
    except InvalidRunRequest as exc:
        return json_response(exc.to_error_body(), 400)

    if isinstance(body, dict) and "rerun_of" in body:
        return invalid("rerun_of", "rerun_of is set by POST /api/runs/{id}/rerun, not here")
    if isinstance(body, dict) and "trigger" in body:
        return invalid("trigger", "trigger is set by the app (http for this route), not here")
    instance_id, key, settings, problem = _new_run(req)
    if problem is not None:
        return problem
    assert settings is not None
    try:
        request = parse_run_request(
            {**body, "trigger": "http"} if isinstance(body, dict) else body,
            settings,
            run_id=instance_id,
            now=datetime.now(UTC),
        )
    except InvalidRunRequest as exc:
        return json_response(exc.to_error_body(), 400)

    what = f"{request.input_type} on {request.endpoint_uri}"
    return await _start_once(req, client, instance_id, key, request, what)


async def notification_of(client: df.DurableOrchestrationClient, instance_id: str, status):
    """The run's notification outcome (from ``notify:<id>``), once an ended run asked for one."""
    runtime = runtime_name(status)
    if notify_url_of(status.input_) is None or runtime in ACTIVE_STATUSES:
        return None
    delivery = await client.get_status(notify_instance_id(instance_id))
    if not delivery:
        return notification_view(None, None, None)
    state = runtime_name(delivery)
    return notification_view(state, delivery.custom_status, delivery.output)


@bp.route(route="runs/{instance_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_run_http(req: func.HttpRequest, client) -> func.HttpResponse:
    instance_id, status, problem = await _find_run(req, client)
    if problem is not None:
        return problem
    view = run_view(
        instance_id=instance_id,
        name=status.name,
        runtime_status=runtime_name(status),
        custom_status=status.custom_status,
        output=status.output,
        created_time=status.created_time,
        last_updated_time=status.last_updated_time,
        rerun_of=rerun_of(status.input_),
        notification=await notification_of(client, instance_id, status),
    )
    if job_left_active(view["runtime_status"], status.custom_status):  # else nothing to read
        reconciliation = await read_reconciliation(client, instance_id)
        if reconciliation is not None:
            view["reconciliation"] = reconciliation.view()
    return json_response(view, 200)


@bp.route(route="runs/{instance_id}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def cancel_run_http(req: func.HttpRequest, client) -> func.HttpResponse:
    instance_id, status, runtime, problem = await _find_batch_run(req, client)
    if problem is not None:
        return problem
    if runtime not in ACTIVE_STATUSES:
        return await _cancel_ended_run(req, client, instance_id, status, runtime)
    await client.raise_event(
        instance_id, CANCEL_EVENT, {"requested_at": datetime.now(UTC).isoformat()}
    )
    logger.info("run %s: cancel requested", instance_id)
    run_uri = resource_uri(req, "runs", instance_id)
    return json_response(
        {"id": instance_id, "cancel_requested": True, "runStatusUri": run_uri},
        202,
        {"Location": run_uri},
    )


async def _cancel_ended_run(
    req: func.HttpRequest, client, instance_id: str, status: Any, runtime: str
) -> func.HttpResponse:
    """A Terminated or Failed run whose job may still run: cancel that job (202), else 409."""
    try:
        settings = get_settings()
    except SettingsError as exc:
        return misconfigured(exc)
    candidate = candidate_of(
        run_id=instance_id,
        runtime_status=runtime,
        custom_status=status.custom_status,
        durable_input=status.input_,
        default_endpoint=settings.batch_endpoint_uri,
    )
    if candidate is not None:
        try:
            done = await reconcile_one(client, candidate, by="cancel")
        except ReconcileFailed:
            message = f"Cancelling the job of run '{instance_id}' failed; try again."
            return json_response(error_body("CancelFailed", message), 503)
        if done.action == "cancelled":
            run_uri = resource_uri(req, "runs", instance_id)
            body = {
                "id": instance_id,
                "cancel_requested": True,
                "job_name": done.job_name,
                "reconciliation": done.view(),
                "runStatusUri": run_uri,
            }
            return json_response(body, 202, {"Location": run_uri})
        why = f"its job {done.job_name} has already ended {done.job_status}"
    else:
        why = "it has no job that is still active"
    message = f"Run '{instance_id}' is {runtime} and {why}; there is nothing to cancel."
    return json_response(error_body("RunNotActive", message), 409)


@bp.route(route="runs", methods=["GET"])
@bp.generic_input_binding(arg_name="client", type="durableClient")
async def list_runs_http(req: func.HttpRequest, client: str) -> func.HttpResponse:
    # The raw binding: its management URLs are needed, which the SDK's client object hides.
    try:
        query = parse_list_query(dict(req.params))
    except InvalidRunRequest as exc:
        return json_response(exc.to_error_body(), 400)
    try:
        settings = get_settings()
    except SettingsError as exc:
        return misconfigured(exc)
    try:
        api = HttpInstancesApi(ManagementEndpoint.from_binding(client), session=get_session())
        page = await asyncio.to_thread(
            list_runs,
            api,
            query,
            orchestrator=ORCHESTRATOR_NAME,
            default_endpoint=settings.batch_endpoint_uri,
        )
    except ManagementApiError as exc:
        if exc.status == 400 and query.store_token:
            return invalid("continuation", "continuation was refused by the run store")
        logger.warning("listing runs failed: %s", exc)
        return json_response(
            error_body("ListFailed", "The runs could not be listed; try again."), 503
        )
    return json_response(page.to_dict(), 200)


@bp.route(route="runs/{instance_id}/rerun", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def rerun_run_http(req: func.HttpRequest, client) -> func.HttpResponse:
    original_id, status, runtime, problem = await _find_batch_run(req, client)
    if problem is not None:
        return problem
    if runtime in ACTIVE_STATUSES:
        message = f"Run '{original_id}' is {runtime}; cancel it or wait for it to end first."
        return json_response(error_body("RunStillActive", message), 409)
    params = run_parameters_of(status.input_)
    if params is None:
        message = f"Run '{original_id}' has no run parameters to start again."
        return json_response(error_body("RerunNotPossible", message), 409)
    instance_id, key, settings, problem = _new_run(req)
    if problem is not None:
        return problem
    assert settings is not None
    body = rerun_parameters(
        params, original_id=original_id, output_template=settings.output_uri_template
    )
    try:
        request = parse_run_request(body, settings, run_id=instance_id, now=datetime.now(UTC))
    except InvalidRunRequest as exc:
        # The original's parameters no longer pass today's settings (e.g. the allowlist).
        error = exc.to_error_body()["error"]
        error.update(code="RerunNotPossible", message=f"Run '{original_id}': {exc}")
        return json_response({"error": error}, 409)
    return await _start_once(req, client, instance_id, key, request, f"rerun of {original_id}")
