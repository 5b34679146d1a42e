"""Composition root: the Durable Functions app and its blueprints. Nothing else lives here.

Functions (names are the contract in ../shared/design.md):
- orchestrator ``batch_endpoint_run`` (orchestrators/batch_run.py)
- activities ``invoke_batch_endpoint``, ``get_batch_job``, ``cancel_batch_job``
  (activities/jobs.py), ``estimate_job_duration`` (activities/estimates.py)
- HTTP ``start_run_http``, ``get_run_http``, ``cancel_run_http``, ``list_runs_http``,
  ``rerun_run_http`` (triggers/http_runs.py)
- blob ``start_run_on_blob`` (triggers/blob_start.py), timer ``start_run_on_schedule``
  (triggers/schedule_start.py), timer ``purge_old_runs`` (triggers/maintenance.py), timer
  ``reconcile_jobs`` and its record orchestrator ``batch_run_reconciliation``
  (triggers/reconcile.py)
- orchestrator ``notify_delivery`` (orchestrators/notify_delivery.py); activities
  ``copy_run_output``, ``start_run_notification``, ``deliver_run_notification``
  (activities/handoff.py)
- batches: orchestrator ``batch_endpoint_batch`` (orchestrators/batch_parent.py), activity
  ``list_batch_folder`` (activities/batch_folders.py), HTTP ``start_batch_http``,
  ``get_batch_http``, ``cancel_batch_http`` (triggers/http_batches.py)
- entity ``endpoint_slots`` (orchestrators/endpoint_slots.py), activities ``plan_admission``,
  ``find_ended_runs`` (activities/admission.py): admission control per endpoint
"""

import logging

import azure.durable_functions as df
import azure.functions as func

from activities import admission, batch_folders, estimates, handoff, jobs, notify_queue
from batch_runs.telemetry import configure_telemetry
from orchestrators import _sdk_timestamps, batch_parent, batch_run, endpoint_slots, notify_delivery
from triggers import blob_start, http_batches, http_runs, maintenance, reconcile, schedule_start

# Third-party loggers that are noisy at INFO and could echo request details.
for _name in ("azure.core.pipeline.policies.http_logging_policy", "azure.identity", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)

# Application Insights export (OpenTelemetry) when APPLICATIONINSIGHTS_CONNECTION_STRING is set;
# without it nothing is imported.
configure_telemetry()

# Faster, equal parsing of history timestamps inside the SDK range requirements.txt allows
# (orchestrators/_sdk_timestamps.py); the app's choice, never devhost's.
_sdk_timestamps.apply()

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
for _module in (
    batch_run,
    jobs,
    estimates,
    http_runs,
    blob_start,
    schedule_start,
    maintenance,
    reconcile,
):
    app.register_functions(_module.bp)
for _module in (notify_delivery, handoff, notify_queue):  # the run's ending: notify, hand-off
    app.register_functions(_module.bp)
for _module in (batch_parent, batch_folders, http_batches):
    app.register_functions(_module.bp)
# Admission control: the endpoint_slots entity and its activities (orchestrators/admission.py).
for _module in (endpoint_slots, admission):
    app.register_functions(_module.bp)
