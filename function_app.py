"""Composition root: the Durable Functions app and its blueprints. Nothing else lives here.

Functions (names are the contract in ../shared/design.md):
- orchestrator ``batch_endpoint_run`` (orchestrators/batch_run.py)
- activities ``invoke_batch_endpoint``, ``get_batch_job``, ``cancel_batch_job``
  (activities/jobs.py), ``estimate_job_duration`` (activities/estimates.py)
- HTTP ``start_run_http``, ``get_run_http``, ``cancel_run_http``, ``list_runs_http``,
  ``rerun_run_http`` (triggers/http_runs.py)
- blob ``start_run_on_blob`` (triggers/blob_start.py), timer ``start_run_on_schedule``
  (triggers/schedule_start.py), timer ``purge_old_runs`` (triggers/maintenance.py)
"""

import logging

import azure.durable_functions as df
import azure.functions as func

from activities import estimates, jobs
from orchestrators import batch_run
from triggers import blob_start, http_runs, maintenance, schedule_start

# Third-party loggers that are noisy at INFO and could echo request details.
for _name in ("azure.core.pipeline.policies.http_logging_policy", "azure.identity", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
for _module in (batch_run, jobs, estimates, http_runs, blob_start, schedule_start, maintenance):
    app.register_functions(_module.bp)
