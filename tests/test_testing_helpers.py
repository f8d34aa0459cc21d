"""`mycelium_actors.testing`: FakeClock, eventually, Probe."""

from __future__ import annotations

import asyncio

import pytest
from actors import Ping, Record

from mycelium_actors.testing import FakeClock, Probe, eventually, settle

# -- FakeClock ----------------------------------------------------------------


async def test_fake_clock_moves_only_when_advanced() -> None:
    clock = FakeClock(start=100.0)
    assert clock.now() == 100.0
    await clock.advance(2.5)
    assert clock.now() == 102.5


async def test_fake_clock_fires_due_timers_in_time_order(clock) -> None:
    fired: list[str] = []
    for delay in (3.0, 1.0, 2.0):
        clock.call_later(delay, fired.append, f"t{delay:g}")
    await clock.advance(2.0)
    assert fired == ["t1", "t2"]
    await clock.advance(1.0)
    assert fired == ["t1", "t2", "t3"]


async def test_fake_clock_skips_cancelled_timers(clock) -> None:
    fired: list[str] = []
    clock.call_later(1.0, fired.append, "kept")
    clock.call_later(1.0, fired.append, "cancelled").cancel()
    assert clock.pending == 1
    await clock.advance(1.0)
    assert fired == ["kept"]
    assert clock.pending == 0


async def test_fake_clock_sleep_ends_when_time_is_advanced(clock) -> None:
    sleeper = asyncio.create_task(clock.sleep(5.0))
    await settle()  # the sleep starts at t=0
    await clock.advance(4.0)
    assert not sleeper.done()
    await clock.advance(1.0)
    assert sleeper.done()


# -- eventually ---------------------------------------------------------------


async def test_eventually_returns_the_first_truthy_value() -> None:
    calls = iter([0, None, "ready"])
    assert await eventually(lambda: next(calls)) == "ready"


async def test_eventually_awaits_an_async_predicate() -> None:
    async def check() -> int:
        return 7

    assert await eventually(check) == 7


async def test_eventually_raises_an_assertion_error_on_timeout() -> None:
    with pytest.raises(AssertionError, match="never true"):
        await eventually(lambda: False, timeout=0.05, message="never true")


# -- Probe --------------------------------------------------------------------


@pytest.fixture
async def probe(system) -> Probe:
    return await Probe.spawn(system, name="probe")


async def test_probe_expect_returns_the_next_message(probe) -> None:
    assert probe.ref.path == "/probe"
    await probe.ref.tell(Record(1))
    assert await probe.expect(Record) == Record(1)


async def test_probe_expect_fails_on_a_message_of_another_type(probe) -> None:
    await probe.ref.tell(Ping())
    with pytest.raises(AssertionError, match="expected Record"):
        await probe.expect(Record)


async def test_probe_expect_fails_when_nothing_arrives(probe) -> None:
    with pytest.raises(AssertionError, match="no Record"):
        await probe.expect(Record, within=0.05)


async def test_probe_expect_no_message_passes_on_silence_and_fails_on_a_message(probe) -> None:
    await probe.expect_no_message(within=0.05)
    await probe.ref.tell(Ping())
    with pytest.raises(AssertionError, match="unexpected"):
        await probe.expect_no_message(within=1.0)
