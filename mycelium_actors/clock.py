"""The one seam for time: now, sleep, timers.

Restart windows, backoff delays, ask timeouts and scheduled messages all read
time through a `Clock`, so tests can swap in `mycelium_actors.testing.FakeClock`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol


class TimerHandle(Protocol):
    """What `Clock.call_later` returns: something that can be cancelled."""

    def cancel(self) -> None: ...


class Clock:
    """Monotonic time from the running event loop (the default clock)."""

    def now(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""
        return asyncio.get_running_loop().time()

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run `callback(*args)` on the calling thread's running loop after `delay` seconds."""
        return asyncio.get_running_loop().call_later(delay, callback, *args)
