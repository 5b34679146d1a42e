"""One long-lived asyncio loop in a background thread.

The Durable SDK's client keeps one global aiohttp session bound to the loop it was created on, so
every ``async def`` function (HTTP starters, async activities) must run on the same loop.
"""

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any

__all__ = ["LoopThread"]


class LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="devhost-asyncio", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        """Run ``coro`` on the loop and return its result (blocking the calling thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def close(self) -> None:
        """Close the SDK's shared HTTP session (if any), stop the loop and join the thread."""
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):
            from azure.durable_functions.models.utils import http_utils

            self.run(http_utils._close_session(), timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self._loop.close()
