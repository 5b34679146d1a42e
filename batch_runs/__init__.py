"""The run domain: run parameters and their rules, settings, run state and decisions.

Pure: it imports neither ``azure.functions`` nor ``azure.durable_functions`` (ruff TID251 and the
import-linter contracts enforce it). It is where the app's settings meet the client SDK
(:mod:`batch_runs.clients`), and it holds the activity cores, the typed Durable boundary
(:mod:`batch_runs.contracts`), instance ids and the run view (:mod:`batch_runs.starts`).
"""

from batch_runs.policy import (
    OUTPUT_TEMPLATE_FIELDS,
    deadline_from,
    default_output_uri,
    job_name_for,
    next_check_time,
    sanitize_name_part,
)
from batch_runs.request import FieldError, InvalidRunRequest, RunRequest, parse_run_request
from batch_runs.settings import (
    Settings,
    SettingsError,
    blob_trigger_source,
    get_settings,
    load_settings,
)
from batch_runs.uris import (
    INPUT_TYPES,
    endpoint_uri_problem,
    input_uri_problem,
    output_uri_problem,
)

__all__ = [
    "INPUT_TYPES",
    "OUTPUT_TEMPLATE_FIELDS",
    "FieldError",
    "InvalidRunRequest",
    "RunRequest",
    "Settings",
    "SettingsError",
    "blob_trigger_source",
    "deadline_from",
    "default_output_uri",
    "endpoint_uri_problem",
    "get_settings",
    "input_uri_problem",
    "job_name_for",
    "load_settings",
    "next_check_time",
    "output_uri_problem",
    "parse_run_request",
    "sanitize_name_part",
]
