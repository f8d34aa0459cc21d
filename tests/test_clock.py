"""Ask deadlines (`Clock.expire` and `FakeClock.expire`): what they hold, for how long."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from mycelium_actors import Actor, ActorSystem, AskTimeout, Clock, handler
from mycelium_actors.testing import FakeClock, eventually

CLOCKS: dict[str, Callable[[], Clock]] = {"real": Clock, "fake": FakeClock}


class Big:
    """A reply worth not keeping: weakly referenceable, a megabyte."""

    def __init__(self) -> None:
        self.payload = bytearray(1 << 20)


class MakeBig(Actor):
    @handler
    def make(self, msg: int) -> Big:
        return Big()


def state_of(clock: Clock) -> Any:
    """The deadline bookkeeping of the running loop."""
    return clock._deadlines[id(asyncio.get_running_loop())]


async def pass_time(clock: Clock, seconds: float) -> None:
    if isinstance(clock, FakeClock):
        await clock.advance(seconds)
    else:
        await asyncio.sleep(seconds)


@pytest.fixture(params=CLOCKS.values(), ids=CLOCKS.keys())
async def any_system(request: pytest.FixtureRequest) -> AsyncIterator[ActorSystem]:
    async with ActorSystem("test-clocks", clock=request.param()) as system:
        yield system


async def test_a_finished_ask_lets_go_of_its_reply_at_once(any_system: ActorSystem) -> None:
    ref = await any_system.spawn(MakeBig)
    reply = await ref.ask(1, timeout=60)
    gone = weakref.ref(reply)
    del reply
    await ref.ask(2, timeout=30)  # moves the serve loop on (it holds its last result)
    gc.collect()
    assert gone() is None


@pytest.mark.parametrize("make", CLOCKS.values(), ids=CLOCKS.keys())
async def test_a_cancelled_deadline_lets_go_of_its_future_and_is_idempotent(
    make: Callable[[], Clock],
) -> None:
    clock = make()
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    deadline = clock.expire(fut, 60, "ask to /x")
    fut.set_result(Big())
    gone = weakref.ref(fut)
    deadline.cancel()
    deadline.cancel()
    del fut
    gc.collect()
    assert gone() is None


async def test_deadline_bookkeeping_stays_bounded_by_live_asks_with_distinct_timeouts() -> None:
    clock = Clock()
    loop = asyncio.get_running_loop()
    live: list[Any] = []
    biggest = 0
    for i in range(5000):
        fut = loop.create_future()
        live.append(clock.expire(fut, 30 + i * 0.001, "ask"))
        if len(live) > 10:  # ten asks in flight; finish them in random-ish order
            live.pop((i * 7) % len(live)).cancel()
        biggest = max(biggest, len(state_of(clock).heap))
    assert biggest <= max(2 * 11, state_of(clock).MIN_LIMIT) + 1
    for deadline in live:
        deadline.cancel()


@pytest.mark.parametrize("make", CLOCKS.values(), ids=CLOCKS.keys())
async def test_deadlines_fire_in_deadline_order_with_mixed_timeouts(
    make: Callable[[], Clock],
) -> None:
    clock = make()
    loop = asyncio.get_running_loop()
    failed: list[float] = []
    futs = {}
    for timeout in (0.05, 0.01, 0.04, 0.02, 0.03):
        fut = futs[timeout] = loop.create_future()
        fut.add_done_callback(lambda f, t=timeout: failed.append(t))
        deadline = clock.expire(fut, timeout, f"ask {timeout}")
    deadline.cancel()  # the 0.03 ask finished in time: it is never failed
    del futs[0.03]
    await pass_time(clock, 0.1)
    await asyncio.wait(futs.values(), timeout=5)
    assert failed == [0.01, 0.02, 0.04, 0.05]
    for timeout in failed:
        with pytest.raises(AskTimeout, match=rf"^ask {timeout} got no reply within {timeout}s$"):
            futs[timeout].result()


@pytest.mark.parametrize("make", CLOCKS.values(), ids=CLOCKS.keys())
async def test_cancel_after_expiry_is_harmless(make: Callable[[], Clock]) -> None:
    clock = make()
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    deadline = clock.expire(fut, 0.01, "ask")
    await pass_time(clock, 0.02)
    await asyncio.wait([fut], timeout=5)
    deadline.cancel()
    deadline.cancel()
    with pytest.raises(AskTimeout):
        fut.result()
    later = loop.create_future()
    clock.expire(later, 0.01, "later")  # the clock still works
    await pass_time(clock, 0.02)
    await asyncio.wait([later], timeout=5)
    assert isinstance(later.exception(), AskTimeout)
    if not isinstance(clock, FakeClock):
        assert state_of(clock).heap == []


def run_on_new_loop(clock: Clock, finish: bool) -> weakref.ref[asyncio.AbstractEventLoop]:
    """Arm deadlines on a fresh loop (finishing the asks or not), close it, drop it."""

    async def asks() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(3):
            fut = loop.create_future()
            deadline = clock.expire(fut, 60, "ask")
            if finish:
                fut.set_result(None)
                deadline.cancel()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(asks())
    loop.close()
    return weakref.ref(loop)


@pytest.mark.parametrize("finish", [True, False], ids=["asks_finished", "asks_left_pending"])
def test_a_closed_loop_is_not_kept_alive_by_its_deadlines(finish: bool) -> None:
    clock = Clock()
    gone = run_on_new_loop(clock, finish)
    if not finish:  # a pending future holds its loop until the next loop registers
        run_on_new_loop(clock, True)
    gc.collect()
    assert gone() is None


async def test_a_deadline_never_cancelled_leaves_at_its_deadline_and_spares_a_done_future() -> None:
    clock = Clock()
    fut = asyncio.get_running_loop().create_future()
    clock.expire(fut, 0.01, "ask")
    fut.set_result("on time")
    await eventually(lambda: not state_of(clock).heap)
    assert fut.result() == "on time"
