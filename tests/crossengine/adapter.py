"""Run an azure-functions-durable 1.x orchestrator generator on Microsoft's ``durabletask``.

The product's orchestrators are written against ``DurableOrchestrationContext``. durabletask's
context has the same ideas under other names, so :func:`as_durabletask_orchestrator` turns the
product's raw generator function into a durabletask orchestrator:

- :class:`AzureContextAdapter` is handed to the product's generator in place of the 1.x context.
  It presents only what the app uses (``get_input``, ``instance_id``, ``is_replaying``,
  ``current_utc_datetime``, ``set_custom_status``, ``call_activity[_with_retry]``,
  ``create_timer``, ``wait_for_external_event``, ``task_any``, ``continue_as_new``, ``new_uuid``,
  ``histories``, ``will_continue_as_new``)
  and maps each call to one durabletask call, adding no scheduling of its own.
- The tasks it returns are :class:`AdaptedTask` wrappers with the 1.x surface (``is_completed``,
  ``result``, ``cancel()``); a ``task_any`` yields the winning *wrapper*, so ``winner == cancel``
  works as in 1.x.
- A failed activity (after its retries) is thrown into the generator as 1.x does: a plain
  ``Exception(f"{reason} \\n {details}")``, where ``reason`` is durabletask's own wording.

The differences this cannot hide (timer splitting, retry timing, failure wording) are not
papered over here: they are the named allowances in ``tests/crossengine/allowances.py``.
"""

from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.durable_functions as df
from durabletask import task as dt

#: A product orchestrator: ``fn(context) -> generator``.
ProductOrchestrator = Callable[[Any], Generator[Any, Any, Any]]


def raw_generator(decorated: Any) -> ProductOrchestrator:
    """The user's generator function behind a ``@bp.orchestration_trigger`` object.

    ``build().get_user_function()`` is the SDK handle (``Orchestrator.create``), which keeps the
    generator function as ``orchestrator_function`` (azure/durable_functions/orchestrator.py).
    """
    fn: ProductOrchestrator = decorated.build().get_user_function().orchestrator_function
    return fn


def retry_policy(options: df.RetryOptions) -> dt.RetryPolicy:
    """1.x ``RetryOptions`` as a durabletask ``RetryPolicy`` (1.x has no backoff: coefficient 1,
    as DTFx's default)."""
    return dt.RetryPolicy(
        first_retry_interval=timedelta(milliseconds=options.first_retry_interval_in_milliseconds),
        max_number_of_attempts=options.max_number_of_attempts,
        backoff_coefficient=1.0,
    )


class AdaptedTask:
    """A durabletask task with the 1.x task surface the app uses."""

    def __init__(self, inner: dt.Task[Any]) -> None:
        self.inner = inner

    @property
    def is_completed(self) -> bool:
        return self.inner.is_complete

    @property
    def result(self) -> Any:
        return self.inner.get_result() if self.inner.is_complete else None

    def cancel(self) -> None:
        """1.x ``TimerTask.cancel``: a completed timer cannot be cancelled (ValueError)."""
        if not isinstance(self.inner, dt.CancellableTask):
            raise TypeError("only timers and event waiters can be cancelled")
        if self.inner.is_complete:
            raise ValueError("Cannot cancel a completed task.")
        self.inner.cancel()


class AzureContextAdapter:
    """The ``DurableOrchestrationContext`` surface the app uses, backed by durabletask."""

    def __init__(self, ctx: dt.OrchestrationContext, input: Any) -> None:
        self._ctx = ctx
        self._input = input
        # durabletask task -> the wrapper handed to the product (to map task_any winners back).
        self._wrappers: dict[int, AdaptedTask] = {}
        self._continued_as_new = False
        self._custom_status: Any = None

    def _wrap(self, inner: dt.Task[Any]) -> AdaptedTask:
        wrapper = AdaptedTask(inner)
        self._wrappers[id(inner)] = wrapper
        return wrapper

    def wrapper_of(self, inner: dt.Task[Any]) -> AdaptedTask:
        return self._wrappers.get(id(inner)) or self._wrap(inner)

    # -- properties ---------------------------------------------------------------------
    @property
    def instance_id(self) -> str:
        return self._ctx.instance_id

    @property
    def is_replaying(self) -> bool:
        return self._ctx.is_replaying

    @property
    def current_utc_datetime(self) -> datetime:
        # durabletask's clock is naive UTC; 1.x's is aware (the app compares it with aware
        # deadlines and writes it into job names).
        return self._ctx.current_utc_datetime.replace(tzinfo=UTC)

    def get_input(self) -> Any:
        return self._input

    @property
    def histories(self) -> list[Any]:
        """1.x's history events. durabletask shows none; the app reads them only to tell a run
        started before admission control was deployed (orchestrators/admission.py), which no
        scenario here is."""
        return []

    @property
    def will_continue_as_new(self) -> bool:
        return self._continued_as_new

    def new_uuid(self) -> str:
        return self._ctx.new_uuid()

    # -- actions ------------------------------------------------------------------------
    def set_custom_status(self, status: Any) -> None:
        self._custom_status = status
        self._ctx.set_custom_status(status)

    @property
    def custom_status(self) -> Any:
        """1.x ``DurableOrchestrationContext.custom_status``: the last value set (the run's
        ending summary reads it, orchestrators/handoff.py)."""
        return self._custom_status

    def call_activity(self, name: str, input_: Any = None) -> AdaptedTask:
        return self._wrap(self._ctx.call_activity(name, input=input_))

    def call_activity_with_retry(
        self, name: str, retry_options: df.RetryOptions, input_: Any = None
    ) -> AdaptedTask:
        task: dt.Task[Any] = self._ctx.call_activity(
            name, input=input_, retry_policy=retry_policy(retry_options)
        )
        return self._wrap(task)

    def create_timer(self, fire_at: datetime) -> AdaptedTask:
        return self._wrap(self._ctx.create_timer(fire_at))

    def wait_for_external_event(self, name: str) -> AdaptedTask:
        return self._wrap(self._ctx.wait_for_external_event(name))

    def task_any(self, activities: list[AdaptedTask]) -> AdaptedTask:
        return self._wrap(dt.when_any([a.inner for a in activities]))

    def continue_as_new(self, input_: Any) -> None:
        self._continued_as_new = True
        self._ctx.continue_as_new(input_)


def _as_1x_failure(error: dt.TaskFailedError) -> Exception:
    """What 1.x raises into the generator for a failed task (TaskOrchestrationExecutor.py:
    ``Exception(f"{event.Reason} \\n {event.Details}")``), from durabletask's failure."""
    return Exception(f"{error} \n {error.details.stack_trace or ''}")


def as_durabletask_orchestrator(fn: ProductOrchestrator, name: str) -> Callable[..., Any]:
    """A durabletask orchestrator (registered as ``name``) that drives the product's generator."""

    def orchestrator(ctx: dt.OrchestrationContext, input: Any) -> Generator[Any, Any, Any]:
        adapter = AzureContextAdapter(ctx, input)
        product = fn(adapter)
        if not isinstance(product, Generator):
            return product  # an orchestrator that never yields
        send: tuple[Any, Exception | None] = (None, None)
        while True:
            value, error = send
            try:
                yielded = product.send(value) if error is None else product.throw(error)
            except StopIteration as stop:
                return stop.value
            if not isinstance(yielded, AdaptedTask):
                raise TypeError(f"the orchestrator yielded {type(yielded).__name__}, not a task")
            try:
                result = yield yielded.inner
            except dt.TaskFailedError as exc:
                send = (None, _as_1x_failure(exc))
                continue
            if isinstance(yielded.inner, dt.WhenAnyTask):
                result = adapter.wrapper_of(result)
            send = (result, None)

    orchestrator.__name__ = name
    orchestrator.__qualname__ = name
    return orchestrator
