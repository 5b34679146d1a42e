"""Predictive polling: plan a run's status checks from how long recent jobs took.

Pure: no clock, no I/O. The estimate activity (``batch_runs.estimates``) reads the durations of
recent completed runs on the same endpoint and deployment and calls :func:`plan_checks` once;
the plan travels in ``RunState`` (so ``continue_as_new`` keeps it) and the orchestrator asks
:meth:`PollPlan.delay` for each wait.

The model: run durations (submission to job end) are taken as log-normal, fitted to the sample
(mean and standard deviation of the log durations). That batch-job durations on one deployment
are roughly log-normal is an **assumption**; the plan stays safe when it is wrong, because its
call budget and its bounds do not depend on it being right:

- **Budget.** The plan may spend, in expectation under the fitted model, no more status checks
  than the fixed policy (one check per ``poll_interval``) would: ``E[ceil(T / poll_interval)]``.
- **Shape.** Checks sit at evenly spaced quantile levels of a central band of the model
  (levels ``a .. 1 - a``), so they are sparse where few jobs end (the start, the tails) and
  dense around the expected end (the median). Among the bands and check counts that fit the
  budget, the plan with the smallest median detection latency under the model is taken.
- **Censored history.** A past run only knows its job ended between its last check that saw
  it running and the check that saw it ended. The fit imputes each such interval with the
  model's conditional median inside it and refits (a few rounds), so a wide interval (a job
  that ended before the plan's first check) does not drag the model down.
- **Bounds.** Two checks are never closer than ``POLL_INTERVAL_MIN``; from the expected end on,
  no wait is longer than ``poll_interval``, and after the last planned check the run polls every
  ``poll_interval`` (the fixed policy); ``poll_max_interval``, when given, caps every wait; no
  timer is longer than :data:`batch_runs.policy.MAX_TIMER_SECONDS`.
- **Cold start.** Fewer than :data:`MIN_SAMPLES` durations, or a budget too small for even one
  planned check: no plan, the run polls as the fixed policy does.
"""

import hashlib
import itertools
import math
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist, fmean, median, stdev
from typing import Any

from batch_runs.policy import MAX_TIMER_SECONDS

#: Durations needed before a plan is made (fewer: the fixed policy).
MIN_SAMPLES = 3
#: Recent durations the estimate reads at most.
MAX_SAMPLES = 20
#: Planned checks at most (a plan is carried in the run's state).
MAX_PLANNED_CHECKS = 48
#: Points of the model's distribution the expected cost of a plan is computed on.
_GRID = 256
#: Smallest spread of the log durations the model assumes (a perfectly steady endpoint).
_MIN_SIGMA = 0.02
#: The share of the fixed policy's expected checks a plan may spend under the model: the
#: margin absorbs the error of a model fitted to 20 runs.
BUDGET_SHARE = 0.95


@dataclass(frozen=True, slots=True)
class DurationModel:
    """Log-normal run durations: ``log T ~ Normal(mu, sigma)`` (seconds)."""

    mu: float
    sigma: float

    @classmethod
    def fit(cls, durations: Sequence[float]) -> "DurationModel | None":
        """The model of ``durations`` (positive seconds), or None with too few of them."""
        usable = [math.log(d) for d in durations if d > 0 and math.isfinite(d)]
        if len(usable) < MIN_SAMPLES:
            return None
        n = len(usable)
        return cls(fmean(usable), max(_MIN_SIGMA, stdev(usable) * math.sqrt(1 + 1 / n)))

    def quantile(self, level: float) -> float:
        """The duration below which a fraction ``level`` (0 < level < 1) of runs end."""
        return math.exp(NormalDist(self.mu, self.sigma).inv_cdf(level))

    @property
    def median(self) -> float:
        return math.exp(self.mu)

    def grid(self) -> list[float]:
        """:data:`_GRID` equally likely durations (the midpoints of equal-probability bins)."""
        dist = NormalDist(self.mu, self.sigma)
        return [math.exp(dist.inv_cdf((j + 0.5) / _GRID)) for j in range(_GRID)]


@dataclass(frozen=True, slots=True)
class PollPlan:
    """When to check a job, in seconds after the run started.

    Attributes:
        checks: Planned check offsets, increasing, at least ``min_interval`` apart.
        expected_end: The model's median duration; from then on no wait exceeds the interval.
        min_interval: ``POLL_INTERVAL_MIN`` when the plan was made.
    """

    checks: tuple[int, ...]
    expected_end: int
    min_interval: int

    def delay(self, *, elapsed: float, poll_interval: int, max_interval: int | None = None) -> int:
        """Seconds to wait, ``elapsed`` seconds after the run started.

        The next planned check after now (never sooner than ``min_interval``); once the plan is
        spent, ``poll_interval``. From ``expected_end`` on the wait is at most
        ``poll_interval``; ``max_interval`` caps every wait; so does the timer limit.
        """
        index = bisect_left(self.checks, elapsed + 1e-9)
        if index < len(self.checks):
            wait = max(self.min_interval, math.ceil(self.checks[index] - elapsed))
        else:
            wait = poll_interval
        if elapsed >= self.expected_end:
            wait = min(wait, poll_interval)
        if max_interval is not None:
            wait = min(wait, max_interval)
        return max(1, min(wait, MAX_TIMER_SECONDS))

    def to_dict(self) -> dict[str, Any]:
        return {
            "checks": list(self.checks),
            "expected_end": self.expected_end,
            "min_interval": self.min_interval,
        }

    @classmethod
    def from_dict(cls, data: object) -> "PollPlan | None":
        """A plan written by :meth:`to_dict`; None for None.

        Raises:
            ValueError: Not a plan (wrong types, unordered or non-positive checks).
        """
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise ValueError("PollPlan must be a JSON object")
        checks = data.get("checks")
        end, low = data.get("expected_end"), data.get("min_interval")
        if (
            not isinstance(checks, list)
            or len(checks) > MAX_PLANNED_CHECKS
            or not all(_positive_int(c) for c in checks)
            or any(a >= b for a, b in itertools.pairwise(checks))
            or not _positive_int(end)
            or not _positive_int(low)
        ):
            raise ValueError("PollPlan holds invalid checks, expected_end or min_interval")
        return cls(tuple(checks), int(end), int(low))  # type: ignore[arg-type]


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def fixed_checks(duration: float, poll_interval: int) -> int:
    """Status checks the fixed policy makes for a run that ends ``duration`` s after its start."""
    return max(1, math.ceil(duration / poll_interval))


def checks_for(checks: Sequence[int], duration: float, poll_interval: int) -> tuple[int, float]:
    """``(status checks, detection time)`` of a plan for a run whose job ends at ``duration``.

    A check at the very moment the job ends sees it ended. After the last planned check the
    run polls every ``poll_interval``. (The idealised clock: no activity latency.)
    """
    if checks and duration <= checks[-1]:
        index = bisect_left(checks, duration)
        return index + 1, float(checks[index])
    last = checks[-1] if checks else 0
    extra = max(1, math.ceil((duration - last) / poll_interval))
    return len(checks) + extra, last + extra * poll_interval


def _spaced(points: Sequence[float], low: int) -> list[int]:
    """Whole seconds, increasing, the first >= ``low``, each >= ``low`` after the previous."""
    kept: list[int] = []
    for point in points:
        value = max(low, math.ceil(point))
        if kept and value < kept[-1] + low:
            continue
        kept.append(value)
    return kept


def _bounded(
    checks: list[int], expected_end: float, poll_interval: int, cap: int | None, low: int
) -> list[int]:
    """Insert checks so that the run never waits more than ``poll_interval`` past
    ``expected_end`` and never more than ``cap`` at all (inserted checks keep ``low`` apart)."""
    end = math.ceil(expected_end)
    out: list[int] = []
    previous = 0
    for check in checks:
        while True:
            limit = check if cap is None else min(check, previous + cap)
            limit = min(limit, previous + poll_interval if previous >= end else end + poll_interval)
            if limit >= check:
                out.append(check)
                previous = check
                break
            out.append(limit)  # >= previous + low: cap >= poll_interval >= low
            previous = limit
            if check - limit < low:
                break  # the inserted check stands in for this one
            if len(out) > MAX_PLANNED_CHECKS:
                return out  # too many to carry: the caller drops this candidate
    return out


#: Tail fractions ``a`` of the bands tried (checks at levels ``a .. 1 - a``).
_BANDS = (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3)


def _candidate(
    model: DurationModel,
    band: float,
    count: int,
    poll_interval: int,
    min_interval: int,
    cap: int | None,
    shift: int = 0,
) -> list[int]:
    if count == 1:
        levels = [0.5]
    else:
        levels = [band + (1 - 2 * band) * i / (count - 1) for i in range(count)]
    spaced = [p + shift for p in _spaced([model.quantile(u) for u in levels], min_interval)]
    return _bounded(spaced, model.median + shift, poll_interval, cap, min_interval)


def score(checks: Sequence[int], grid: Sequence[float], poll_interval: int) -> tuple[float, float]:
    """``(median detection latency, mean status checks)`` of a plan over equally likely
    durations."""
    outcomes = [checks_for(checks, d, poll_interval) for d in grid]
    return (
        median(seen - d for (_, seen), d in zip(outcomes, grid, strict=True)),
        fmean(n for n, _ in outcomes),
    )


def fit_intervals(intervals: Sequence[tuple[float, float]], rounds: int = 4) -> list[float]:
    """Durations for interval-censored observations ``(ended after, ended by)`` (seconds).

    Starts from the midpoints; each round fits the model and replaces every interval with the
    model's median inside it. Fewer than :data:`MIN_SAMPLES` intervals: the midpoints.
    """
    values = [(lo + hi) / 2 for lo, hi in intervals]
    for _ in range(rounds):
        model = DurationModel.fit(values)
        if model is None:
            return values
        dist = NormalDist(model.mu, model.sigma)
        imputed: list[float] = []
        for lo, hi in intervals:
            a = dist.cdf(math.log(lo)) if lo > 0 else 0.0
            b = dist.cdf(math.log(hi))
            if b - a < 1e-12:
                imputed.append(hi if b < 0.5 else max(lo, 1e-3))
            else:
                imputed.append(math.exp(dist.inv_cdf(min(max((a + b) / 2, 1e-12), 1 - 1e-12))))
        values = imputed
    return values


def _jitter(seed: str, min_interval: int, median: float) -> int:
    """A per-run shift of the whole plan (0 .. min(min_interval, 1 % of the median) - 1 s), from
    the run's seed, so runs started together do not check in step."""
    span = int(min(min_interval, 0.01 * median))
    if span < 1:
        return 0
    return hashlib.sha256(seed.encode()).digest()[0] % span


def plan_checks(
    durations: Sequence[float],
    *,
    poll_interval: int,
    min_interval: int,
    max_interval: int | None = None,
    seed: str = "",
) -> PollPlan | None:
    """The check plan for a run, from recent run durations; None means: poll as fixed.

    Args:
        durations: Seconds from submission to job end of recent completed runs.
        poll_interval: The run's interval (the fixed policy's wait, and the budget's unit).
        min_interval: ``POLL_INTERVAL_MIN``: no two checks closer.
        max_interval: ``poll_max_interval``: no wait longer (None: no cap).
        seed: Jitter source (the run id): shifts the plan by less than ``min_interval``.
    """
    model = DurationModel.fit(durations[:MAX_SAMPLES])
    low = max(1, min(min_interval, poll_interval))
    if model is None:
        return None
    grid = model.grid()
    budget = fmean(fixed_checks(d, poll_interval) for d in grid)
    cap = min(max_interval or MAX_TIMER_SECONDS, MAX_TIMER_SECONDS)  # one timer per wait
    shift = _jitter(seed, low, model.median)
    best: tuple[tuple[float, float], list[int]] | None = None
    for band in _BANDS:
        for count in range(1, MAX_PLANNED_CHECKS + 1):
            candidate = _candidate(model, band, count, poll_interval, low, cap, shift)
            if len(candidate) > MAX_PLANNED_CHECKS:
                break
            latency, checks = score(candidate, grid, poll_interval)
            if checks > budget * BUDGET_SHARE:
                break
            if best is None or (latency, checks) < best[0]:
                best = ((latency, checks), candidate)
    if best is None:
        return None
    return PollPlan(tuple(best[1]), max(1, math.ceil(model.median)) + shift, low)
