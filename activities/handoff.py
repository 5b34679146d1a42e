"""Activities of the run's ending: copy the output (hand-off) and notify.

- ``copy_run_output``: server-side copy of the predictions file to ``copy_output_to``
  (``batch_runs.handoff.run_copy``); a permanent failure comes back as ``{"ok": False}``, a
  transient one raises so that the orchestrator's retry tries again.
- ``start_run_notification``: starts the delivery orchestration ``notify:<run id>`` through the
  Durable client binding (an input binding any function may carry; devhost passes it to
  activities as the host does). The id is deterministic: an activity that runs twice (a retry
  after a crash) finds the instance and starts nothing new.
- ``deliver_run_notification``: one signed POST (``batch_runs.notify.post_notification``).
"""

import functools
import logging
import time
from typing import TYPE_CHECKING

import azure.durable_functions as df

if TYPE_CHECKING:
    import requests

from batch_runs.handoff import TransientCopyError, run_copy
from batch_runs.notify import (
    DELIVERY_ORCHESTRATOR,
    Attempt,
    existing_delivery,
    notify_instance_id,
    notify_url_problem,
    post_notification,
    summary_body,
)
from batch_runs.settings import get_settings
from batch_runs.starts import runtime_name

logger = logging.getLogger(__name__)

bp = df.Blueprint()

COPY_ACTIVITY = "copy_run_output"
START_NOTIFY_ACTIVITY = "start_run_notification"
DELIVER_ACTIVITY = "deliver_run_notification"


@functools.cache
def _plain_session() -> "requests.Session":
    """A session for receivers: no token adapter, no ``.netrc`` or proxy credentials, and no
    cookies (it is shared by every run's notifications: a cookie one receiver sets must not
    travel with another run's notification).

    ``requests`` is imported on first use: importing the app stays fast (docs/performance.md)."""
    from http.cookiejar import DefaultCookiePolicy

    import requests

    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


@bp.activity_trigger(input_name="payload")
def copy_run_output(payload: dict) -> dict:
    """Copy ``output_uri``'s file to ``copy_output_to``; see ``handoff.run_copy``."""
    try:
        result = run_copy(
            str(payload["output_uri"]), str(payload["copy_output_to"]), get_settings()
        )
    except TransientCopyError as exc:
        raise RuntimeError(f"copying the output failed for now: {exc}") from None
    return result.to_dict()


@bp.activity_trigger(input_name="payload")
@bp.durable_client_input(client_name="client")
async def start_run_notification(payload: dict, client) -> dict:
    """Start ``notify:<run id>`` once per run ending (``existing_delivery`` tells a retry of this
    activity from a new run that reuses an ended run's id). The URL is checked before every
    delivery, not here: a URL refused under the current settings still gets its instance, which
    ends ``failed`` naming the refusal without sending anything, so the run view says why."""
    run_id = str(payload["run_id"])
    url = str(payload["notify_url"])
    instance_id = notify_instance_id(run_id)
    body = summary_body(payload["summary"])
    existing = await client.get_status(instance_id, show_input=True)
    if existing:
        decision = existing_delivery(existing.input_, runtime_name(existing), body)
        if decision != "replace":
            return {"started": False, "reason": decision, "instance_id": instance_id}
    await client.start_new(
        DELIVERY_ORCHESTRATOR, instance_id, {"run_id": run_id, "url": url, "body": body}
    )
    logger.info("run %s: notification delivery %s started", run_id, instance_id)
    return {"started": True, "instance_id": instance_id}


@bp.activity_trigger(input_name="payload")
def deliver_run_notification(payload: dict) -> dict:
    """One signed delivery attempt; the outcome (never an exception) decides the retry."""
    settings = get_settings()
    url = str(payload["url"])
    secret = settings.notify_signing_secret
    problem = notify_url_problem(url, settings.notify_allowed_hosts, secret)
    if problem or secret is None:
        return Attempt(None, f"nothing sent: notify_url {problem}", final=True).to_dict()
    attempt = post_notification(
        _plain_session(), url, str(payload["body"]), secret, int(time.time()), (5.0, 15.0)
    )
    logger.info(
        "run %s: notification attempt: %s", payload.get("run_id"), attempt.error or "delivered"
    )
    return attempt.to_dict()
