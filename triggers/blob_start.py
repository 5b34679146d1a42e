"""Blob trigger: score each file uploaded under ``SCORING_BLOB_PATH`` (``scoring-input/{name}``).

One blob version → one run: the instance id is derived from the blob path and its ETag, so the
at-least-once deliveries of the blob trigger (restarts, scale-out, Event Grid retries) start
exactly one run. Zero-byte blobs (folder markers, half-finished uploads) are skipped.

A misconfiguration (no ``BATCH_ENDPOINT_URI``, bad settings) raises: the host retries and then
moves the blob to the poison queue, so the upload is not silently lost.

The trigger's source is the setting ``SCORING_BLOB_SOURCE`` (``LogsAndContainerScan`` by default,
``EventGrid`` on Flex Consumption). The host resolves ``%SETTING%`` in the path but not in the
source (it converts the indexed string straight to an enum), so the value is read when this
module is imported, by ``blob_trigger_source`` (which never raises). An app setting change
restarts the app, which indexes again. See docs/deploy.md.
"""

import hashlib
import logging
from datetime import UTC, datetime

import azure.durable_functions as df
import azure.functions as func

from batch_endpoint import redact_url
from batch_runs import (
    InvalidRunRequest,
    blob_trigger_source,
    get_settings,
    parse_run_request,
)
from batch_runs.starts import (
    blob_source_name,
    describe_problems,
    instance_id_for_blob,
)
from batch_runs.telemetry import run_fields
from orchestrators.batch_run import ORCHESTRATOR_NAME

logger = logging.getLogger(__name__)

bp = df.Blueprint()


def _etag(blob: func.InputStream) -> str | None:
    props = getattr(blob, "blob_properties", None) or {}
    for key in ("ETag", "Etag", "etag"):
        if props.get(key):
            return str(props[key]).strip('"')
    return None


@bp.blob_trigger(
    arg_name="blob",
    path="%SCORING_BLOB_PATH%",
    connection="AzureWebJobsStorage",
    source=func.BlobSource(blob_trigger_source()),
)
@bp.durable_client_input(client_name="client")
async def start_run_on_blob(blob: func.InputStream, client) -> None:
    name = blob.name or ""
    if not blob.length:
        logger.info("blob %s is empty (0 bytes); skipped", name)
        return
    etag = _etag(blob) or hashlib.sha256(blob.read()).hexdigest()
    instance_id = instance_id_for_blob(name, etag)
    if await client.get_status(instance_id):
        logger.info("blob %s (ETag %s) already has run %s; skipped", name, etag, instance_id)
        return

    settings = get_settings()
    try:
        request = parse_run_request(
            {
                "endpoint_input_uri": redact_url(blob.uri or ""),
                "endpoint_input_type": "UriFile",
                "trigger": "blob",
            },
            settings,
            run_id=instance_id,
            now=datetime.now(UTC),
            source_name=blob_source_name(name),
        )
    except InvalidRunRequest as exc:
        problems = describe_problems(exc.details)
        raise ValueError(f"cannot start a run for blob {name!a}: {problems}") from exc
    try:
        await client.start_new(ORCHESTRATOR_NAME, instance_id, request.to_dict())
    except Exception:
        if await client.get_status(instance_id):  # a concurrent delivery won the race
            logger.info("blob %s: run %s was started concurrently", name, instance_id)
            return
        raise
    fields = run_fields(run_id=instance_id, endpoint=request.endpoint_uri, trigger="blob")
    logger.info("blob %s: started run %s", name, instance_id, extra=fields)
