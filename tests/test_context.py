"""`self.context`: identity, log, stop, children, watch, timers, pipe_to_self (API.md §2)."""

from __future__ import annotations

import asyncio

import attrs
import pytest
from actors import (
    Boom,
    Crash,
    GetSeen,
    Introspect,
    LogHello,
    Ping,
    PipeIn,
    Record,
    ScheduleEvery,
    ScheduleOnce,
    SpawnChild,
    StopSelf,
    Watch,
    Worker,
    park,
)

from mycelium_actors import Child, Supervisor, Terminated, handler
from mycelium_actors.testing import capture_events, events_named, eventually, settle


@pytest.fixture
async def parent(system):
    return await system.spawn(Worker, name="p")


async def test_the_context_knows_its_actor(system) -> None:
    ref = await system.spawn(Worker, name="w")
    info = await ref.ask(Introspect())
    assert info == {"self_ref": ref, "path": "/w", "parent": None, "system": system}


async def test_context_log_is_bound_with_the_path(system) -> None:
    ref = await system.spawn(Worker, name="w")
    with capture_events() as events:
        await ref.ask(LogHello())
    assert events_named(events, "hello", path="/w")


async def test_context_stop_takes_effect_after_the_current_message(system, gate) -> None:
    journal: list[object] = []
    ref = await system.spawn(Worker, journal, gate)
    await park(ref, gate)
    stopping = asyncio.create_task(ref.ask(StopSelf()))
    await settle()
    await ref.tell(Record("queued"))
    before = system.dead_letters
    gate.open()
    assert await asyncio.wait_for(stopping, 5) == "stopping"
    await eventually(lambda: not ref.is_alive)
    assert journal == ["on_start", "on_stop"]
    assert system.dead_letters == before + 1


# -- children -----------------------------------------------------------------


async def test_a_child_lives_below_its_parent(system, parent) -> None:
    child = await parent.ask(SpawnChild("c"))
    assert (child.path, child.name) == ("/p/c", "c")
    assert system.lookup("/p/c") is child
    assert (await child.ask(Introspect()))["parent"].path == "/p"


@pytest.mark.parametrize("ending", ["stop", "crash"])
async def test_children_stop_with_their_parent(system, parent, ending) -> None:
    journal: list[object] = []
    child = await parent.ask(SpawnChild("c", journal))
    if ending == "stop":
        await parent.stop()
    else:
        await parent.tell(Boom())
    await eventually(lambda: not child.is_alive)
    assert journal == ["on_start", "on_stop"]
    assert system.lookup("/p/c") is None


async def test_a_crashed_child_stops_for_good_and_its_parent_goes_on(system, parent) -> None:
    child = await parent.ask(SpawnChild("c"))
    with pytest.raises(Crash):
        await child.ask(Boom())
    await eventually(lambda: not child.is_alive)
    assert await parent.ask(Ping()) == "pong"
    assert system.lookup("/p/c") is None


# -- watch --------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["stop", "crash"])
async def test_watch_delivers_terminated_once(system, ending) -> None:
    watcher = await system.spawn(Worker)
    target = await system.spawn(Worker)
    await watcher.ask(Watch(target))
    await watcher.ask(Watch(target))  # watching twice still reports once
    if ending == "stop":
        await target.stop()
    else:
        await target.tell(Boom())
    await eventually(lambda: watcher.ask(GetSeen()))
    [terminated] = await watcher.ask(GetSeen())
    assert isinstance(terminated, Terminated)
    assert terminated.ref.path == target.path


async def test_watching_a_stopped_actor_delivers_terminated_at_once(system) -> None:
    watcher = await system.spawn(Worker)
    target = await system.spawn(Worker)
    await target.stop()
    await watcher.ask(Watch(target))
    [terminated] = await eventually(lambda: watcher.ask(GetSeen()))
    assert terminated.ref.path == target.path


# -- timers (fake clock) ------------------------------------------------------


@pytest.fixture
async def ticker(fake_system):
    return await fake_system.spawn(Worker)


async def test_schedule_once_delivers_once_after_the_delay(ticker, clock) -> None:
    await ticker.ask(ScheduleOnce(2.0, Record("tick")))
    await clock.advance(1.5)
    assert await ticker.ask(GetSeen()) == []
    await clock.advance(0.5)
    assert await ticker.ask(GetSeen()) == ["tick"]
    await clock.advance(10.0)
    assert await ticker.ask(GetSeen()) == ["tick"]


async def test_schedule_every_delivers_at_each_interval(ticker, clock) -> None:
    await ticker.ask(ScheduleEvery(1.0, Record("tick")))
    await clock.advance(0.5)
    assert await ticker.ask(GetSeen()) == []
    await clock.advance(3.0)
    assert await ticker.ask(GetSeen()) == ["tick"] * 3


@pytest.mark.parametrize(
    ("schedule", "before_cancel", "ticks"),
    [(ScheduleOnce(1.0, Record("tick")), 0.5, 0), (ScheduleEvery(1.0, Record("tick")), 2.5, 2)],
    ids=["once", "every"],
)
async def test_a_cancelled_handle_delivers_nothing_more(
    ticker, clock, schedule, before_cancel, ticks
) -> None:
    handle = await ticker.ask(schedule)
    await clock.advance(before_cancel)
    handle.cancel()
    await clock.advance(10.0)
    assert await ticker.ask(GetSeen()) == ["tick"] * ticks


async def test_timers_end_with_the_actor(fake_system, ticker, clock) -> None:
    await ticker.ask(ScheduleEvery(1.0, Record("tick")))
    await ticker.ask(ScheduleOnce(3.0, Record("tock")))
    await ticker.stop()
    before = fake_system.dead_letters
    await clock.advance(10.0)
    assert fake_system.dead_letters == before  # no tick reached the stopped actor


# -- pipe_to_self -------------------------------------------------------------


@pytest.mark.parametrize("outcome", [42, Crash("failed later")], ids=["result", "exception"])
async def test_pipe_to_self_delivers_the_wrapped_outcome_without_blocking_the_mailbox(
    system, outcome
) -> None:
    ref = await system.spawn(Worker)
    pending: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    await ref.ask(PipeIn(pending))
    assert await ref.ask(Ping()) == "pong"
    assert await ref.ask(GetSeen()) == []
    if isinstance(outcome, BaseException):
        pending.set_exception(outcome)
    else:
        pending.set_result(outcome)
    [delivered] = await eventually(lambda: ref.ask(GetSeen()))
    assert delivered is outcome


@attrs.frozen
class TickThenCrash:
    """Schedules `Record("stale")` at once, parks on the gate, then crashes."""


class Restarting(Worker):
    @handler
    async def tick_then_crash(self, msg: TickThenCrash) -> None:
        self.context.schedule_once(0.0, Record("stale"))
        await self.gate.pass_through()
        raise Crash("after the tick was queued")


async def test_a_restarted_actor_never_handles_a_tick_of_its_predecessor(system, gate) -> None:
    """Defect 7: the tick was already in the mailbox when the old incarnation crashed."""
    await system.start(Supervisor("root", children=[Child(Restarting, [], gate, name="r")]))
    ref = system.lookup("/root/r")
    await ref.tell(TickThenCrash())
    await gate.wait_entered()
    await eventually(lambda: ref._slot.mailbox.depth == 1)  # the tick is queued
    gate.open()
    await eventually(lambda: system.tree()[0].children[0].restarts == 1)
    assert await ref.ask(GetSeen()) == []
