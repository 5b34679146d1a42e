"""Job tags: the run id, the trigger that started the run, and the caller's own ``tags``.

Azure ML stores a batch job's ``tags`` (DP swagger ``BatchJob.tags``, a string map; see
docs/service-contract.md) and shows them in Studio and the ARM Jobs list, which is where cost
and correlation per run come from (azure-sdk-for-python#42156). Every job carries:

- :data:`RUN_ID_TAG`: the run (orchestration instance) id;
- :data:`TRIGGER_TAG`: what started the run, one of :data:`TRIGGERS`;
- the run key tag of ``batch_runs.request`` (``batch_run_key``);
- the caller's ``tags`` (bounded; keys starting with :data:`RESERVED_PREFIX` are ours).

The trigger is an *internal* run input (``trigger``): the HTTP, blob and schedule starters
set it, a batch parent passes ``"batch"``, and a run without it was started by a parent
orchestration (``sub-orchestration``). The public HTTP body may not carry it.
"""

from collections.abc import Mapping

from batch_endpoint import character_problem

TRIGGERS: tuple[str, ...] = ("http", "blob", "schedule", "sub-orchestration", "batch")
#: The trigger of a run whose input names none: a parent orchestration started it.
DEFAULT_TRIGGER = "sub-orchestration"
RUN_ID_TAG = "batch_run_id"
TRIGGER_TAG = "batch_run_trigger"
RESERVED_PREFIX = "batch_run_"
MAX_TAGS = 20
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256


def trigger_problem(value: object) -> str | None:
    """What is wrong with a ``trigger`` input (None when it is one of :data:`TRIGGERS`)."""
    if value in TRIGGERS:
        return None
    return f"must be one of {', '.join(TRIGGERS)}"


def _text_problem(text: object, what: str, limit: int) -> str | None:
    if not isinstance(text, str):
        return f"{what} must be a string, got {type(text).__name__}"
    if not text or text != text.strip():
        return f"{what} must be non-empty without leading or trailing whitespace"
    if len(text) > limit:
        return f"{what} must be at most {limit} characters, got {len(text)}"
    problem = character_problem(text)
    return f"{what} {problem}" if problem else None


def tags_problem(value: object) -> str | None:
    """What is wrong with a caller's ``tags`` (None when it is a valid string map)."""
    if not isinstance(value, Mapping):
        return f"must be a JSON object of strings, got {type(value).__name__}"
    if len(value) > MAX_TAGS:
        return f"must have at most {MAX_TAGS} keys, got {len(value)}"
    for index, (key, text) in enumerate(value.items(), start=1):
        problem = _text_problem(key, f"key {index}", MAX_TAG_KEY)
        if problem is None and str(key).startswith(RESERVED_PREFIX):
            problem = f"key {index} must not start with {RESERVED_PREFIX!r} (reserved)"
        if problem is None:
            problem = _text_problem(text, f"the value of key {index}", MAX_TAG_VALUE)
        if problem:
            return problem
    return None


def job_tags(
    *,
    run_key: str | None,
    run_id: str | None,
    trigger: str | None,
    tags: Mapping[str, str] | None,
    run_key_tag: str,
) -> dict[str, str]:
    """The tags a run's job is submitted with (the caller's first; ours cannot be overridden)."""
    result = dict(tags or {})
    if run_key:
        result[run_key_tag] = run_key
    if run_id:
        result[RUN_ID_TAG] = run_id
        result[TRIGGER_TAG] = trigger or DEFAULT_TRIGGER
    return result
