"""HTTP routes of batches: start one, read one, cancel one.

- ``POST /api/batches``: ``inputs`` (input URIs) or ``input_folder`` (split per file), the
  shared run parameters of ``POST /api/runs`` and ``max_parallel_jobs`` (1-100, default 4).
  400 names every bad field and starts nothing; an ``Idempotency-Key`` maps to one batch.
- ``GET /api/batches/{id}``: the batch in the run view's shape, with ``counts`` by state and
  each child's run view (paged: ``children_from``, ``children_top``).
- ``POST /api/batches/{id}/cancel``: no new child starts; every active child is cancelled (its
  verified cancel stops its job).

Cancelling fans out from here because an orchestrator cannot raise an event on another
instance in the Python SDK 1.x: ``DurableOrchestrationContext``
(azure/durable_functions/models/DurableOrchestrationContext.py) offers activities,
sub-orchestrations, timers, entities and waiting for events, but no ``raise_event``.

The pure rules live in ``batch_runs.batches``; the parent orchestrator in
``orchestrators/batch_parent.py``.
"""

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df
import azure.functions as func

from batch_runs import InvalidRunRequest, SettingsError, get_settings
from batch_runs.batches import (
    MAX_BATCH_BODY_BYTES,
    BatchRequest,
    batch_view,
    child_instance_id,
    instance_id_for_batch_key,
    parse_batch_request,
)
from batch_runs.starts import (
    ACTIVE_STATUSES,
    IDEMPOTENCY_HEADER,
    BodyTooLarge,
    decode_json_body,
    error_body,
    instance_id_for_idempotency_key,
    is_valid_instance_id,
    iso_text,
    run_view,
    runtime_name,
)
from batch_runs.state import CANCEL_EVENT
from orchestrators.batch_parent import BATCH_ORCHESTRATOR_NAME
from triggers.http_common import invalid, json_response, misconfigured, resource_uri

logger = logging.getLogger(__name__)

bp = df.Blueprint()

#: Child run views per page of ``GET /api/batches/{id}``.
DEFAULT_CHILDREN_TOP = 50
MAX_CHILDREN_TOP = 100
#: How long the cancel route waits for the parent to confirm it stopped starting children.
CANCEL_CONFIRM_SECONDS = 5.0


def _accepted(req: func.HttpRequest, batch_id: str, *, replayed: bool = False) -> func.HttpResponse:
    uri = resource_uri(req, "batches", batch_id)
    headers = {"Location": uri, "Retry-After": "10"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    body = {"id": batch_id, "batchStatusUri": uri, "cancelUri": f"{uri}/cancel"}
    return json_response(body, 202, headers)


def _batch_id(req: func.HttpRequest) -> tuple[str, str | None, func.HttpResponse | None]:
    key = req.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return f"batch-{uuid.uuid4().hex}", None, None
    try:
        return instance_id_for_batch_key(instance_id_for_idempotency_key(key)), key, None
    except ValueError as exc:
        return "", key, invalid(IDEMPOTENCY_HEADER, str(exc))


@bp.route(route="batches", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def start_batch_http(req: func.HttpRequest, client) -> func.HttpResponse:
    try:
        body = decode_json_body(req.get_body() or b"", max_bytes=MAX_BATCH_BODY_BYTES)
    except BodyTooLarge as exc:
        return json_response(exc.to_error_body(), 413)
    except InvalidRunRequest as exc:
        return json_response(exc.to_error_body(), 400)
    batch_id, key, problem = _batch_id(req)
    if problem is not None:
        return problem
    try:
        settings = get_settings()
    except SettingsError as exc:
        return misconfigured(exc)
    try:
        request = parse_batch_request(body, settings, batch_id=batch_id, now=datetime.now(UTC))
    except InvalidRunRequest as exc:
        return json_response(exc.to_error_body(), 400)
    return await _start_once(req, client, batch_id, key, request)


async def _start_once(
    req: func.HttpRequest, client, batch_id: str, key: str | None, request: BatchRequest
) -> func.HttpResponse:
    if key is not None and await client.get_status(batch_id):
        return _accepted(req, batch_id, replayed=True)
    try:
        await client.start_new(BATCH_ORCHESTRATOR_NAME, batch_id, {"batch": request.to_dict()})
    except Exception as exc:  # the SDK raises a bare Exception (e.g. a concurrent duplicate)
        if key is not None and await client.get_status(batch_id):
            return _accepted(req, batch_id, replayed=True)
        logger.warning("batch %s: could not start: %s", batch_id, exc)
        return json_response(
            error_body("StartFailed", "The batch could not be started; try again."), 503
        )
    size = len(request.inputs) if request.inputs else "a folder of"
    logger.info("batch %s: started (%s inputs, cap %d)", batch_id, size, request.max_parallel_jobs)
    return _accepted(req, batch_id)


async def _find_batch(req: func.HttpRequest, client) -> tuple[str, Any, func.HttpResponse | None]:
    batch_id = req.route_params.get("instance_id", "")
    if not is_valid_instance_id(batch_id):
        return batch_id, None, invalid("instance_id", "instance_id is not a valid batch id")
    status = await client.get_status(batch_id)
    if not status or status.name != BATCH_ORCHESTRATOR_NAME:
        return (
            batch_id,
            None,
            json_response(error_body("BatchNotFound", f"No batch with id '{batch_id}'."), 404),
        )
    return batch_id, status, None


def _page(params: dict[str, str]) -> tuple[int, int, func.HttpResponse | None]:
    values: dict[str, int] = {}
    for name, default, low, high in (
        ("children_from", 0, 0, 1_000_000),
        ("children_top", DEFAULT_CHILDREN_TOP, 1, MAX_CHILDREN_TOP),
    ):
        raw = params.get(name)
        if raw is None:
            values[name] = default
            continue
        # ASCII digits only and short: str.isdigit() accepts '²' (int() raises) and int()
        # refuses more than 4300 digits; either would be a 500.
        ok = raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))
        if not ok or not low <= int(raw) <= high:
            message = f"{name} must be an integer between {low} and {high}"
            return 0, 0, invalid(name, message)
        values[name] = int(raw)
    return values["children_from"], values["children_top"], None


async def _child_view(client, child_id: str) -> dict[str, Any] | None:
    status = await client.get_status(child_id)
    if not status:
        return None
    return run_view(
        instance_id=child_id,
        name=status.name,
        runtime_status=runtime_name(status),
        custom_status=status.custom_status,
        output=status.output,
        created_time=status.created_time,
        last_updated_time=status.last_updated_time,
    )


def _started_children(status: Any) -> int:
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    output = status.output if isinstance(status.output, dict) else {}
    value = custom.get("started_children", output.get("total", 0))
    return value if isinstance(value, int) else 0


@bp.route(route="batches/{instance_id}", methods=["GET"])
@bp.durable_client_input(client_name="client")
async def get_batch_http(req: func.HttpRequest, client) -> func.HttpResponse:
    start, top, problem = _page(dict(req.params))
    if problem is not None:
        return problem
    batch_id, status, problem = await _find_batch(req, client)
    if problem is not None:
        return problem
    started = _started_children(status)
    indices = range(start, min(started, start + top))
    found = await asyncio.gather(
        *(_child_view(client, child_instance_id(batch_id, i)) for i in indices)
    )
    children = [v for v in found if v is not None]
    custom = status.custom_status if isinstance(status.custom_status, dict) else {}
    total = custom.get("total") or started
    view = batch_view(
        instance_id=batch_id,
        runtime_status=runtime_name(status),
        custom_status=status.custom_status,
        output=status.output,
        created=iso_text(status.created_time),
        last_updated=iso_text(status.last_updated_time),
        children=children,
        children_next=start + top if start + top < total else None,
    )
    return json_response(view, 200)


async def _cancel_children(
    client, batch_id: str, indices: range, done: set[int], missing: set[int] | None = None
) -> int:
    """Raise ``cancel`` on each active child not yet handled; return how many were cancelled.

    Children that ended are marked handled; children that do not exist yet (just started by
    the parent) go into ``missing`` for another try.
    """
    count = 0
    for index in indices:
        if index in done:
            continue
        child_id = child_instance_id(batch_id, index)
        status = await client.get_status(child_id)
        if not status:
            if missing is not None:
                missing.add(index)
            continue
        if runtime_name(status) not in ACTIVE_STATUSES:
            done.add(index)
            continue
        try:
            await client.raise_event(child_id, CANCEL_EVENT, {"requested_by": batch_id})
        except Exception as exc:  # the child ended meanwhile
            logger.info("batch %s: child %s not cancelled: %s", batch_id, child_id, exc)
            continue
        done.add(index)
        count += 1
    return count


async def _cancel_late_children(client, batch_id: str, done: set[int]) -> int:
    """Children the parent started just before it saw the cancel.

    Waits (at most :data:`CANCEL_CONFIRM_SECONDS`) until the parent confirms it stopped
    starting (``cancel_requested`` in its status, with the number it had started), then cancels
    each of those children once it exists.
    """
    deadline = time.monotonic() + CANCEL_CONFIRM_SECONDS
    confirmed, started, cancelled = False, 0, 0
    while time.monotonic() < deadline:
        status = await client.get_status(batch_id)
        if not status:
            return cancelled
        custom = status.custom_status if isinstance(status.custom_status, dict) else {}
        confirmed = (
            bool(custom.get("cancel_requested")) or runtime_name(status) not in ACTIVE_STATUSES
        )
        started = _started_children(status)
        if confirmed:
            missing: set[int] = set()
            cancelled += await _cancel_children(client, batch_id, range(started), done, missing)
            if not missing:
                return cancelled
        await asyncio.sleep(0.2)
    logger.warning(
        "batch %s: cancel not confirmed by the parent within %.0f s; children it starts late "
        "may need their own cancel",
        batch_id,
        CANCEL_CONFIRM_SECONDS,
    )
    return cancelled


@bp.route(route="batches/{instance_id}/cancel", methods=["POST"])
@bp.durable_client_input(client_name="client")
async def cancel_batch_http(req: func.HttpRequest, client) -> func.HttpResponse:
    batch_id, status, problem = await _find_batch(req, client)
    if problem is not None:
        return problem
    runtime = runtime_name(status)
    if runtime not in ACTIVE_STATUSES:
        message = f"Batch '{batch_id}' is {runtime}; there is nothing to cancel."
        return json_response(error_body("BatchNotActive", message), 409)
    await client.raise_event(
        batch_id, CANCEL_EVENT, {"requested_at": datetime.now(UTC).isoformat()}
    )
    done: set[int] = set()
    cancelled = await _cancel_children(client, batch_id, range(_started_children(status)), done)
    cancelled += await _cancel_late_children(client, batch_id, done)
    logger.info("batch %s: cancel requested (%d active children)", batch_id, cancelled)
    uri = resource_uri(req, "batches", batch_id)
    body = {
        "id": batch_id,
        "cancel_requested": True,
        "children_cancelled": cancelled,
        "batchStatusUri": uri,
    }
    return json_response(body, 202, {"Location": uri})
