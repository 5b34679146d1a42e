"""Blob trigger: score each file uploaded under ``SCORING_BLOB_PATH`` (``scoring-input/{name}``).

With ``SCORING_BLOB_MODE=folder-marker`` only a marker blob ``scoring-input/<folder>/<marker>``
(``SCORING_MARKER_NAME``, default ``_READY``) starts a run: one ``UriFolder`` run over the
folder; data files start nothing and misplaced markers are refused with a log line
(``triggers/blob_folder.py``).

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
    blob_trigger_source,
    get_settings,
)
from batch_runs.starts import (
    blob_source_name,
    instance_id_for_blob,
)
from batch_runs.telemetry import run_fields
from triggers.blob_folder import FOLDER_MARKER_MODE, start_folder_run
from triggers.run_start import start_once, starter_request

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
    settings = get_settings()
    if settings.scoring_blob_mode == FOLDER_MARKER_MODE:
        await start_folder_run(blob, client, settings)
        return
    if not blob.length:
        logger.info("blob %s is empty (0 bytes); skipped", name)
        return
    etag = _etag(blob) or hashlib.sha256(blob.read()).hexdigest()
    instance_id = instance_id_for_blob(name, etag)
    if await client.get_status(instance_id):
        logger.info("blob %s (ETag %s) already has run %s; skipped", name, etag, instance_id)
        return

    request = starter_request(
        {
            "endpoint_input_uri": redact_url(blob.uri or ""),
            "endpoint_input_type": "UriFile",
            "trigger": "blob",
        },
        settings,
        run_id=instance_id,
        now=datetime.now(UTC),
        source_name=blob_source_name(name),
        what=f"a run for blob {name!a}",
    )
    if not await start_once(client, instance_id, request, f"blob {name}"):
        return
    fields = run_fields(run_id=instance_id, endpoint=request.endpoint_uri, trigger="blob")
    logger.info("blob %s: started run %s", name, instance_id, extra=fields)
