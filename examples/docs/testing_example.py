"""Testing actors with pytest-asyncio and `mycelium_actors.testing`.

The fixtures would normally live in your conftest.py (or come from the pytest
plugin, last test); the tests are collected
by tests/test_doc_examples.py. Needs `asyncio_mode = "auto"` (pytest-asyncio).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from mycelium_actors import (
    Actor,
    ActorRef,
    ActorSystem,
    AskTimeout,
    Child,
    Supervisor,
    handler,
)
from mycelium_actors.testing import FakeClock, Probe, capture_events, events_named, eventually

# -- the code under test ------------------------------------------------------


@attrs.frozen
class Remind:
    after: float
    to: ActorRef[Any]
    text: str


@attrs.frozen
class Fire:
    to: ActorRef[Any]
    text: str


@attrs.frozen
class Due:
    text: str


@attrs.frozen
class Crash:
    pass


@attrs.frozen
class Wait:
    until: asyncio.Event  # the handler replies once this is set


class Reminder(Actor):
    @handler
    def remind(self, msg: Remind) -> None:
        self.context.schedule_once(msg.after, Fire(msg.to, msg.text))

    @handler
    async def fire(self, msg: Fire) -> None:
        await msg.to.tell(Due(msg.text))

    @handler
    def crash(self, msg: Crash) -> None:
        raise RuntimeError("crash")

    @handler
    async def wait(self, msg: Wait) -> None:
        await msg.until.wait()


# -- fixtures (conftest.py) ---------------------------------------------------


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("test") as system:
        yield system


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake_system(clock: FakeClock) -> AsyncIterator[ActorSystem]:
    async with ActorSystem("test", clock=clock) as system:
        yield system


# -- tests ----------------------------------------------------------------------


async def test_a_reminder_fires_after_its_delay(fake_system: ActorSystem, clock: FakeClock) -> None:
    reminder = await fake_system.spawn(Reminder)
    probe = await Probe.spawn(fake_system)
    await reminder.ask(Remind(60.0, probe.ref, "stand up"))  # handled at t=0
    await clock.advance(59.9)  # fires every timer due by then, in order
    await probe.expect_no_message()
    await clock.advance(0.1)
    due = await probe.expect(Due)
    assert due.text == "stand up"


async def test_ask_timeouts_follow_the_fake_clock(
    fake_system: ActorSystem, clock: FakeClock
) -> None:
    reminder = await fake_system.spawn(Reminder)
    release = asyncio.Event()
    try:
        asking = asyncio.create_task(reminder.ask(Wait(release), timeout=30.0))
        await clock.advance(0)  # let the ask start (and its deadline count) at t=0
        await clock.advance(29.0)
        assert not asking.done()
        await clock.advance(1.0)
        with pytest.raises(AskTimeout):
            await asking
    finally:
        release.set()  # shutdown timeouts are fake too: never leave a handler stuck


async def test_a_crash_is_logged_and_the_child_restarted(system: ActorSystem) -> None:
    with capture_events() as events:
        await system.start(Supervisor("root", children=[Child(Reminder, name="r")]))
        reminder = system.lookup("/root/r")
        assert reminder is not None
        await reminder.tell(Crash())
        await eventually(lambda: events_named(events, "actor.restarted", path="/root/r"))
    [crash] = events_named(events, "actor.crashed", path="/root/r")
    assert isinstance(crash["exc_info"], RuntimeError)
    assert events_named(events, "actor.stopped", path="/root/r", reason="crash")


# -- the same test with the plugin's fixtures (no conftest needed) -------------


async def test_with_the_plugin_fixtures(
    actor_system: ActorSystem, fake_clock: FakeClock, probe: Probe
) -> None:
    reminder = await actor_system.spawn(Reminder)
    await reminder.ask(Remind(60.0, probe.ref, "stand up"))
    await fake_clock.advance(60.0)
    assert (await probe.expect(Due)).text == "stand up"
