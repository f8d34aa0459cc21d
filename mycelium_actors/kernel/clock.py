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

from ..errors import AskTimeout

_INF = float("inf")
_heappush = heapq.heappush
_heappop = heapq.heappop
_heapreplace = heapq.heapreplace
_ref = weakref.ref


class TimerHandle(Protocol):
    """What `Clock.call_later` returns: something that can be cancelled."""

    def cancel(self) -> None: ...


class Deadline:
    """An armed ask deadline (what `Clock.expire` returns).

    Call `cancel()` on the future's loop as soon as the ask is done: the
    deadline lets go of the future (and its reply) at once. Cancelling twice,
    or after the deadline fired, does nothing.
    """

    __slots__ = ("fut", "path", "timeout", "what")

    def __init__(self, fut: asyncio.Future[Any], timeout: float, what: str, path: str = "") -> None:
        self.fut: asyncio.Future[Any] | None = fut
        self.timeout = timeout
        self.what = what
        self.path = path

    def cancel(self) -> None:
        self.fut = None  # the entry left in the clock's heap is dropped later

    def fire(self) -> None:
        """For clocks, at the deadline: fail the future with `AskTimeout` unless done."""
        fut, self.fut = self.fut, None
        if fut is not None and not fut.done():
            fut.set_exception(
                AskTimeout(f"{self.what}{self.path} got no reply within {self.timeout}s")
            )


class Clock:
    """Monotonic time from the running event loop (the default clock)."""

    def __init__(self) -> None:
        # Keyed by id(loop), not the loop, so a closed loop (a stopped pinned
        # thread) is not kept alive; each state's weak reference to its loop
        # removes the entry when the loop dies, before its id can be reused.
        # (Cheaper per ask than a WeakKeyDictionary, which `expire` would read.)
        self._deadlines: dict[int, _Deadlines] = {}
        self._new_loop = threading.Lock()

    def now(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""
        return asyncio.get_running_loop().time()

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run `callback(*args)` on the calling thread's running loop after `delay` seconds."""
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def expire(
        self, fut: asyncio.Future[Any], timeout: float, what: str, path: str = ""
    ) -> Deadline:
        """Fail `fut` with `AskTimeout` if it is not done after `timeout` seconds.

        The error reads "{what}{path} got no reply within {timeout}s": a local
        ref passes "ask to " and its path, so no per-ref message string is kept.

        Call on `fut`'s loop; the deadline fires there. Cheaper than a timer
        per ask: each loop keeps one heap of deadlines and one timer for the
        earliest (see `_Deadlines`).
        """
        loop = fut.get_loop()
        state = self._deadlines.get(id(loop))
        if state is None:
            state = self._register(loop)
        heap = state.heap
        when = loop.time() + timeout
        deadline = Deadline(fut, timeout, what, path)
        entry = (when, next(state.seq), deadline)
        if heap and heap[0][2].fut is None:  # a finished ask on top: take its place
            _heapreplace(heap, entry)
            while heap[0][2].fut is None:  # stops at the new entry at the latest
                _heappop(heap)
        else:
            if len(heap) >= state.limit:
                state.compact()
            _heappush(heap, entry)
        if when < state.timer_at:
            state.arm(loop, when)
        return deadline

    def _register(self, loop: asyncio.AbstractEventLoop) -> _Deadlines:
        with self._new_loop:  # rare: once per loop; two threads must not race here
            # Drop closed loops: a future never cancelled would hold its loop.
            for key, old in self._deadlines.copy().items():
                old_loop = old.loop()
                if old_loop is None or old_loop.is_closed():
                    self._deadlines.pop(key, None)
            key = id(loop)
            state = self._deadlines[key] = _Deadlines(
                _ref(loop, lambda _: self._deadlines.pop(key, None))
            )
        return state


class _Deadlines:
    """Pending ask deadlines of one event loop: one heap, one loop timer.

    Entries are `(when, seq, Deadline)`. A cancelled deadline stays in the
    heap, emptied of its future, until it reaches the top (popped by the next
    `expire` or firing) or until the heap reaches `limit`: then a compaction
    drops every cancelled entry and sets `limit` to twice what is left (at
    least `MIN_LIMIT`). So the heap never outgrows twice the deadlines live at
    the last compaction, and each entry costs O(1) amortised. (Cancelling
    does not count itself: that would cost every ask a second call.) Nothing
    here holds the loop strongly (its timer handle refers to the loop, so that
    is held weakly too): a closed, dropped loop can be collected.
    """

    __slots__ = ("_timer", "heap", "limit", "loop", "seq", "timer_at")

    MIN_LIMIT = 64

    def __init__(self, loop: weakref.ref[asyncio.AbstractEventLoop]) -> None:
        self.loop = loop
        self._timer: weakref.ref[asyncio.TimerHandle] | None = None
        self.heap: list[tuple[float, int, Deadline]] = []
        self.limit = self.MIN_LIMIT
        self.seq = itertools.count()  # ties on `when` never compare deadlines
        self.timer_at = _INF

    def compact(self) -> None:
        heap = self.heap
        heap[:] = [entry for entry in heap if entry[2].fut is not None]
        heapq.heapify(heap)
        self.limit = max(self.MIN_LIMIT, 2 * len(heap))

    def arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        old = self._timer() if self._timer is not None else None
        if old is not None:
            old.cancel()
        self.timer_at = when
        self._timer = _ref(loop.call_at(when, self._fire))

    def _fire(self) -> None:
        self._timer = None
        self.timer_at = _INF
        loop = self.loop()
        if loop is None:
            return
        now = loop.time()
        heap = self.heap
        while heap and heap[0][0] <= now:
            _heappop(heap)[2].fire()  # a no-op for a cancelled one
        while heap and heap[0][2].fut is None:
            _heappop(heap)
        if heap:
            self.arm(loop, heap[0][0])
