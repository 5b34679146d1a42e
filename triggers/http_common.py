"""What the HTTP route modules share: JSON answers, the 400/500 shapes and this API's links."""

import json
import logging

import azure.functions as func

from batch_runs import FieldError, InvalidRunRequest, SettingsError
from batch_runs.starts import error_body

logger = logging.getLogger(__name__)

JSON = "application/json"


def json_response(body: dict, status: int, headers: dict | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body), status_code=status, mimetype=JSON, headers=headers or {}
    )


def invalid(field: str, message: str) -> func.HttpResponse:
    """400 for one bad field, in the same shape as every other invalid run request."""
    return json_response(InvalidRunRequest([FieldError(field, message)]).to_error_body(), 400)


def misconfigured(exc: SettingsError) -> func.HttpResponse:
    """500 naming the invalid setting (the settings, not the request, are wrong)."""
    logger.error("app settings are invalid: %s", exc)
    message = f"The app's settings are invalid: {exc}"
    return json_response(error_body("ConfigurationError", message), 500)


def resource_uri(req: func.HttpRequest, collection: str, resource_id: str) -> str:
    """``<api root>/<collection>/<id>`` from the request's own URL (this API's links)."""
    base = req.url.split("?", 1)[0].rstrip("/")
    marker = f"/{collection}"
    root = base[: base.rindex(marker)] if marker in base else base
    return f"{root}/{collection}/{resource_id}"
