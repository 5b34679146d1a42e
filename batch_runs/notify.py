"""Run notifications: the URL rule, the JSON summary, its signature and the delivery decisions.

When a run ends (completed or failed), a small delivery orchestration ``notify:<run id>`` POSTs
a JSON summary to the run's ``notify_url``. Everything it decides is here, pure:

- :func:`notify_url_problem`: the URL is read once by ``batch_endpoint.ServiceUrl`` (``https``;
  ``http`` only for loopback hosts) and its host must match ``NOTIFY_ALLOWED_HOSTS`` with the
  same matcher as the endpoint allowlist. No bearer token ever goes to it.
- :func:`build_summary` / :func:`summary_body`: the summary and its exact bytes (compact JSON,
  sorted keys), computed once, so every retry sends and signs the same bytes.
- :func:`signature_headers`: HMAC-SHA256 over ``"<timestamp>." + body`` with
  ``NOTIFY_SIGNING_SECRET``: ``X-Batch-Timestamp: <unix seconds>`` and
  ``X-Batch-Signature: sha256=<hex>``. The timestamp is inside the signed text, so a receiver
  that refuses old timestamps refuses replays (docs/operations.md has a verification snippet).
- :func:`delivery_decision` / :func:`retry_delay`: 2xx delivered; 408, 429, 5xx and connection
  errors retried with exponential backoff; any other status is final.
"""

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from batch_endpoint import ServiceUrl, host_allowed
from batch_runs.fields import decoded_input, run_parameters_of

#: The notification's JSON schema version (a field of every summary).
SUMMARY_VERSION = 1
#: The delivery orchestration (one instance per run: :func:`notify_instance_id`).
DELIVERY_ORCHESTRATOR = "notify_delivery"
SIGNATURE_HEADER = "X-Batch-Signature"
TIMESTAMP_HEADER = "X-Batch-Timestamp"
#: Delivery attempts before the notification counts as failed.
MAX_ATTEMPTS = 5
#: The first retry waits this long; each later one twice as long (5, 10, 20, 40 s).
FIRST_RETRY_SECONDS = 5
MAX_RETRY_SECONDS = 300
#: Trigger named in the summary when the run's input names none (a parent orchestrator).
DEFAULT_TRIGGER = "sub-orchestration"
_RETRIED_STATUSES = frozenset({408, 429})
_MAX_REASON = 1000


def notify_instance_id(run_id: str) -> str:
    """The delivery orchestration's instance id: one per run, so a run notifies at most once."""
    return f"notify:{run_id}"


def notify_url_problem(
    url: str, allowed_hosts: Sequence[str], secret: str | None = "set"
) -> str | None:
    """What is wrong with ``url`` as a notification target, or None.

    Args:
        url: The caller's ``notify_url``.
        allowed_hosts: ``NOTIFY_ALLOWED_HOSTS`` patterns; empty means notifications are off.
        secret: ``NOTIFY_SIGNING_SECRET`` (only whether it is set matters here).
    """
    if not allowed_hosts:
        return "is refused: notifications are not enabled (NOTIFY_ALLOWED_HOSTS is not set)"
    if not secret:
        return "is refused: NOTIFY_SIGNING_SECRET is not set (notifications are always signed)"
    try:
        parsed = ServiceUrl.parse(url)
    except ValueError as exc:
        return str(exc)
    if not host_allowed(parsed.host, parsed.effective_port, allowed_hosts):
        return f"is refused: host {parsed.netloc!r} is not in NOTIFY_ALLOWED_HOSTS"
    return None


def run_trigger(raw_input: object) -> str:
    """What started the run: the input's ``trigger`` (also inside ``resume``), else
    :data:`DEFAULT_TRIGGER`."""
    if not isinstance(raw_input, Mapping):
        return DEFAULT_TRIGGER
    places: list[object] = [raw_input, raw_input.get("run_parameters")]
    resume = raw_input.get("resume")
    if isinstance(resume, Mapping):
        places += [resume, resume.get("run_parameters")]
    for place in places:
        value = place.get("trigger") if isinstance(place, Mapping) else None
        if isinstance(value, str) and value:
            return value[:64]
    return DEFAULT_TRIGGER


def existing_delivery(existing_input: object, runtime_status: str, body: str) -> str:
    """What to do when ``notify:<run id>`` exists already.

    ``"already started"``: it carries this very ending's body (the start activity ran again);
    ``"replace"``: it belongs to an earlier run that had the same id (ids of ended runs may be
    reused; the body's ``finished`` differs) and has ended; ``"previous delivery still
    running"``: an earlier run's delivery is still retrying (it is not cut short).
    """
    existing_input = decoded_input(existing_input)
    same = isinstance(existing_input, Mapping) and existing_input.get("body") == body
    if same:
        return "already started"
    if runtime_status in ("Completed", "Failed", "Terminated", "Canceled"):
        return "replace"
    return "previous delivery still running"


def notify_url_of(raw_input: object) -> str | None:
    """The run's ``notify_url`` from its input (the parameters, or ``resume.run_parameters``;
    the input as a value or as its JSON text)."""
    params = run_parameters_of(raw_input)
    url = params.get("notify_url") if params is not None else None
    return url if isinstance(url, str) and url else None


def _seconds_between(start: object, end: datetime) -> float | None:
    if not isinstance(start, str) or not start:
        return None
    try:
        begun = datetime.fromisoformat(start)
    except ValueError:
        return None
    if begun.tzinfo is None:
        return None
    return round((end - begun).total_seconds(), 3)


def build_summary(
    *,
    run_id: str,
    trigger: str,
    finished: datetime,
    output: Mapping[str, Any] | None = None,
    status: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """The notification of a run's ending.

    Args:
        run_id: The run (orchestration instance) id.
        trigger: :func:`run_trigger` of the run's input.
        finished: When the run ended (orchestration time).
        output: The completed run's output (``completed_output`` plus ``copied_to``), or None.
        status: The run's last custom status (job name, status, polls, Studio link, start),
            used when the run failed.
        reason: The failure message; None for a completed run.
    """
    source: Mapping[str, Any] = output if output is not None else (status or {})
    return {
        "version": SUMMARY_VERSION,
        "run_id": run_id,
        "trigger": trigger,
        "status": "Completed" if reason is None else "Failed",
        "job_name": source.get("job_name"),
        "job_status": source.get("status") if output is not None else source.get("job_status"),
        "started": source.get("started"),
        "finished": finished.isoformat(),
        "duration_seconds": _seconds_between(source.get("started"), finished),
        "polls": source.get("polls", 0),
        "studio_url": source.get("studio_url"),
        "output_uri": source.get("output_uri"),
        "copied_to": source.get("copied_to"),
        "reason": None if reason is None else reason[:_MAX_REASON],
    }


def summary_body(summary: Mapping[str, Any]) -> str:
    """The exact text that is sent and signed (compact JSON, sorted keys, ASCII)."""
    return json.dumps(summary, sort_keys=True, separators=(",", ":"))


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with ``secret`` over ``b"<timestamp>." + body``."""
    message = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers of one delivery attempt (the timestamp is the attempt's send time)."""
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def verify(
    secret: str, body: bytes, headers: Mapping[str, str], *, now: int, tolerance: int = 300
) -> bool:
    """A receiver's check (used by the tests and shown in docs/operations.md)."""
    stamp = headers.get(TIMESTAMP_HEADER, "")
    if not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, int(stamp), body), headers.get(SIGNATURE_HEADER, ""))


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt's result (the activity's output).

    Attributes:
        status_code: The receiver's HTTP status, or None when no response came.
        error: A short, secret-free description when it was not a 2xx.
        final: True when nothing was sent and retrying cannot help (the URL is refused under
            the current settings).
    """

    status_code: int | None
    error: str | None = None
    final: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"status_code": self.status_code, "error": self.error, "final": self.final}

    @classmethod
    def from_dict(cls, data: object) -> "Attempt":
        d = data if isinstance(data, Mapping) else {}
        code = d.get("status_code")
        error = d.get("error")
        return cls(
            status_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            error=str(error)[:300] if error else None,
            final=d.get("final") is True,
        )


def delivery_decision(attempt: Attempt, attempts: int, max_attempts: int = MAX_ATTEMPTS) -> str:
    """``"delivered"``, ``"retry"`` or ``"failed"`` after ``attempts`` attempts."""
    code = attempt.status_code
    if code is not None and 200 <= code < 300:
        return "delivered"
    retriable = not attempt.final and (code is None or code in _RETRIED_STATUSES or code >= 500)
    return "retry" if retriable and attempts < max_attempts else "failed"


def retry_delay(attempts: int) -> int:
    """Seconds to wait after the ``attempts``-th failed attempt (exponential, capped)."""
    return int(min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS))


def delivery_status(state: str, attempts: int, last_error: str | None) -> dict[str, Any]:
    """The delivery outcome as the run view shows it (custom status and output)."""
    return {"status": state, "attempts": attempts, "last_error": last_error}


def notification_view(runtime_status: str | None, custom: object, output: object) -> dict[str, Any]:
    """``{status: delivered|failed|pending, attempts, last_error}`` from the delivery instance."""
    if runtime_status == "Completed" and isinstance(output, Mapping):
        return delivery_status(
            str(output.get("status", "failed")),
            int(output.get("attempts", 0) or 0),
            output.get("last_error"),
        )
    if runtime_status in ("Failed", "Terminated", "Canceled"):
        return delivery_status("failed", 0, f"delivery orchestration {runtime_status}")
    c = custom if isinstance(custom, Mapping) else {}
    return delivery_status("pending", int(c.get("attempts", 0) or 0), c.get("last_error"))


def post_notification(
    session: Any, url: str, body: str, secret: str, now: int, timeout: tuple[float, float]
) -> Attempt:
    """One signed POST of ``body`` to ``url`` (no redirects followed, no token, no cookies, the
    response body never read).

    Args:
        session: A plain ``requests.Session`` (never the token-carrying one).
        url: The allowlisted ``notify_url``.
        body: :func:`summary_body` text.
        secret: ``NOTIFY_SIGNING_SECRET``.
        now: Unix seconds, signed as the timestamp.
        timeout: ``(connect, read)`` seconds.
    """
    import requests

    data = body.encode("utf-8")
    try:
        response = session.post(
            url,
            data=data,
            headers=signature_headers(secret, data, now),
            timeout=timeout,
            allow_redirects=False,
            # The status line decides; the body is never read (a receiver could stream it
            # forever, one byte within each read timeout, or send gigabytes).
            stream=True,
        )
    except requests.RequestException as exc:
        return Attempt(None, f"no response ({type(exc).__name__})")
    code = int(response.status_code)
    response.close()
    return Attempt(code, None if 200 <= code < 300 else f"the receiver answered HTTP {code}")
