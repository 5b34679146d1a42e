"""Fixtures for devhost tests: the sample app index and in-process engines on a virtual clock."""

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devhost.app_loader import AppIndex, load_app
from devhost.engine import Engine, VirtualClock

SAMPLE_APP = Path(__file__).resolve().parent / "sample_app"
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def sample_index() -> AppIndex:
    """The sample app, imported once per session."""
    return load_app(SAMPLE_APP)


@pytest.fixture
def make_engine(sample_index: AppIndex, tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """Factory of started engines (stopped at teardown); defaults: auto-advancing virtual clock."""
    engines: list[Engine] = []

    def make(
        *,
        clock: VirtualClock | None = None,
        state: Path | None = None,
        activities: dict[str, Callable[[Any], Any]] | None = None,
        **kwargs: Any,
    ) -> Engine:
        engine = Engine(
            state_path=state or tmp_path / "state.sqlite",
            orchestrators=sample_index.orchestrators,
            activities=activities if activities is not None else sample_index.activities,
            clock=clock or VirtualClock(start=START, auto_advance=True),
            **kwargs,
        )
        engine.start()
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.stop()
