"""Lifecycle hooks and crashes of unsupervised actors (API.md §2)."""

from __future__ import annotations

import asyncio

import attrs
import pytest
from actors import Boom, Crash, Ping, Record, Worker

from mycelium_actors import Actor, ActorStopped, MyceliumError, PinnedThread, handler
from mycelium_actors.testing import capture_events, events_named, eventually, settle


async def test_on_start_finishes_before_the_first_message(system, gate) -> None:
    journal: list[object] = []
    spawning = asyncio.create_task(
        system.spawn(Worker, journal, gate, name="w", hold_on_start=True)
    )
    await gate.wait_entered()
    ref = system.lookup("/w")
    assert ref is not None
    await ref.tell(Record("first"))
    await settle()
    assert journal == []
    gate.open()
    assert await asyncio.wait_for(spawning, 5) is ref
    assert await ref.ask(Ping()) == "pong"
    assert journal == ["on_start", "first"]


class Quiet(Actor):
    """No hooks and no children: its end needs no task."""

    @handler
    def ping(self, msg: Ping) -> str:
        return "pong"


async def test_stopping_an_idle_actor_ends_it_without_a_loop_turn(system) -> None:
    ref = await system.spawn(Quiet)
    assert await ref.ask(Ping()) == "pong"
    turns: list[int] = []
    asyncio.get_running_loop().call_soon(turns.append, 1)
    with capture_events() as events:
        await ref.stop()
    assert (turns, ref.is_alive) == ([], False)
    assert events_named(events, "actor.stopped", path=ref.path, reason="shutdown")
    with pytest.raises(ActorStopped):
        await ref.ask(Ping())


async def test_on_stop_runs_after_the_last_message(system) -> None:
    journal: list[object] = []
    ref = await system.spawn(Worker, journal)
    await ref.tell(Record(1))
    await ref.tell(Record(2))
    await ref.stop()
    assert journal == ["on_start", 1, 2, "on_stop"]


async def test_a_crash_reaches_the_asker_then_runs_on_failure_then_on_stop(system, gate) -> None:
    journal: list[object] = []
    ref = await system.spawn(Worker, journal, gate, hold_on_failure=True)
    with pytest.raises(Crash):
        await asyncio.wait_for(ref.ask(Boom("bang")), 5)
    assert "on_stop" not in journal  # on_failure is still running
    gate.open()
    await eventually(lambda: not ref.is_alive)
    assert journal == ["on_start", "on_failure:bang", "on_stop"]


async def test_a_crash_stops_an_unsupervised_actor_for_good(system) -> None:
    ref = await system.spawn(Worker, name="w")
    await ref.tell(Boom())
    await eventually(lambda: not ref.is_alive)
    assert system.lookup("/w") is None
    with pytest.raises(ActorStopped):
        await ref.ask(Ping())
    before = system.dead_letters
    await ref.tell(Ping())
    assert system.dead_letters == before + 1


async def test_spawn_raises_what_on_start_raised_after_on_failure_and_without_on_stop(
    system,
) -> None:
    journal: list[object] = []
    with pytest.raises(Crash, match="start"):
        await system.spawn(Worker, journal, name="w", fail_on_start=True)
    assert journal == ["on_start", "on_failure:start"]
    assert system.lookup("/w") is None
    assert (await system.spawn(Worker, name="w")).is_alive


async def test_spawn_raises_what_the_constructor_raised(system) -> None:
    with pytest.raises(TypeError):
        await system.spawn(Worker, name="w", no_such_option=True)
    assert system.lookup("/w") is None


class Abort(BaseException):
    """A user BaseException: a crash like any other (supervision.md section 0)."""


@attrs.frozen
class Raise:
    """Raises the given BaseException in an async handler."""

    exc: BaseException


class Raiser(Worker):
    @handler
    async def raise_it(self, msg: Raise) -> None:
        await asyncio.sleep(0)
        raise msg.exc


@pytest.mark.parametrize(
    ("exc", "asker_gets"),
    [
        (GeneratorExit(), GeneratorExit),
        (Abort(), Abort),
        (asyncio.CancelledError(), MyceliumError),  # not sent by the framework
    ],
    ids=["GeneratorExit", "user BaseException", "stray CancelledError"],
)
async def test_a_base_exception_from_a_handler_is_a_crash(system, exc, asker_gets) -> None:
    """Defect 2: the asker gets it, actor.crashed is logged, on_failure and on_stop run."""
    journal: list[object] = []
    ref = await system.spawn(Raiser, journal)
    with capture_events() as events:
        with pytest.raises(asker_gets):
            await asyncio.wait_for(ref.ask(Raise(exc)), 5)
        await eventually(lambda: not ref.is_alive)
    assert [e["path"] for e in events_named(events, "actor.crashed")] == [ref.path]
    assert journal[1:] == [f"on_failure:{exc}", "on_stop"]


@attrs.frozen
class Exhausted:
    """A sync handler calls next() on an empty iterator: StopIteration escapes it."""


@attrs.frozen
class Touch:
    """An async handler that returns at once (on 3.11 it starts the busy task)."""


class Iterating(Worker):
    @handler
    def exhausted(self, msg: Exhausted) -> int:
        return int(next(iter(())))

    @handler
    async def touch(self, msg: Touch) -> str:
        return "touched"


@pytest.mark.parametrize("warm_async", [False, True], ids=["first message", "after async"])
@pytest.mark.parametrize("executor", [None, PinnedThread()], ids=["system loop", "pinned"])
async def test_a_stop_iteration_from_a_sync_handler_reaches_the_asker_as_a_crash(
    system, executor, warm_async
) -> None:
    """Issue 18, defect 1: a future refuses StopIteration; it used to wedge the actor."""
    journal: list[object] = []
    ref = await system.spawn(Iterating, journal, executor=executor)
    if warm_async:
        assert await ref.ask(Touch()) == "touched"
    with capture_events() as events:
        with pytest.raises(MyceliumError, match="StopIteration") as info:
            await asyncio.wait_for(ref.ask(Exhausted(), timeout=None), 5)
        assert isinstance(info.value.__cause__, StopIteration)
        await eventually(lambda: not ref.is_alive)
    assert [e["path"] for e in events_named(events, "actor.crashed")] == [ref.path]
    assert journal[-2:] == ["on_failure:", "on_stop"]
