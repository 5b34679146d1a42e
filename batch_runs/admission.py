"""Admission control per endpoint: the semaphore's pure decisions and the run's view of them.

At most ``MAX_ACTIVE_JOBS_PER_ENDPOINT`` runs hold a slot of one endpoint at a time, whatever
started them. The slots of an endpoint are one durable entity (``endpoint_slots``, keyed by
:func:`slot_key`) whose state is a :class:`Slots`: the runs holding a slot and the runs waiting,
in arrival order. Every operation here is pure (state in, state and answer out); the entity
binding only loads, calls and stores.

Rules (none lost, none starves):

- ``acquire`` is idempotent: a run already holding or waiting keeps its place; a new one joins the
  tail of the queue; then the head of the queue is promoted while a slot is free. A run is
  admitted exactly when it is among the holders, so slots go out in FIFO order.
- ``release`` removes the run wherever it is (holder or waiter) and promotes; releasing a run
  that is not there changes nothing (a release may be delivered twice).
- ``release_ended`` is the leak reconciliation: runs found ended (terminated through the
  management API while holding a slot, purged) are released the same way.
- The limit travels with every ``acquire`` (the app's setting, read by an activity); a lower
  limit never evicts a holder, it only stops promotions until enough holders left.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from batch_endpoint import ServiceUrl
from batch_runs.request import InvalidRunRequest, parse_run_request
from batch_runs.settings import Settings

__all__ = [
    "ADMISSION_PHASE",
    "Grant",
    "SlotPlan",
    "Slots",
    "acquire",
    "plan_slot",
    "recheck_delay",
    "release",
    "release_ended",
    "slot_key",
    "waiting_message",
    "waiting_status",
]

#: The custom-status phase of a run waiting for a slot (``Phase.WAITING``'s value).
ADMISSION_PHASE = "waiting"
#: Seconds between two checks of the queue's head; later places check less often (at most
#: ``RECHECK_MAX_SECONDS``): a slot freed is the head's within seconds, and a long queue does not
#: poll the entity all the time. Promotions are not pushed (a Python entity cannot raise events).
RECHECK_MIN_SECONDS = 2
RECHECK_MAX_SECONDS = 30
#: A waiting run continues as new after this many checks, to keep its history short.
RECHECKS_PER_EXECUTION = 200


@dataclass(frozen=True, slots=True)
class Slots:
    """One endpoint's semaphore: run ids holding a slot, run ids waiting (FIFO)."""

    holders: tuple[str, ...] = ()
    queue: tuple[str, ...] = ()
    limit: int | None = None  # the limit the last acquire carried (None: unlimited)

    @classmethod
    def from_dict(cls, data: object) -> "Slots":
        """The state as stored by the entity (unknown shapes start empty)."""
        if not isinstance(data, Mapping):
            return cls()
        limit = data.get("limit")
        return cls(
            holders=_ids(data.get("holders")),
            queue=_ids(data.get("queue")),
            limit=limit if isinstance(limit, int) and limit > 0 else None,
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form the entity stores."""
        return {"holders": list(self.holders), "queue": list(self.queue), "limit": self.limit}


@dataclass(frozen=True, slots=True)
class Grant:
    """The answer to ``acquire``: admitted, or the 1-based place in the queue."""

    granted: bool
    position: int = 0
    holders: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form returned to the orchestrator."""
        return {"granted": self.granted, "position": self.position, "holders": list(self.holders)}

    @classmethod
    def from_dict(cls, data: object) -> "Grant":
        """Read an entity answer (anything unexpected counts as not granted, position 0)."""
        if not isinstance(data, Mapping):
            return cls(granted=False)
        position = data.get("position")
        return cls(
            granted=data.get("granted") is True,
            position=position if isinstance(position, int) and position > 0 else 0,
            holders=_ids(data.get("holders")),
        )


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """What the ``plan_admission`` activity decides for a run: the entity key and the limit.

    ``key`` None: no admission control for this run (unlimited, or parameters the submit step
    will refuse anyway, with its own clear message).
    """

    key: str | None
    limit: int | None

    def to_dict(self) -> dict[str, Any]:
        """The activity's JSON output."""
        return {"key": self.key, "limit": self.limit}

    @classmethod
    def from_dict(cls, data: object) -> "SlotPlan":
        """Read the activity's output."""
        if not isinstance(data, Mapping):
            return cls(key=None, limit=None)
        key, limit = data.get("key"), data.get("limit")
        return cls(
            key=key if isinstance(key, str) and key else None,
            limit=limit if isinstance(limit, int) and limit > 0 else None,
        )


def _ids(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(dict.fromkeys(v for v in value if isinstance(v, str) and v))


def _promote(slots: Slots) -> Slots:
    holders, queue = list(slots.holders), list(slots.queue)
    while queue and (slots.limit is None or len(holders) < slots.limit):
        holders.append(queue.pop(0))
    return Slots(holders=tuple(holders), queue=tuple(queue), limit=slots.limit)


def acquire(slots: Slots, run_id: str, limit: int | None) -> tuple[Slots, Grant]:
    """Ask for a slot (idempotent); the run is queued if none is free.

    Args:
        slots: The current state.
        run_id: The asking run.
        limit: The current setting (None: unlimited).

    Returns:
        The new state and the answer.
    """
    queue = slots.queue
    if run_id not in slots.holders and run_id not in queue:
        queue = (*queue, run_id)
    after = _promote(Slots(holders=slots.holders, queue=queue, limit=limit))
    if run_id in after.holders:
        return after, Grant(granted=True, holders=after.holders)
    return after, Grant(
        granted=False, position=after.queue.index(run_id) + 1, holders=after.holders
    )


def release(slots: Slots, run_id: str) -> Slots:
    """Give the run's slot (or its place in the queue) back and promote the next waiters."""
    return release_ended(slots, (run_id,))


def release_ended(slots: Slots, run_ids: Iterable[str]) -> Slots:
    """Release several runs at once (the leak reconciliation)."""
    gone = set(run_ids)
    return _promote(
        Slots(
            holders=tuple(r for r in slots.holders if r not in gone),
            queue=tuple(r for r in slots.queue if r not in gone),
            limit=slots.limit,
        )
    )


def plan_slot(
    params: Mapping[str, Any], settings: Settings, *, run_id: str, started: datetime
) -> SlotPlan:
    """The run's slot: its endpoint's key (after defaults and validation) and the limit.

    ``key`` None when ``MAX_ACTIVE_JOBS_PER_ENDPOINT`` is unset, or when the parameters are
    invalid (the submit step then fails the run with its own message, naming the fields).
    """
    limit = settings.max_active_jobs_per_endpoint
    if limit is None:
        return SlotPlan(key=None, limit=None)
    try:
        request = parse_run_request(dict(params), settings, run_id=run_id, now=started)
        return SlotPlan(key=slot_key(request.endpoint_uri), limit=limit)
    except (InvalidRunRequest, ValueError):
        return SlotPlan(key=None, limit=limit)


def slot_key(endpoint_uri: str) -> str:
    """The entity key of an endpoint: a hash of its host, port and path (safe in any id).

    Raises:
        ValueError: Not a valid endpoint URI (the caller validated it already).
    """
    url = ServiceUrl.parse(endpoint_uri)
    digest = hashlib.sha256(f"{url.host}|{url.effective_port}|{url.path}".encode()).hexdigest()
    return f"ep-{digest[:32]}"


def recheck_delay(position: int) -> int:
    """Seconds until a run at ``position`` in the queue asks again."""
    return min(RECHECK_MAX_SECONDS, RECHECK_MIN_SECONDS + max(0, position - 1) // 2)


def waiting_message(position: int) -> str:
    """What the run view says while the run waits for a slot."""
    return f"waiting for capacity (position {position})"


def waiting_status(position: int, next_check_at: str) -> dict[str, Any]:
    """The custom status of a run waiting for a slot of its endpoint."""
    return {
        "phase": ADMISSION_PHASE,
        "queue_position": position,
        "status_message": waiting_message(position),
        "next_check": next_check_at,
    }
