"""A blocked loop says so (issue 20 item 3, API.md 8): `loop.stalled` from the
watchdog thread while a handler blocks the loop that serves it (the system's or
a PinnedThread's), `loop.resumed` after; `handler.slow` for a handler that runs
past `slow_handler` without awaiting. An async handler that awaits is neither.

The watchdog is about real blocking, so those tests block for real: 1 s against
a 0.2 s threshold (5x). `handler.slow` reads the dispatcher's clock, faked here.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from actors import FakePerfClock

from mycelium_actors import Actor, ActorSystem, PinnedThread, handler
from mycelium_actors.kernel.executor import Executor
from mycelium_actors.testing import capture_events, events_named, eventually

STALL = 0.2  # the threshold of the tests that block
BLOCK = 1.0  # how long they block: 5x the threshold
QUIET = 0.5  # the threshold of the tests that must log nothing (no false alarm under load)


@attrs.frozen
class Block:
    """Blocks the loop: `time.sleep(seconds)` in a plain handler."""

    seconds: float


@attrs.frozen
class Wait:
    """Awaits `seconds` (real time) in an async handler: the loop turns meanwhile."""

    seconds: float


@attrs.frozen
class Costly:
    """A plain handler that costs `seconds` on the dispatcher's (fake) clock."""

    seconds: float


@attrs.frozen
class Hang:
    """An async handler that costs `seconds` on the fake clock while it awaits."""

    seconds: float


class Blocker(Actor):
    def __init__(self, clock: FakePerfClock | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.resume = asyncio.Event()

    @handler
    def block(self, msg: Block) -> str:
        time.sleep(msg.seconds)
        return "done"

    @handler
    async def wait(self, msg: Wait) -> str:
        await asyncio.sleep(msg.seconds)
        return "done"

    @handler
    def costly(self, msg: Costly) -> None:
        assert self.clock is not None
        self.clock.now += msg.seconds

    @handler
    async def hang(self, msg: Hang) -> None:
        assert self.clock is not None
        self.clock.now += msg.seconds  # as if the loop ran others meanwhile
        await asyncio.sleep(0)


@pytest.fixture
async def watched() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("stall", stall_warning=STALL, slow_handler=None) as system:
        yield system


@pytest.fixture
async def quiet() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("quiet", stall_warning=QUIET, slow_handler=QUIET) as system:
        yield system


def watchdogs() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("mycelium-watchdog")]


@pytest.mark.parametrize(
    ("executor", "thread"),
    [(None, "MainThread"), (PinnedThread(), "mycelium:/blocker")],
    ids=["system-loop", "pinned-thread"],
)
async def test_a_blocking_handler_is_named_in_loop_stalled_until_the_loop_resumes(
    watched: ActorSystem, executor: Executor | None, thread: str
) -> None:
    ref = await watched.spawn(Blocker, name="blocker", executor=executor)
    with capture_events() as events:
        assert await ref.ask(Block(BLOCK), timeout=30.0) == "done"
        [resumed] = await eventually(lambda: events_named(events, "loop.resumed"))
    stalls = events_named(events, "loop.stalled")
    assert stalls, events
    for stall in stalls:
        assert stall["log_level"] == "warning"
        assert (stall["path"], stall["message_type"], stall["thread"]) == (
            "/blocker",
            "Block",
            thread,
        )
        assert STALL <= stall["blocked_for"] <= BLOCK + 1.0
    blocked = [stall["blocked_for"] for stall in stalls]
    assert blocked == sorted(
        blocked
    )  # logged again while it lasts, never faster than the threshold
    assert len(stalls) <= BLOCK / STALL + 1
    assert resumed["log_level"] == "info"
    assert (resumed["path"], resumed["message_type"]) == ("/blocker", "Block")
    assert resumed["blocked_for"] >= blocked[-1]


async def test_a_blocking_hook_is_named_without_a_message_type(watched: ActorSystem) -> None:
    class BlocksOnStart(Actor):
        async def on_start(self) -> None:
            time.sleep(BLOCK)

    with capture_events() as events:
        await watched.spawn(BlocksOnStart, name="starter")
        await eventually(lambda: events_named(events, "loop.resumed"))
    stall = events_named(events, "loop.stalled")[0]
    assert (stall["path"], stall["message_type"]) == ("/starter", None)


async def test_an_async_handler_that_awaits_is_neither_stalled_nor_slow(quiet: ActorSystem) -> None:
    ref = await quiet.spawn(Blocker)
    with capture_events() as events:
        assert await ref.ask(Wait(3 * QUIET), timeout=30.0) == "done"
    assert not [e for e in events if e["event"] in ("loop.stalled", "handler.slow")], events


async def test_stall_warning_none_starts_no_watchdog_and_logs_nothing() -> None:
    before = len(watchdogs())
    with capture_events() as events:
        async with ActorSystem("off", stall_warning=None, slow_handler=None) as system:
            assert len(watchdogs()) == before
            ref = await system.spawn(Blocker)
            await ref.ask(Block(0.3), timeout=30.0)
    assert not [e for e in events if e["event"].startswith(("loop.", "handler."))], events


async def test_the_watchdog_thread_ends_with_its_system() -> None:
    async with ActorSystem("ends", stall_warning=STALL):
        [thread] = [t for t in watchdogs() if t.name == "mycelium-watchdog:ends"]
        assert thread.daemon
    assert not thread.is_alive()


def test_the_watchdog_thread_ends_when_its_loops_close_without_a_shutdown() -> None:
    loop = asyncio.new_event_loop()
    system = ActorSystem("abandoned", stall_warning=STALL)
    loop.run_until_complete(system.__aenter__())  # never left: the loop just closes
    [thread] = [t for t in watchdogs() if t.name == "mycelium-watchdog:abandoned"]
    loop.close()
    thread.join(10 * STALL)
    assert not thread.is_alive()


async def test_a_pinned_loop_that_ends_is_no_longer_watched(watched: ActorSystem) -> None:
    ref = await watched.spawn(Blocker, name="pinned", executor=PinnedThread())
    await ref.ask(Wait(0.0), timeout=30.0)
    watchdog = watched._watchdog
    assert watchdog is not None and len(watchdog._watched) == 2
    await ref.stop()
    await eventually(lambda: len(watchdog._watched) == 1)


# -- handler.slow: on the dispatcher's clock ---------------------------------------


@pytest.fixture
async def slow_system(perf_clock: FakePerfClock) -> AsyncIterator[ActorSystem]:
    async with ActorSystem("slow", stall_warning=None, slow_handler=1.0) as system:
        yield system


@pytest.mark.parametrize(
    "messages",
    [
        [Costly(2.0)],  # alone: the turn's last handler
        [Costly(2.0), Costly(0.1)],  # followed by another in the same turn
        [Hang(0.0), Costly(2.0)],  # the last one of a busy spell (after an async one)
        [Hang(0.0), Costly(2.0), Costly(0.1)],  # within a busy spell
    ],
    ids=["last-of-turn", "within-turn", "last-of-spell", "within-spell"],
)
async def test_a_handler_past_slow_handler_is_logged_once_with_its_time(
    slow_system: ActorSystem, perf_clock: FakePerfClock, messages: list[Any]
) -> None:
    ref = await slow_system.spawn(Blocker, perf_clock, name="slowpoke")
    *told, asked = messages
    with capture_events() as events:
        for message in told:  # all queued before the actor serves any
            ref.tell_nowait(message)
        await ref.ask(asked, timeout=30.0)
    [slow] = events_named(events, "handler.slow")
    assert slow["log_level"] == "warning"
    assert (slow["path"], slow["message_type"]) == ("/slowpoke", "Costly")
    assert slow["seconds"] == pytest.approx(2.0, abs=0.01)


async def test_handlers_under_slow_handler_and_awaiting_ones_are_not_slow(
    slow_system: ActorSystem, perf_clock: FakePerfClock
) -> None:
    ref = await slow_system.spawn(Blocker, perf_clock)
    with capture_events() as events:
        for message in (Costly(0.9), Hang(5.0), Hang(5.0), Costly(0.9)):
            ref.tell_nowait(message)
        await ref.ask(Hang(5.0), timeout=30.0)
    assert events_named(events, "handler.slow") == []


@pytest.mark.parametrize("name", ["stall_warning", "slow_handler"])
@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1.0, ValueError),
        (math.inf, ValueError),
        (math.nan, ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
def test_a_threshold_must_be_a_positive_number_or_none(
    name: str, value: object, error: type[Exception]
) -> None:
    with pytest.raises(error, match=f"{name} must be a positive number of seconds or None"):
        ActorSystem("bad", **{name: value})


def test_a_slot_still_being_made_is_named_by_no_path() -> None:
    """A stack caught inside a `Slot` method before the slot has its path (its
    `__init__`'s first line) names no actor: the watchdog thread must not crash."""
    from mycelium_actors.kernel import watchdog
    from mycelium_actors.kernel.slot import Slot

    inside, leave = threading.Event(), threading.Event()
    # A frame of slot.py's file whose `self` is a Slot without its path yet.
    code = compile(
        "def hook(self):\n    inside.set()\n    leave.wait(5)\n", watchdog._SLOT_FILE, "exec"
    )
    space: dict[str, Any] = {"inside": inside, "leave": leave}
    exec(code, space)  # our own source: a frame in slot.py's file
    thread = threading.Thread(target=space["hook"], args=(Slot.__new__(Slot),))
    thread.start()
    try:
        assert inside.wait(5)
        assert watchdog.serving(thread.ident or 0) == (None, None)
    finally:
        leave.set()
        thread.join(5)
