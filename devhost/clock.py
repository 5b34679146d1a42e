"""Clocks for the durable engine: real wall-clock time and a controllable virtual clock."""

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

__all__ = ["Clock", "RealClock", "VirtualClock"]


class Clock:
    """Base clock. ``now()`` returns an aware UTC datetime."""

    #: Whether an idle engine may jump this clock to its next due timer.
    auto_advance: bool = False
    #: Whether the clock is virtual (timers never need real waiting).
    virtual: bool = False

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> datetime:
        """Return the current time (aware UTC)."""
        raise NotImplementedError

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever the clock is moved (virtual clocks only)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        """Stop notifying ``listener``."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()


class RealClock(Clock):
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        """Return ``datetime.now(timezone.utc)``."""
        return datetime.now(UTC)


class VirtualClock(Clock):
    """A clock that only moves when told to (or, with ``auto_advance``, when the engine is idle).

    Args:
        start: the initial time (aware; naive values are taken as UTC). Default: now.
        auto_advance: let an idle engine jump straight to the next due timer.
    """

    virtual = True

    def __init__(self, start: datetime | None = None, *, auto_advance: bool = False) -> None:
        super().__init__()
        start = start or datetime.now(UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._now = start.astimezone(UTC)
        self.auto_advance = auto_advance
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the virtual time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward by ``seconds`` (must be >= 0) and return the new time.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("seconds: must be >= 0")
        with self._lock:
            self._now = self._now + timedelta(seconds=seconds)
            now = self._now
        self._notify()
        return now

    def advance_to(self, when: datetime) -> datetime:
        """Move the clock to ``when`` if that is later than now; return the new time."""
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        with self._lock:
            if when > self._now:
                self._now = when.astimezone(UTC)
            now = self._now
        self._notify()
        return now
