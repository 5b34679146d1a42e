"""The endpoint semaphore's pure decisions (batch_runs/admission.py)."""

import random
from datetime import UTC, datetime

import pytest

from batch_runs.admission import (
    Grant,
    SlotPlan,
    Slots,
    acquire,
    plan_slot,
    recheck_delay,
    release,
    release_ended,
    slot_key,
    waiting_message,
    waiting_status,
)
from batch_runs.settings import SettingsError, load_settings


def _fill(limit: int, runs: list[str]) -> tuple[Slots, dict[str, Grant]]:
    slots, grants = Slots(), {}
    for run in runs:
        slots, grants[run] = acquire(slots, run, limit)
    return slots, grants


def test_grants_up_to_the_limit_then_queues_in_arrival_order() -> None:
    slots, grants = _fill(2, ["a", "b", "c", "d"])

    assert slots.holders == ("a", "b")
    assert slots.queue == ("c", "d")
    assert [grants[r].granted for r in "abcd"] == [True, True, False, False]
    assert grants["c"].position == 1
    assert grants["d"].position == 2


def test_acquire_is_idempotent_for_holders_and_waiters() -> None:
    slots, _ = _fill(1, ["a", "b"])

    again, grant_a = acquire(slots, "a", 1)
    again, grant_b = acquire(again, "b", 1)

    assert again == slots
    assert grant_a.granted
    assert grant_b == Grant(granted=False, position=1, holders=("a",))


def test_release_promotes_the_head_of_the_queue() -> None:
    slots, _ = _fill(1, ["a", "b", "c"])

    slots = release(slots, "a")

    assert slots.holders == ("b",)
    assert slots.queue == ("c",)
    assert acquire(slots, "b", 1)[1].granted


def test_release_of_a_waiter_or_a_stranger_is_harmless() -> None:
    slots, _ = _fill(1, ["a", "b", "c"])

    assert release(slots, "b").queue == ("c",)
    assert release(release(slots, "zzz"), "zzz") == slots


def test_release_ended_reclaims_leaked_slots_and_promotes() -> None:
    slots, _ = _fill(2, ["a", "b", "c", "d"])

    slots = release_ended(slots, ["a", "b"])

    assert slots.holders == ("c", "d")
    assert slots.queue == ()


def test_a_lower_limit_evicts_nobody_and_a_higher_one_promotes() -> None:
    slots, _ = _fill(3, ["a", "b", "c", "d"])

    lower, grant = acquire(slots, "d", 1)
    assert lower.holders == ("a", "b", "c")
    assert not grant.granted
    higher, grant = acquire(lower, "d", 4)
    assert grant.granted
    assert higher.holders == ("a", "b", "c", "d")


def test_unlimited_grants_everyone() -> None:
    slots = Slots()
    for run in "abc":
        slots, grant = acquire(slots, run, None)
        assert grant.granted


def test_no_waiter_starves_and_the_limit_always_holds() -> None:
    """Random arrivals and endings: every run is admitted, in arrival order, never over 3."""
    rng = random.Random(7)
    slots = Slots()
    admitted: list[str] = []
    arrived: list[str] = []
    pending = [f"r{i}" for i in range(200)]
    while pending or slots.holders or slots.queue:
        if pending and rng.random() < 0.6:
            run = pending.pop(0)
            arrived.append(run)
            slots, _ = acquire(slots, run, 3)
        elif slots.holders:
            slots = release(slots, rng.choice(slots.holders))
        assert len(slots.holders) <= 3
        admitted.extend(r for r in slots.holders if r not in admitted)
    assert admitted == arrived


def test_state_round_trips_and_bad_shapes_start_empty() -> None:
    slots, _ = _fill(2, ["a", "b", "c"])

    assert Slots.from_dict(slots.to_dict()) == slots
    assert Slots.from_dict(None) == Slots()
    assert Slots.from_dict({"holders": [1, "x", "x"], "queue": "no", "limit": -1}) == Slots(
        holders=("x",)
    )
    assert Grant.from_dict("nope") == Grant(granted=False)
    assert SlotPlan.from_dict({"key": "", "limit": 0}) == SlotPlan(key=None, limit=None)


def test_slot_key_is_a_safe_hash_of_host_port_and_path() -> None:
    one = slot_key("https://ep.westeurope.inference.ml.azure.com/jobs")
    same = slot_key("https://EP.westeurope.inference.ml.azure.com/jobs")
    other = slot_key("https://ep2.westeurope.inference.ml.azure.com/jobs")

    assert one == same
    assert one != other
    assert one.startswith("ep-")
    assert all(ch.isalnum() or ch == "-" for ch in one)
    with pytest.raises(ValueError, match="whitespace"):
        slot_key("not a url")


def test_waiting_view_and_recheck_delays() -> None:
    assert waiting_message(3) == "waiting for capacity (position 3)"
    status = waiting_status(3, "2026-01-01T00:00:05+00:00")
    assert status["phase"] == "waiting"
    assert status["queue_position"] == 3
    assert recheck_delay(1) == 2
    assert recheck_delay(1000) == 30


ENDPOINT = "https://ep.westeurope.inference.ml.azure.com/jobs"


def test_the_setting_is_unset_by_default_and_must_be_a_positive_integer() -> None:
    assert load_settings({}).max_active_jobs_per_endpoint is None
    assert load_settings({"MAX_ACTIVE_JOBS_PER_ENDPOINT": " "}).max_active_jobs_per_endpoint is None
    assert load_settings({"MAX_ACTIVE_JOBS_PER_ENDPOINT": "8"}).max_active_jobs_per_endpoint == 8
    for bad in ("0", "-3", "eight", "2.5"):
        with pytest.raises(SettingsError, match="MAX_ACTIVE_JOBS_PER_ENDPOINT"):
            load_settings({"MAX_ACTIVE_JOBS_PER_ENDPOINT": bad})


def test_plan_slot_keys_the_resolved_endpoint_and_skips_when_unlimited_or_invalid() -> None:
    started = datetime(2026, 1, 1, tzinfo=UTC)
    capped = load_settings({"BATCH_ENDPOINT_URI": ENDPOINT, "MAX_ACTIVE_JOBS_PER_ENDPOINT": "8"})
    params = {"endpoint_input_uri": "azureml://datastores/workspaceblobstore/paths/in/"}

    plan = plan_slot(params, capped, run_id="r1", started=started)
    assert plan == SlotPlan(key=slot_key(ENDPOINT), limit=8)  # the default endpoint, resolved
    unlimited = load_settings({"BATCH_ENDPOINT_URI": ENDPOINT})
    assert plan_slot(params, unlimited, run_id="r1", started=started) == SlotPlan(None, None)
    invalid = plan_slot({"poll_interval": "soon"}, capped, run_id="r1", started=started)
    assert invalid == SlotPlan(key=None, limit=8)
