"""Retry policy of the client: bounded attempts and time, full-jitter backoff, ``Retry-After``.

:class:`RetryPolicy` is a value object passed to the clients. The sleep, jitter source and clock
are part of it so that tests run without real waits.
"""

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: Longest wait a ``Retry-After`` header may impose on one retry.
RETRY_AFTER_CAP_SECONDS = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How a client retries transient failures (timeouts, resets, 408, 429, 5xx).

    Attributes:
        max_attempts: Attempts per operation (>= 1).
        budget_seconds: Give up instead of sleeping past this much total time (>= 0).
        base_delay: Delay scale of the first retry, before jitter.
        max_delay: Largest computed (jittered) delay.
        retry_after_cap: Largest ``Retry-After`` honoured.
        sleep: Waits between attempts.
        rng: Jitter source in ``[0, 1)``.
        clock: Monotonic seconds, for the budget.

    Raises:
        ValueError: A bound is out of range.
    """

    max_attempts: int = 3
    budget_seconds: float = 60.0
    base_delay: float = 1.0
    max_delay: float = 30.0
    retry_after_cap: float = RETRY_AFTER_CAP_SECONDS
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    rng: Callable[[], float] = field(default=random.random, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not self.budget_seconds >= 0:
            raise ValueError(f"budget_seconds must be >= 0, got {self.budget_seconds}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed ``attempt`` (see :func:`backoff_delay`)."""
        return backoff_delay(
            attempt,
            base=self.base_delay,
            cap=self.max_delay,
            retry_after=retry_after,
            rng=self.rng,
            cap_retry_after=self.retry_after_cap,
        )


def backoff_delay(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 30.0,
    retry_after: float | None = None,
    rng: Callable[[], float] = random.random,
    cap_retry_after: float = RETRY_AFTER_CAP_SECONDS,
) -> float:
    """Seconds to wait before the next attempt: exponential backoff with full jitter.

    A service-provided ``Retry-After`` wins over the computed delay, capped so that a bad
    header cannot park a worker for long.

    Args:
        attempt: The attempt that just failed, starting at 1.
        base: Delay scale of the first retry.
        cap: Largest computed (jittered) delay.
        retry_after: Seconds from ``Retry-After``, if the service sent it.
        rng: Returns a float in ``[0, 1)``; injected for tests.
        cap_retry_after: Largest honoured ``Retry-After``.

    Returns:
        A delay in seconds, ``>= 0``.
    """
    if retry_after is not None and math.isfinite(retry_after):
        return max(0.0, min(retry_after, cap_retry_after))
    exponent = max(0, attempt - 1)
    # 2**exponent overflows floats for absurd attempts; the cap applies long before that.
    ceiling = cap if exponent > 60 else min(cap, base * 2**exponent)
    return max(0.0, rng() * ceiling)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a ``Retry-After`` header: delta-seconds or an HTTP-date.

    Args:
        value: The header value, or None.
        now: The current time for HTTP-dates (default: the wall clock, UTC).

    Returns:
        Seconds to wait (``>= 0``), or None when absent or unparsable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    if current.tzinfo is None:
        current = current.replace(tzinfo=UTC)
    return max(0.0, (when - current).total_seconds())
