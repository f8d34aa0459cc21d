"""The one seam for time: now, sleep, timers.

Restart windows, backoff delays, ask timeouts and scheduled messages all read
time through a `Clock`, so tests can swap in `mycelium_actors.testing.FakeClock`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from .errors import AskTimeout

_INF = float("inf")
_heappush = heapq.heappush
_heappop = heapq.heappop


class TimerHandle(Protocol):
    """What `Clock.call_later` returns: something that can be cancelled."""

    def cancel(self) -> None: ...


class _Owner(Protocol):
    """Whoever keeps a `Deadline` pending; told when it is cancelled."""

    def forget(self) -> None: ...


class Deadline:
    """An armed ask deadline (what `Clock.expire` returns).

    Call `cancel()` on the future's loop as soon as the ask is done: the
    deadline lets go of the future (and its reply) at once. Cancelling twice,
    or after the deadline fired, does nothing.
    """

    __slots__ = ("_fut", "_owner", "timeout", "what")

    def __init__(self, fut: asyncio.Future[Any], timeout: float, what: str, owner: _Owner) -> None:
        self._fut: asyncio.Future[Any] | None = fut
        self._owner = owner
        self.timeout = timeout
        self.what = what

    @property
    def active(self) -> bool:
        """True until the deadline is cancelled or has fired."""
        return self._fut is not None

    def cancel(self) -> None:
        if self._fut is not None:
            self._fut = None
            self._owner.forget()

    def fire(self) -> None:
        """For clocks, at the deadline: fail the future with `AskTimeout` unless done."""
        fut, self._fut = self._fut, None
        if fut is not None and not fut.done():
            fut.set_exception(AskTimeout(f"{self.what} got no reply within {self.timeout}s"))


class Clock:
    """Monotonic time from the running event loop (the default clock)."""

    def __init__(self) -> None:
        # Weak keys: a closed loop (a stopped pinned thread) must not be kept alive.
        self._deadlines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = (
            weakref.WeakKeyDictionary()
        )
        self._new_loop = threading.Lock()

    def now(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""
        return asyncio.get_running_loop().time()

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run `callback(*args)` on the calling thread's running loop after `delay` seconds."""
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def expire(self, fut: asyncio.Future[Any], timeout: float, what: str) -> Deadline:
        """Fail `fut` with `AskTimeout` if it is not done after `timeout` seconds.

        Call on `fut`'s loop; the deadline fires there. Cheaper than a timer
        per ask: each loop keeps one heap of deadlines and one timer for the
        earliest (see `_Deadlines`).
        """
        loop = fut.get_loop()
        state = self._deadlines.get(loop)
        if state is None:
            state = self._register(loop)
        heap = state.heap
        while heap and heap[0][2]._fut is None:  # cancelled entries on top leave first
            _heappop(heap)
            state.cancelled -= 1
        when = loop.time() + timeout
        deadline = Deadline(fut, timeout, what, state)
        _heappush(heap, (when, next(state.seq), deadline))
        if when < state.timer_at:
            state.arm(loop, when)
        return deadline

    def _register(self, loop: asyncio.AbstractEventLoop) -> _Deadlines:
        with self._new_loop:  # rare: once per loop; iteration must not race an insert
            # Drop closed loops whose pending futures (never cancelled) still hold them.
            for closed in [lp for lp in self._deadlines if lp.is_closed()]:
                del self._deadlines[closed]
            state = self._deadlines[loop] = _Deadlines(loop)
        return state


class _Deadlines:
    """Pending ask deadlines of one event loop: one heap, one loop timer.

    Entries are `(when, seq, Deadline)`. A cancelled deadline stays in the
    heap, emptied of its future, until it reaches the top (popped by the next
    `expire` or firing) or until cancelled entries are more than half of the
    heap, when a compaction drops them all: so the heap holds at most about
    twice the live deadlines, and `cancel` is O(1) amortised. Nothing here
    holds the loop strongly (the timer handle is kept weakly too: it refers to
    its loop), so a closed, dropped loop can be collected.
    """

    __slots__ = ("__weakref__", "_loop", "_timer", "cancelled", "heap", "seq", "timer_at")

    #: Below this many cancelled entries, compaction waits (not worth a rebuild).
    COMPACT_MIN = 64

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        self._timer: weakref.ref[asyncio.TimerHandle] | None = None
        self.heap: list[tuple[float, int, Deadline]] = []
        self.cancelled = 0  # entries in `heap` whose deadline was cancelled or fired
        self.seq = itertools.count()  # ties on `when` never compare deadlines
        self.timer_at = _INF

    def forget(self) -> None:
        """One deadline was cancelled; compact when such entries are over half."""
        self.cancelled += 1
        if self.cancelled > self.COMPACT_MIN and self.cancelled * 2 > len(self.heap):
            self.heap[:] = [e for e in self.heap if e[2]._fut is not None]
            heapq.heapify(self.heap)
            self.cancelled = 0

    def arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        old = self._timer() if self._timer is not None else None
        if old is not None:
            old.cancel()
        self.timer_at = when
        self._timer = weakref.ref(loop.call_at(when, self._fire))

    def _fire(self) -> None:
        self._timer = None
        self.timer_at = _INF
        loop = self._loop()
        if loop is None:
            return
        now = loop.time()
        heap = self.heap
        while heap and heap[0][0] <= now:
            deadline = _heappop(heap)[2]
            if deadline._fut is None:
                self.cancelled -= 1
            else:
                deadline.fire()
        while heap and heap[0][2]._fut is None:
            _heappop(heap)
            self.cancelled -= 1
        if heap:
            self.arm(loop, heap[0][0])
