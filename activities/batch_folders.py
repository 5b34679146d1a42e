"""Activity ``list_batch_folder``: the files of a batch's ``input_folder`` as child input URIs.

Thin binding over ``batch_runs.folder_listing``. A folder that cannot be resolved (an unmapped
datastore), is empty or too large comes back as ``{"error": ...}`` (the batch fails, naming
it); a storage error raises, so the orchestrator's activity retry tries again.
"""

import azure.durable_functions as df

from batch_runs.clients import default_credential
from batch_runs.folder_listing import FolderListing, blob_lister, list_folder_uris
from batch_runs.folders import resolve_folder
from batch_runs.settings import get_settings

bp = df.Blueprint()

LIST_FOLDER_ACTIVITY = "list_batch_folder"


@bp.activity_trigger(input_name="payload")
def list_batch_folder(payload: dict) -> dict:
    settings = get_settings()
    try:
        location = resolve_folder(
            str(payload.get("input_folder") or ""), settings.output_datastore_urls
        )
    except ValueError as exc:
        return FolderListing(error=f"input_folder {exc}").to_dict()
    lister = blob_lister(
        # The host's storage connection (Azurite offline); used only for its own account.
        connection_string=settings.storage_connection,
        credential=lambda: default_credential(settings.azure_client_id),
    )
    return list_folder_uris(location, lister).to_dict()
