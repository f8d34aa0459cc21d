"""Helpers for testing actors: a fake clock, event capture, a probe, `eventually`."""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import structlog.testing

from .kernel.actor import Actor
from .kernel.clock import Clock, Deadline
from .kernel.system import ActorSystem

M = TypeVar("M")


class _FakeTimer:
    __slots__ = ("args", "callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...]):
        self.when = when
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        self.callback, self.args = _nothing, ()  # let go of what the callback holds


class _FakeDeadline(Deadline):
    """A deadline on a fake timer: cancelling it cancels the timer too."""

    __slots__ = ("timer",)
    timer: _FakeTimer

    def cancel(self) -> None:
        super().cancel()
        self.timer.cancel()


class FakeClock(Clock):
    """A clock that only moves when a test calls `advance()`.

    Timers run on the loop that calls `advance()`; use it for actors on the
    system loop (not for pinned-thread actors).
    """

    def __init__(self, start: float = 0.0) -> None:
        super().__init__()
        self._now = start
        self._timers: list[tuple[float, int, _FakeTimer]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> _FakeTimer:
        timer = _FakeTimer(self._now + max(0.0, delay), callback, args)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def expire(
        self, fut: asyncio.Future[Any], timeout: float, what: str, path: str = ""
    ) -> Deadline:
        deadline = _FakeDeadline(fut, timeout, what, path)
        deadline.timer = self.call_later(timeout, deadline.fire)
        return deadline

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.call_later(delay, _wake, fut)
        await fut

    @property
    def pending(self) -> int:
        """How many timers are scheduled and not cancelled."""
        return sum(1 for _, _, t in self._timers if not t.cancelled)

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing due timers in order and letting the loop settle."""
        target = self._now + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, when)
            timer.callback(*timer.args)
            await settle()
        self._now = target
        await settle()


def _nothing() -> None:
    pass


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def settle(rounds: int = 20) -> None:
    """Let ready callbacks and tasks run a few loop iterations (no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@contextmanager
def capture_events() -> Iterator[list[dict[str, Any]]]:
    """Collect structlog events (dicts with "event", "log_level", ...) while active."""
    with structlog.testing.capture_logs() as events:
        yield events  # type: ignore[misc]  # structlog types them as MutableMappings; they are dicts


def events_named(events: list[dict[str, Any]], name: str, **match: Any) -> list[dict[str, Any]]:
    """The captured events called `name` whose fields equal `match`."""
    return [
        e for e in events if e.get("event") == name and all(e.get(k) == v for k, v in match.items())
    ]


async def eventually(
    predicate: Callable[[], Any | Awaitable[Any]],
    timeout: float = 5.0,
    interval: float = 0.005,
    message: str = "",
) -> Any:
    """Wait until `predicate()` is truthy and return its value; AssertionError on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


class _ProbeActor(Actor):
    def __init__(self, inbox: asyncio.Queue[Any]) -> None:
        super().__init__()
        self.inbox = inbox

    async def on_receive(self, message: Any) -> Any:
        self.inbox.put_nowait(message)
        return None


class Probe:
    """An actor that records what it receives, for assertions with `expect`."""

    def __init__(self, ref: Any, inbox: asyncio.Queue[Any]) -> None:
        self.ref = ref
        self._inbox = inbox

    @classmethod
    async def spawn(cls, system: ActorSystem, name: str | None = None) -> Probe:
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        ref = await system.spawn(_ProbeActor, inbox, name=name)
        return cls(ref, inbox)

    async def expect(self, message_type: type[M], within: float = 2.0) -> M:
        """The next message; AssertionError if none arrives in time or it has another type."""
        try:
            message = await asyncio.wait_for(self._inbox.get(), within)
        except TimeoutError:
            raise AssertionError(
                f"probe {self.ref.path}: no {message_type.__qualname__} within {within}s"
            ) from None
        if not isinstance(message, message_type):
            raise AssertionError(
                f"probe {self.ref.path}: expected {message_type.__qualname__}, got {message!r}"
            )
        return message

    async def expect_no_message(self, within: float = 0.1) -> None:
        """AssertionError if any message arrives within `within` seconds."""
        try:
            message = await asyncio.wait_for(self._inbox.get(), within)
        except TimeoutError:
            return
        raise AssertionError(f"probe {self.ref.path}: unexpected {message!r}")
