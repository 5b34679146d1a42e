"""The monitor scenarios both engines run, and the scripted service each run talks to.

Each run gets its own :class:`FakeEndpoint` (tests/orchestration/conftest.py) behind its own
:class:`ScriptedEndpoint` on 127.0.0.1, built from the same script, and the product's activity
bindings read settings that point at it: both engines see the same service, answer for answer.

Everything that could race is tied to virtual time or to a status check, never to wall time:

- ``cancel_at``: the ``cancel`` event is raised when the engine's virtual clock reaches
  ``start + cancel_at`` (a sleeper instance holds a timer there, so an idle engine stops the
  clock at that instant, and the event is raised before anything due then runs);
- ``cancel_on_get``: the event is raised while the N-th status check runs (the activity is in
  flight, so the engine is busy and cannot move the clock);
- ``deploy_at``: at that virtual time, while the instance waits on a timer, a "new release" is
  deployed whose status checks call another activity name (``GET_ACTIVITY_V2``, the same
  binding): the replay of the recorded checks no longer matches the history.
"""

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import azure.durable_functions as df
import pytest

from activities.jobs import GET_ACTIVITY
from batch_endpoint import AuthError, TransportError
from batch_runs.state import POLLS_PER_EXECUTION
from devhost.engine import VirtualClock
from orchestrators import batch_run
from tests.orchestration.conftest import ACTIVITIES as PRODUCT_ACTIVITIES
from tests.orchestration.conftest import (
    T0,
    FakeEndpoint,
    clear_app_caches,
    settings_for,
)
from tests.orchestration.scripted_endpoint import ScriptedEndpoint

INPUT = "azureml://datastores/workspaceblobstore/paths/heart-unlabeled/"

#: The orchestrator that holds the clock still at ``cancel_at`` / ``deploy_at`` (both engines).
SLEEPER = "xeng_clock_stop"


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """One monitor run, the same on both engines."""

    name: str
    script: tuple[Any, ...]
    ends: str  # the runtime status both engines must reach ("Completed" / "Failed")
    params: dict[str, Any] = field(default_factory=dict)
    fake: dict[str, Any] = field(default_factory=dict)  # FakeEndpoint keyword arguments
    settings: dict[str, str] = field(default_factory=dict)  # extra app settings
    cancel_at: float | None = None
    cancel_on_get: int | None = None
    deploy_at: float | None = None

    @property
    def instance_id(self) -> str:
        return f"xeng-{self.name}"

    def run_input(self) -> dict[str, Any]:
        return {
            "endpoint_input_uri": INPUT,
            "endpoint_input_type": "UriFolder",
            "poll_interval": 60,
            **self.params,
        }


def _transient(n: int) -> list[Any]:
    return [TransportError("connection reset by peer")] * n


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        name="happy_path", script=("Queued", "Running", "Running", "Completed"), ends="Completed"
    ),
    Scenario(
        name="failed_job",
        ends="Failed",
        script=("Running", "Failed"),
        fake={"error_message": "UserError: the path already exists"},
    ),
    Scenario(
        name="cancel_while_waiting",
        ends="Failed",
        script=("Running",),
        params={"timeout": 7 * 86400},
        cancel_at=150.0,  # between the checks at 120 s and 180 s
    ),
    Scenario(
        name="cancel_during_status_check",
        ends="Failed",
        script=("Running",),
        params={"timeout": 7 * 86400},
        cancel_on_get=2,
    ),
    Scenario(
        name="deadline",
        script=("Queued",),
        ends="Failed",
        params={"poll_interval": 120, "timeout": 600},
    ),
    Scenario(
        name="deadline_cancel_refused",
        script=("Running",),
        ends="Failed",
        params={"poll_interval": 120, "timeout": 600},
        fake={"cancel_error": AuthError(403, "AuthorizationFailed", "no jobs/cancel/action")},
    ),
    Scenario(
        name="deadline_cancel_never_confirmed",
        # The job ignores the cancel: checks go on until the grace period ends (next_check is
        # capped at cancel_until), then the run gives up.
        script=("Running",),
        ends="Failed",
        params={"poll_interval": 120, "timeout": 600},
        fake={"cancel_takes_effect": False},
    ),
    Scenario(
        name="poll_failures_with_retries",
        ends="Completed",
        # One check recovers within the activity's retries, one exhausts them (a failed poll),
        # then the job completes.
        script=(*_transient(2), "Running", *_transient(4), "Running", "Completed"),
    ),
    Scenario(
        name="poll_failures_give_up",
        script=tuple(_transient(1)),
        ends="Failed",
    ),
    Scenario(
        name="continue_as_new",
        script=(*["Running"] * (POLLS_PER_EXECUTION + 4), "Completed"),
        ends="Completed",
        params={"poll_interval": 10},
    ),
    Scenario(
        name="cancel_during_last_poll_of_an_execution",
        # The cancel arrives while the last check before continue_as_new runs.
        script=("Running",),
        ends="Failed",
        params={"poll_interval": 10, "timeout": 7 * 86400},
        cancel_on_get=POLLS_PER_EXECUTION,
    ),
    Scenario(
        name="long_poll_interval",
        ends="Completed",
        # A 4-day interval: durabletask splits the timer at 3 days (LONG_TIMER_SPLIT).
        script=("Running", "Completed"),
        params={"poll_interval": 4 * 86400, "timeout": 10 * 86400},
        settings={"POLL_INTERVAL_MAX": str(5 * 86400), "RUN_TIMEOUT_MAX_SECONDS": "2592000"},
    ),
)


#: Scenarios where the engines are known to differ for a reason no allowance covers (a devhost
#: bug another change fixes): tests/crossengine/test_cross_engine.py expects the difference.
KNOWN_DIFFERENCES: tuple[Scenario, ...] = (
    Scenario(
        name="deploy_renames_an_activity_under_a_waiting_instance",
        script=(*["Running"] * (POLLS_PER_EXECUTION + 2), "Completed"),
        ends="Failed",  # DTFx and durabletask: NonDeterminismError
        # After the first check of the second execution (checks every 60 s), while waiting for
        # the next: that execution's history holds a check made under the old name.
        deploy_at=60.0 * (POLLS_PER_EXECUTION + 1) + 30.0,
    ),
)

#: The status-check activity name of the "new release" (``deploy_at``).
GET_ACTIVITY_V2 = f"{GET_ACTIVITY}_v2"

#: The activities both engines register: the product's bindings, and the new release's name for
#: the status check (the same binding).
ACTIVITIES: dict[str, Callable[[Any], Any]] = {
    **PRODUCT_ACTIVITIES,
    GET_ACTIVITY_V2: PRODUCT_ACTIVITIES[GET_ACTIVITY],
}


@dataclass
class Service:
    """The scripted batch endpoint one run talks to."""

    fake: FakeEndpoint
    endpoint: ScriptedEndpoint
    patch: pytest.MonkeyPatch  # undone when the run ends


@contextlib.contextmanager
def scripted_service(scenario: Scenario, raise_cancel: Callable[[], None]) -> Iterator[Service]:
    """Start the scenario's scripted endpoint and point the app's settings at it.

    ``raise_cancel`` is called (from the activity's thread) when ``cancel_on_get`` is reached.
    """
    on_get: Callable[[int], None] | None = None
    if scenario.cancel_on_get is not None:
        wanted = scenario.cancel_on_get

        def on_get(count: int) -> None:
            if count == wanted:
                raise_cancel()

    fake = FakeEndpoint(script=list(scenario.script), on_get=on_get, **scenario.fake)
    endpoint = ScriptedEndpoint(fake).start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name, value in {**settings_for(endpoint), **scenario.settings}.items():
                mp.setenv(name, value)
            clear_app_caches()
            yield Service(fake=fake, endpoint=endpoint, patch=mp)
    finally:
        clear_app_caches()
        endpoint.stop()


# --- the sleeper: one timer at start + N seconds, written once against the 1.x API -----------

sleeper_bp = df.Blueprint()


@sleeper_bp.orchestration_trigger(context_name="context")
def xeng_clock_stop(context: df.DurableOrchestrationContext):
    seconds = float(context.get_input())
    yield context.create_timer(context.current_utc_datetime + timedelta(seconds=seconds))
    return None


def install_clock_hooks(
    scenario: Scenario, clock: VirtualClock, service: Service, raise_cancel: Callable[[], None]
) -> float | None:
    """Arm the scenario's timed action; return where the sleeper must hold the clock (or None)."""
    if scenario.cancel_at is not None:
        when_clock_reaches(clock, T0 + timedelta(seconds=scenario.cancel_at), raise_cancel)
        return scenario.cancel_at
    if scenario.deploy_at is not None:

        def deploy() -> None:
            service.patch.setattr(batch_run, "GET_ACTIVITY", GET_ACTIVITY_V2)

        when_clock_reaches(clock, T0 + timedelta(seconds=scenario.deploy_at), deploy)
        return scenario.deploy_at
    return None


def when_clock_reaches(clock: VirtualClock, when: datetime, action: Callable[[], None]) -> None:
    """Run ``action`` the first time ``clock`` reaches ``when``. Both engines call their clock's
    listeners when they move it (only while idle), before firing the timers due then."""
    done: list[bool] = []

    def listener() -> None:
        if not done and clock.now() >= when:
            done.append(True)
            action()

    clock.subscribe(listener)
