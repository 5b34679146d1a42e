"""Run the product orchestrator on devhost's engine: the real Durable SDK, virtual time.

The orchestrator under test is the product's own ``batch_endpoint_run`` handle, and its
activities are the product's own activity *bindings* (``activities/jobs.py``): they read the
settings, build the real client and talk HTTP to a :class:`ScriptedEndpoint` on 127.0.0.1,
whose answers a :class:`FakeEndpoint` scripts, so each test controls what the service answers.
Tests against the emulator (the whole offline stack) live in tests/e2e/.
"""

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from activities import admission, jobs, notify_queue
from batch_endpoint import BatchJob, JobInvocation, JobStatus, NotFoundError
from batch_runs import clients, get_settings
from devhost.engine import Engine, VirtualClock
from orchestrators import batch_run
from tests.orchestration.scripted_endpoint import ScriptedEndpoint

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
WORKSPACE_ID = (
    "/subscriptions/s/resourceGroups/r/providers/Microsoft.MachineLearningServices/workspaces/w"
)


def settings_for(endpoint: ScriptedEndpoint) -> dict[str, str]:
    """App settings that point the real activities at the scripted endpoint (no real waits)."""
    return {
        "BATCH_ENDPOINT_URI": f"{endpoint.base_url}/jobs",
        "BATCH_ENDPOINT_AUTH": "none",
        "BATCH_ENDPOINT_ALLOWED_HOSTS": f"127.0.0.1:{endpoint.port}",
        "AML_ARM_ENDPOINT": endpoint.base_url,
        "AML_WORKSPACE_ID": WORKSPACE_ID,
        "BATCH_ENDPOINT_MAX_ATTEMPTS": "1",  # the activity retry is what these tests exercise
        "POLL_INTERVAL_SECONDS": "120",
        "POLL_INTERVAL_MIN": "1",
        "RUN_TIMEOUT_SECONDS": "86400",
        "SCHEDULED_INPUT_URI": "",
    }


def clear_app_caches() -> None:
    get_settings.cache_clear()
    clients.get_client.cache_clear()
    clients.get_jobs_client.cache_clear()


def handle(decorated) -> Callable[[str], str]:
    """The SDK handle (context JSON → result JSON) behind a decorated orchestrator."""
    fn: Callable[[str], str] = decorated.build().get_user_function()
    return fn


@dataclass
class FakeEndpoint:
    """A scripted stand-in for ``BatchEndpointClient`` (the activity cores' client seam).

    ``script`` is consumed one entry per ``get_job``: a status string, or an exception to raise.
    The last entry repeats once the script is exhausted. With ``per_job`` each job name has its
    own cursor into the script.
    """

    script: list[Any]
    per_job: bool = False  # True: every job walks the script on its own (concurrent runs)
    invoke_errors: list[Exception] = field(default_factory=list)
    error_message: str | None = None
    invokes: list[tuple[JobInvocation, str | None]] = field(default_factory=list)
    gets: int = 0
    cancels: list[str] = field(default_factory=list)
    cancelled: bool = False
    cursors: dict[str, int] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)  # job names invoked so far
    cancel_error: Exception | None = None  # what ARM answers to a cancel, if not 202
    cancel_takes_effect: bool = True  # False: the job keeps its script after a cancel
    cancel_ends_job: bool = False  # with cancel_error: the job ends (script jumps to its end)
    on_get: Callable[[int], None] | None = None  # called (outside the lock) with the get count
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _job(self, name: str, status: str) -> BatchJob:
        return BatchJob(
            name=name,
            id=f"/subscriptions/s/resourceGroups/r/providers/"
            f"Microsoft.MachineLearningServices/workspaces/w/jobs/{name}",
            status=JobStatus.parse(status),
            studio_url=f"https://ml.azure.com/runs/{name}",
            output_uri="azureml://datastores/workspaceblobstore/paths/out/predictions.csv",
            error_message=self.error_message if status == "Failed" else None,
        )

    def invoke(
        self,
        invocation: JobInvocation,
        *,
        job_name: str | None = None,
        request_id: str | None = None,
        find_existing: Callable[[], BatchJob | None] | None = None,
    ) -> BatchJob:
        with self.lock:
            if self.invoke_errors:
                raise self.invoke_errors.pop(0)
            self.invokes.append((invocation, job_name))
            self.created.add(job_name or "bs-x")
            return self._job(job_name or "bs-x", "NotStarted")

    def get_job(self, name: str) -> BatchJob:
        with self.lock:
            if name not in self.created:  # the client's look-up before it submits
                raise NotFoundError(404, "UserError", f"Job {name} not found")
            self.gets += 1
            if self.cancelled:
                return self._job(name, "Canceled")
            if self.per_job:
                i = self.cursors[name] = self.cursors.get(name, -1) + 1
                entry = self.script[min(i, len(self.script) - 1)]
            else:
                entry = self.script.pop(0) if len(self.script) > 1 else self.script[0]
            count = self.gets
        if self.on_get is not None:
            self.on_get(count)
        if isinstance(entry, Exception):
            raise entry
        return self._job(name, entry)

    def cancel_job(self, job: BatchJob, *, workspace_id: str | None = None) -> None:
        with self.lock:
            self.cancels.append(job.name)
            if self.cancel_ends_job:
                del self.script[:-1]
            if self.cancel_error is not None:
                raise self.cancel_error
            self.cancelled = self.cancel_takes_effect

    def find_jobs(
        self,
        *,
        workspace_id: str,
        properties: Mapping[str, str] | None = None,
        tag: str | None = None,
    ) -> Iterator[BatchJob]:
        """The ARM Jobs list: jobs whose invocation carried every requested property."""
        with self.lock:
            names = [
                name or "bs-x"
                for invocation, name in self.invokes
                if all(invocation.properties.get(k) == v for k, v in (properties or {}).items())
            ]
        return iter([self._job(name, "Running") for name in names])


def _binding(decorated: Any) -> Callable[[Any], Any]:
    """The activity binding's own function (what the Functions worker calls)."""
    fn: Callable[[Any], Any] = decorated.build().get_user_function()
    return fn


ACTIVITIES: dict[str, Callable[[Any], Any]] = {
    jobs.INVOKE_ACTIVITY: _binding(jobs.invoke_batch_endpoint),
    jobs.GET_ACTIVITY: _binding(jobs.get_batch_job),
    jobs.CANCEL_ACTIVITY: _binding(jobs.cancel_batch_job),
    admission.PLAN_ACTIVITY: _binding(admission.plan_admission),
    notify_queue.PLAN_QUEUE_ACTIVITY: _binding(notify_queue.plan_run_summary_queue),
}


@dataclass
class Harness:
    engine: Engine
    clock: VirtualClock
    fake: FakeEndpoint

    def run(
        self,
        params: dict[str, Any],
        *,
        name: str = "batch_endpoint_run",
        instance_id: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        iid = self.engine.start_new(name, instance_id=instance_id, input=params)
        return self.engine.wait_for_completion(iid, timeout=timeout)


@pytest.fixture
def make_harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Harness]]:
    engines: list[Engine] = []
    endpoints: list[ScriptedEndpoint] = []

    def make(
        script: list[Any],
        *,
        extra_orchestrators: dict[str, Callable[[str], str]] | None = None,
        **fake_kwargs: Any,
    ) -> Harness:
        fake = FakeEndpoint(script=list(script), **fake_kwargs)
        endpoint = ScriptedEndpoint(fake).start()
        endpoints.append(endpoint)
        for name, value in settings_for(endpoint).items():
            monkeypatch.setenv(name, value)
        clear_app_caches()
        clock = VirtualClock(start=T0, auto_advance=True)
        orchestrators = {
            batch_run.ORCHESTRATOR_NAME: handle(batch_run.batch_endpoint_run),
            **(extra_orchestrators or {}),
        }
        engine = Engine(":memory:", orchestrators, ACTIVITIES, clock=clock)
        engine.start()
        engines.append(engine)
        return Harness(engine=engine, clock=clock, fake=fake)

    yield make
    for engine in engines:
        engine.stop()
    for endpoint in endpoints:
        endpoint.stop()
    clear_app_caches()
