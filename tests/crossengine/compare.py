"""Compare two engines' traces of one scenario, after the named allowances."""

import difflib
from dataclasses import dataclass
from typing import Any

from tests.crossengine.allowances import normalize
from tests.crossengine.trace import Trace


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """The normalized traces and every difference left between them."""

    left: Trace
    right: Trace
    differences: tuple[str, ...]

    @property
    def applied(self) -> dict[str, tuple[str, ...]]:
        return {self.left.engine: self.left.applied, self.right.engine: self.right.applied}

    def report(self) -> str:
        head = f"allowances applied: {self.applied}"
        return "\n".join([head, *self.differences]) if self.differences else head


def _status_lines(trace: Trace) -> list[str]:
    return [f"@{at:g}s {status}" for at, status in trace.statuses]


def _diff(what: str, left: list[str], right: list[str], names: tuple[str, str]) -> list[str]:
    if left == right:
        return []
    lines = difflib.unified_diff(left, right, names[0], names[1], lineterm="", n=2)
    return [f"{what} differ:", *lines]


def _value(what: str, left: Any, right: Any, names: tuple[str, str]) -> list[str]:
    if left == right:
        return []
    return [f"{what} differ:", f"  {names[0]}: {left!r}", f"  {names[1]}: {right!r}"]


def compare(left: Trace, right: Trace) -> Comparison:
    """Normalize both traces with their engines' allowances, then compare them exactly:
    steps (kind, name, outcome, times), custom statuses after each step, the stored status
    at the end, and the outcome (status, output or failure message)."""
    a, b = normalize(left), normalize(right)
    names = (a.engine, b.engine)
    differences = [
        *_diff("steps", a.render_steps(), b.render_steps(), names),
        *_diff("custom statuses", _status_lines(a), _status_lines(b), names),
        *_value("final custom status", a.stored_status, b.stored_status, names),
        *_value("outcome", a.outcome, b.outcome, names),
    ]
    return Comparison(left=a, right=b, differences=tuple(differences))
