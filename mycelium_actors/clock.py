"""The one seam for time: now, sleep, timers.

Restart windows, backoff delays, ask timeouts and scheduled messages all read
time through a `Clock`, so tests can swap in `mycelium_actors.testing.FakeClock`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from .errors import AskTimeout


class TimerHandle(Protocol):
    """What `Clock.call_later` returns: something that can be cancelled."""

    def cancel(self) -> None: ...


class Clock:
    """Monotonic time from the running event loop (the default clock)."""

    def __init__(self) -> None:
        self._deadlines: dict[asyncio.AbstractEventLoop, _Deadlines] = {}

    def now(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""
        return asyncio.get_running_loop().time()

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run `callback(*args)` on the calling thread's running loop after `delay` seconds."""
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def expire(self, fut: asyncio.Future[Any], timeout: float, what: str) -> None:
        """Fail `fut` with `AskTimeout` if it is not done after `timeout` seconds.

        Cheaper than a timer per ask: futures wait in one deque per timeout
        value (so deadlines stay sorted), finished ones are pruned as new ones
        arrive, and a single timer per loop fires at the earliest deadline.
        """
        loop = fut.get_loop()
        deadlines = self._deadlines.get(loop)
        if deadlines is None:
            deadlines = self._deadlines[loop] = _Deadlines(loop)
        deadlines.add(fut, timeout, what)


class _Deadlines:
    """Pending ask deadlines of one event loop."""

    __slots__ = ("_loop", "_queues", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[float, deque[tuple[float, asyncio.Future[Any], str]]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def add(self, fut: asyncio.Future[Any], timeout: float, what: str) -> None:
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = deque()
        while queue and queue[0][1].done():
            queue.popleft()
        deadline = self._loop.time() + timeout
        queue.append((deadline, fut, what))
        if self._timer is None or deadline < self._timer_at:
            self._arm(deadline)

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = self._loop.time()
        earliest = None
        for timeout, queue in list(self._queues.items()):
            while queue and (queue[0][0] <= now or queue[0][1].done()):
                _, fut, what = queue.popleft()
                if not fut.done():
                    fut.set_exception(AskTimeout(f"{what} got no reply within {timeout}s"))
            if not queue:
                del self._queues[timeout]
            elif earliest is None or queue[0][0] < earliest:
                earliest = queue[0][0]
        if earliest is not None:
            self._arm(earliest)
