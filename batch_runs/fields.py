"""The rules of single run-parameter values: names, numbers, file names, run ids.

Each ``*_problem`` function returns None for a good value or a short sentence (without the
field name); the converters return None for a value they cannot read.
"""

import json
import re
from collections.abc import Mapping
from typing import Any

from batch_runs.uris import INPUT_TYPES, shown

_DEPLOYMENT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{0,31}\Z")
_DATA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}\Z")
# Bounded digit count: int() of a huge digit string is slow and raises past 4300 digits.
_NUMBER_TEXT = re.compile(r"^[0-9]{1,6}(?:\.[0-9]{1,6})?\Z")
_INT_TEXT = re.compile(r"^[+-]?[0-9]{1,15}\Z")  # ASCII digits: int() also reads "١٠"
#: ``rerun_of``: the id of the run a rerun repeats (set by the rerun route; a run id's rule).
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,255}\Z")


def input_type_problem(value: str) -> str | None:
    if value not in INPUT_TYPES:
        return f"must be one of {', '.join(INPUT_TYPES)} (exact case), got {shown(str(value))}"
    return None


def deployment_problem(value: str) -> str | None:
    if not _DEPLOYMENT_NAME.match(value):
        return f"must be 1-32 characters: a letter, then letters, digits or '-', got {shown(value)}"
    return None


def data_name_problem(value: str) -> str | None:
    if not isinstance(value, str) or not _DATA_NAME.match(value):
        return (
            "must start with a letter or '_' and hold only letters, digits and '_' "
            f"(at most 255), got {shown(str(value))}"
        )
    return None


def file_name_problem(value: str) -> str | None:
    if (
        not value
        or "/" in value
        or "\\" in value
        or value in {".", ".."}
        or ".." in value
        or any(c.isspace() and c != " " for c in value)
        or value != value.strip()
    ):
        return (
            "must be a plain file name such as predictions.csv (no '/' or '..'), "
            f"got {shown(value)}"
        )
    return None


def to_number(value: object) -> float | None:
    """A float from a number or a short decimal text; None otherwise (booleans included)."""
    if isinstance(value, bool) or (isinstance(value, int) and abs(value) > 10**15):
        return None  # float() of a huge int raises
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and _NUMBER_TEXT.match(value):
        return float(value)
    return None


def run_id_problem(value: str) -> str | None:
    if not isinstance(value, str) or not _RUN_ID.match(value):
        return f"must be a run id, got {shown(str(value))}"
    return None


def coerce_int(value: object) -> int | None:
    """An int from an int, an integral float or an integer string (ADF sends strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and _INT_TEXT.match(value.strip()):
        return int(value.strip())
    return None


def got(value: object) -> str:
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return "a number with too many digits"  # repr() of huge ints is slow or raises
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def decoded_input(value: object) -> object:
    """An instance's status ``input``, decoded: Azure returns the JSON text an SDK client posted
    as a string (azure-functions-durable-python#295; devhost/README.md, point 4), an
    orchestrator's ``get_input()`` the value. Text that is not JSON reads as None."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def run_parameters_of(durable_input: object) -> Mapping[str, Any] | None:
    """The run parameters in an instance's input (also after ``continue_as_new``).

    Assumption: the status ``input`` is the JSON text as a string (as Azure returns an input the
    SDK client posted, azure-functions-durable-python#295) or the decoded value; both are read.
    """
    data = decoded_input(durable_input)
    if not isinstance(data, Mapping):
        return None
    resume = data.get("resume")
    if isinstance(resume, Mapping):
        params = resume.get("run_parameters")
        return params if isinstance(params, Mapping) else None
    return data
