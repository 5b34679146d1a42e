"""The blob trigger in ``folder-marker`` mode: a marker blob starts one ``UriFolder`` run.

``scoring-input/<folder>/<marker>`` (``SCORING_MARKER_NAME``, default ``_READY``) starts one run
over ``scoring-input/<folder>/`` with the instance id ``folder-<hash(marker path, ETag)>``, so
duplicate deliveries of one marker version start nothing more. Data files start nothing; a
marker at the container root or in a nested folder is refused with a warning (batch endpoints
do not explore nested folders). The decisions are ``batch_runs.folders.marker_decision``.
"""

import logging
from datetime import UTC, datetime

import azure.functions as func

from batch_endpoint import redact_url
from batch_runs import Settings
from batch_runs.folders import folder_uri, instance_id_for_marker, marker_decision
from batch_runs.telemetry import run_fields
from triggers.run_start import start_once, starter_request

logger = logging.getLogger(__name__)

FOLDER_MARKER_MODE = "folder-marker"


def _version(blob: func.InputStream) -> str:
    props = getattr(blob, "blob_properties", None) or {}
    for key in ("ETag", "Etag", "etag", "CreatedOn", "Created"):
        if props.get(key):
            return str(props[key]).strip('"')
    return ""


async def start_folder_run(blob: func.InputStream, client, settings: Settings) -> None:
    """Start the folder's run for a marker blob; log why for anything else."""
    name = blob.name or ""
    marker = settings.scoring_marker_name
    decision = marker_decision(name, marker)
    if not decision.start:
        log = logger.warning if decision.refused else logger.info
        log("blob %s: no run (folder-marker mode): %s", ascii(name), decision.reason)
        return
    instance_id = instance_id_for_marker(name, _version(blob))
    if await client.get_status(instance_id):
        logger.info("marker %s already has run %s; skipped", ascii(name), instance_id)
        return
    uri = folder_uri(redact_url(blob.uri or ""), marker)
    request = starter_request(
        {"endpoint_input_uri": uri, "endpoint_input_type": "UriFolder", "trigger": "blob"},
        settings,
        run_id=instance_id,
        now=datetime.now(UTC),
        source_name=decision.folder.rstrip("/"),
        what=f"a folder run for marker {name!a}",
    )
    if not await start_once(client, instance_id, request, f"marker {name!a}"):
        return
    fields = run_fields(run_id=instance_id, endpoint=request.endpoint_uri, trigger="blob")
    logger.info(
        "marker %s: started folder run %s over %s", ascii(name), instance_id, uri, extra=fields
    )
