"""Fixtures for the batch endpoint client tests: a scripted server and a closed-after session."""

from collections.abc import Iterator

import pytest
import requests

from tests.integration.client.scripted_server import ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A fresh scripted HTTP server on 127.0.0.1 for one test."""
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A requests session closed after the test (no leaked sockets)."""
    with requests.Session() as s:
        yield s
