"""Session-wide fixtures shared by every test package."""

from collections.abc import Iterator

import pytest

from tests.support import Azurite, run_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One real Azurite blob service for the whole test session (free port, temp storage)."""
    with run_azurite() as instance:
        yield instance
