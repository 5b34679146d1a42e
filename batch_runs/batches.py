"""Batches: many inputs, one child run each, at most ``max_parallel_jobs`` at a time.

The pure half of ``POST /api/batches`` and of the parent orchestrator
``batch_endpoint_batch``: request parsing, child ids and inputs, the sliding-window decisions,
the outcome of each child, the counts by state and the batch view.

The parent runs each input as a ``batch_endpoint_run`` sub-orchestration with the id
``<batch id>:<index>``: deterministic, so a replayed or restarted parent addresses the same
children, and the batch's children are found by id prefix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from batch_runs.failures import read_run_failure
from batch_runs.fields import coerce_int, got
from batch_runs.folders import folder_problem, https_folder_problem
from batch_runs.request import FieldError, InvalidRunRequest, parse_run_request
from batch_runs.settings import Settings
from batch_runs.uris import input_uri_problem

BATCH_ORCHESTRATOR = "batch_endpoint_batch"
#: Most inputs in one batch (a list, or the files of a folder).
MAX_BATCH_INPUTS = 1000
MAX_PARALLEL_JOBS = 100
DEFAULT_MAX_PARALLEL_JOBS = 4
#: Body limit of ``POST /api/batches`` (1,000 URIs of a few hundred characters; under the
#: host's FUNCTIONS_REQUEST_BODY_SIZE_LIMIT of 1 MiB in infra/main.bicep).
MAX_BATCH_BODY_BYTES = 1_000_000
#: Children that end in one parent execution before it drains and continues as new: bounds
#: the history (each child adds a created and an ended event) for batches of any size.
CHILDREN_PER_EXECUTION = 100
#: The ``trigger`` every child carries (an internal run parameter; job tags name it).
BATCH_TRIGGER = "batch"
#: Child states in the batch's counts.
STATES: tuple[str, ...] = ("pending", "running", "completed", "failed", "cancelled")
#: Keys of the body that are the batch's own; everything else is a shared run parameter.
_BATCH_KEYS = ("inputs", "input_folder", "max_parallel_jobs")
#: Run parameters a batch sets per child (refused in the body).
_PER_CHILD_KEYS = (
    "endpoint_input_uri",
    "endpoint_output_uri",
    "copy_output_to",  # one destination for every child's predictions: they would collide
    "rerun_of",
    "trigger",
)


def child_instance_id(batch_id: str, index: int) -> str:
    """``<batch id>:<index>``."""
    return f"{batch_id}:{index}"


def instance_id_for_batch_key(key_instance_id: str) -> str:
    """The batch id for an Idempotency-Key's run id (``run-<hash>`` → ``batch-<hash>``)."""
    return "batch-" + key_instance_id.removeprefix("run-")


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRequest:
    """A validated batch: its inputs (or folder), shared parameters and cap."""

    inputs: tuple[str, ...] = ()
    input_folder: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    max_parallel_jobs: int = DEFAULT_MAX_PARALLEL_JOBS

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "parameters": dict(self.parameters),
            "max_parallel_jobs": self.max_parallel_jobs,
        }
        if self.input_folder is not None:
            data["input_folder"] = self.input_folder
        if self.inputs:
            data["inputs"] = list(self.inputs)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchRequest:
        folder = data.get("input_folder")
        return cls(
            inputs=tuple(str(u) for u in data.get("inputs") or ()),
            input_folder=str(folder) if folder else None,
            parameters=dict(data.get("parameters") or {}),
            max_parallel_jobs=int(data.get("max_parallel_jobs") or DEFAULT_MAX_PARALLEL_JOBS),
        )


def child_parameters(parameters: Mapping[str, Any], input_uri: str) -> dict[str, Any]:
    """One child's run parameters: the shared ones, its input and ``trigger: batch``."""
    params = dict(parameters)
    if params.get("endpoint_input_type") in (None, ""):  # unset ("" as ADF passes it)
        params["endpoint_input_type"] = "UriFile"
    params["endpoint_input_uri"] = input_uri
    params["trigger"] = BATCH_TRIGGER
    return params


def _inputs_problems(value: object, input_type: str) -> list[FieldError]:
    if not isinstance(value, list):
        return [FieldError("inputs", f"inputs must be a list of input URIs, got {got(value)}")]
    if not 1 <= len(value) <= MAX_BATCH_INPUTS:
        return [
            FieldError("inputs", f"inputs must hold 1 to {MAX_BATCH_INPUTS} URIs, got {len(value)}")
        ]
    errors: list[FieldError] = []
    for i, uri in enumerate(value):
        name = f"inputs[{i}]"
        problem = (
            input_uri_problem(uri, input_type)
            if isinstance(uri, str)
            else f"must be a string, got {type(uri).__name__}"
        )
        if problem:
            errors.append(FieldError(name, f"{name} {problem}"))
        if len(errors) >= 20:  # enough to act on; the body may hold a thousand
            break
    return errors


def _cap(value: object) -> tuple[int, list[FieldError]]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_MAX_PARALLEL_JOBS, []
    number = coerce_int(value)
    if number is None or not 1 <= number <= MAX_PARALLEL_JOBS:
        message = (
            f"max_parallel_jobs must be an integer between 1 and {MAX_PARALLEL_JOBS}, "
            f"got {got(value)}"
        )
        return DEFAULT_MAX_PARALLEL_JOBS, [FieldError("max_parallel_jobs", message)]
    return number, []


def _source_problems(
    body: Mapping[Any, Any], input_type: str, settings: Settings
) -> list[FieldError]:
    has_inputs, has_folder = "inputs" in body, "input_folder" in body
    if has_inputs == has_folder:
        which = "both were given" if has_inputs else "neither was given"
        return [
            FieldError(
                "inputs" if has_inputs else "input_folder",
                f"exactly one of inputs or input_folder is required; {which}",
            )
        ]
    if has_inputs:
        return _inputs_problems(body["inputs"], input_type)
    folder = body["input_folder"]
    problem = (
        folder_problem(folder) or https_folder_problem(folder, settings.output_datastore_urls)
        if isinstance(folder, str)
        else f"must be a string, got {type(folder).__name__}"
    )
    return [FieldError("input_folder", f"input_folder {problem}")] if problem else []


def parse_batch_request(
    body: object, settings: Settings, *, batch_id: str, now: datetime
) -> BatchRequest:
    """Validate a ``POST /api/batches`` body; every problem names its field.

    The shared run parameters get the checks of ``POST /api/runs`` (``parse_run_request``, with
    the first input standing in for ``endpoint_input_uri``), so a batch that is accepted has
    children whose parameters are valid.

    Raises:
        InvalidRunRequest: Listing the bad fields; nothing is started.
    """
    if not isinstance(body, Mapping):
        raise InvalidRunRequest(
            [FieldError("body", f"body must be a JSON object, got {type(body).__name__}")]
        )
    errors = [
        FieldError(key, f"{key} is set per input by the batch; leave it out")
        for key in _PER_CHILD_KEYS
        if key in body
    ]
    raw_type = body.get("endpoint_input_type")
    input_type = raw_type if raw_type in ("UriFile", "UriFolder") else "UriFile"
    errors += _source_problems(body, input_type, settings)
    cap, cap_errors = _cap(body.get("max_parallel_jobs"))
    errors += cap_errors
    shared = {k: v for k, v in body.items() if k not in _BATCH_KEYS and k not in _PER_CHILD_KEYS}
    inputs = body.get("inputs")
    sample = inputs[0] if isinstance(inputs, list) and inputs and not errors else None
    try:
        parse_run_request(
            child_parameters(shared, sample or "azureml://datastores/sample/paths/sample.csv"),
            settings,
            run_id=child_instance_id(batch_id, 0),
            now=now,
        )
    except InvalidRunRequest as exc:
        errors += [d for d in exc.details if d.field not in ("endpoint_input_uri", "trigger")]
    if errors:
        raise InvalidRunRequest(errors)
    folder = body.get("input_folder")
    return BatchRequest(
        inputs=tuple(inputs) if isinstance(inputs, list) else (),
        input_folder=folder if isinstance(folder, str) else None,
        parameters=shared,
        max_parallel_jobs=cap,
    )


# --- the parent's progress and decisions -----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How one input ended: ``completed`` (with the run output) or ``failed``/``cancelled``."""

    index: int
    input_uri: str
    state: str
    output: Any = None
    error: str | None = None
    failure: Mapping[str, Any] | None = None

    def to_dict(self, batch_id: str) -> dict[str, Any]:
        data: dict[str, Any] = {
            "index": self.index,
            "input": self.input_uri,
            "id": child_instance_id(batch_id, self.index),
            "state": self.state,
        }
        if self.state == "completed":
            data["output"] = self.output
        else:
            data["error"] = self.error
            if self.failure is not None:
                data["failure"] = dict(self.failure)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        return cls(
            index=int(data["index"]),
            input_uri=str(data["input"]),
            state=str(data["state"]),
            output=data.get("output"),
            error=data.get("error"),
            failure=data.get("failure"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchProgress:
    """What the parent carries across ``continue_as_new``: the next index, the outcomes."""

    next_index: int = 0
    outcomes: tuple[Outcome, ...] = ()
    cancel_requested: bool = False
    started: str | None = None

    def to_dict(self, batch_id: str) -> dict[str, Any]:
        return {
            "next_index": self.next_index,
            "outcomes": [o.to_dict(batch_id) for o in self.outcomes],
            "cancel_requested": self.cancel_requested,
            "started": self.started,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchProgress:
        return cls(
            next_index=int(data.get("next_index", 0)),
            outcomes=tuple(Outcome.from_dict(o) for o in data.get("outcomes", ())),
            cancel_requested=bool(data.get("cancel_requested")),
            started=data.get("started"),
        )


def to_start(
    progress: BatchProgress, *, total: int, active: int, cap: int, ended_here: int
) -> range:
    """The indices to start now: fill the window up to ``cap``.

    Nothing starts once the batch is cancelled, or once :data:`CHILDREN_PER_EXECUTION` children
    ended in this execution (the parent drains its window, then continues as new).
    """
    if progress.cancel_requested or ended_here >= CHILDREN_PER_EXECUTION:
        return range(0)
    free = max(0, cap - active)
    return range(progress.next_index, min(total, progress.next_index + free))


def should_continue_as_new(*, active: int, ended_here: int, next_index: int, total: int) -> bool:
    """Drained after enough children ended, with inputs left: start a fresh history."""
    return active == 0 and ended_here >= CHILDREN_PER_EXECUTION and next_index < total


def outcome_of_failure(index: int, input_uri: str, error: object, *, cancelled: bool) -> Outcome:
    """A child that failed: ``cancelled`` when its job ended Canceled after a batch cancel.

    The child's structured failure (``batch_runs.failures``) gives the readable ``error`` and
    is kept as ``failure``; an unstructured text is kept as it is.
    """
    failure = read_run_failure(error)
    if failure is not None:
        text = str(failure["error"])
        job_canceled = failure.get("job_status") == "Canceled"
    else:
        text = str(error).strip() or type(error).__name__
        job_canceled = "ended Canceled" in text
    state = "cancelled" if cancelled and job_canceled else "failed"
    return Outcome(index=index, input_uri=input_uri, state=state, error=text, failure=failure)


def not_started_outcomes(inputs: Sequence[str], start: int) -> tuple[Outcome, ...]:
    """The inputs a cancelled batch never started."""
    return tuple(
        Outcome(
            index=i,
            input_uri=inputs[i],
            state="cancelled",
            error="not started: the batch was cancelled",
        )
        for i in range(start, len(inputs))
    )


def counts(*, total: int, outcomes: Sequence[Outcome], active: int, started: int) -> dict[str, int]:
    """Children by state: ``pending`` (not started), ``running``, and how the others ended."""
    result = dict.fromkeys(STATES, 0)
    for outcome in outcomes:
        result[outcome.state] = result.get(outcome.state, 0) + 1
    result["running"] = active
    result["pending"] = max(0, total - started - sum(1 for o in outcomes if o.index >= started))
    return result


def batch_status(
    *,
    phase: str,
    total: int,
    progress: BatchProgress,
    active: int,
    cap: int,
) -> dict[str, Any]:
    """The parent's custom status: phase, counts and the window."""
    return {
        "phase": phase,
        "total": total,
        "max_parallel_jobs": cap,
        "started_children": progress.next_index,
        "counts": counts(
            total=total, outcomes=progress.outcomes, active=active, started=progress.next_index
        ),
        "cancel_requested": progress.cancel_requested,
        "started": progress.started,
    }


def batch_output(batch_id: str, total: int, progress: BatchProgress) -> dict[str, Any]:
    """The parent's output: every input's outcome, in input order, and the counts."""
    ordered = sorted(progress.outcomes, key=lambda o: o.index)
    return {
        "total": total,
        "counts": counts(total=total, outcomes=ordered, active=0, started=progress.next_index),
        "outcomes": [o.to_dict(batch_id) for o in ordered],
    }


def batch_view(
    *,
    instance_id: str,
    runtime_status: str | None,
    custom_status: object,
    output: object,
    created: str | None,
    last_updated: str | None,
    children: list[dict[str, Any]],
    children_next: int | None,
) -> dict[str, Any]:
    """``GET /api/batches/{id}``: the run view's shape, counts by state and child run views."""
    custom = custom_status if isinstance(custom_status, Mapping) else {}
    result_counts = dict.fromkeys(STATES, 0)
    if isinstance(output, Mapping) and runtime_status == "Completed":
        result_counts.update(output.get("counts") or {})
    elif isinstance(custom.get("counts"), Mapping):
        result_counts.update(custom["counts"])
    view: dict[str, Any] = {
        "id": instance_id,
        "orchestrator": BATCH_ORCHESTRATOR,
        "runtime_status": runtime_status,
        "phase": custom.get("phase"),
        "created": custom.get("started") or created,
        "last_updated": last_updated,
        "total": custom.get(
            "total", (output or {}).get("total") if isinstance(output, Mapping) else None
        ),
        "max_parallel_jobs": custom.get("max_parallel_jobs"),
        "counts": result_counts,
        "children": children,
        "children_next": children_next,
    }
    if custom.get("cancel_requested"):
        view["cancel_requested"] = True
    if runtime_status == "Completed":
        view["output"] = output
    elif runtime_status in ("Failed", "Terminated") and output is not None:
        view["error"] = output if isinstance(output, str) else str(output)
    return view
