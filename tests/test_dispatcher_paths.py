"""The dispatcher's fast paths keep their meaning: an inline start (no start
task), a run of sync handlers inside one `Context.run`, and an async handler
run as an eager task on its own coroutine (3.12+)."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import attrs
import pytest
from structlog.testing import capture_logs

from mycelium_actors import Actor, ActorStopped, Child, Supervisor, handler
from mycelium_actors.testing import eventually

WAIT = 30.0
seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


class Refused(Exception):
    pass


class Unbuildable(Actor):
    """No `on_start`: started inline, so its constructor runs in the spawner's task."""

    def __init__(self) -> None:
        super().__init__()
        raise Refused("no")


@attrs.frozen
class Bind:
    value: str


@attrs.frozen
class Read:
    pass


@attrs.frozen
class ReadAsync:
    pass


@attrs.frozen
class Boom:
    pass


@attrs.frozen
class Slow:
    pass


class Binder(Actor):
    """Sync and async handlers sharing one context; `Boom` crashes, `Slow` suspends."""

    def __init__(self, journal: list[Any]) -> None:
        super().__init__()
        self.journal = journal

    @handler
    def bind(self, msg: Bind) -> None:
        seen.set(msg.value)
        self.journal.append(msg.value)

    @handler
    def read(self, msg: Read) -> str:
        return seen.get()

    @handler
    async def read_async(self, msg: ReadAsync) -> str:
        return seen.get()

    @handler
    def boom(self, msg: Boom) -> None:
        raise Refused("boom")

    @handler
    async def slow(self, msg: Slow) -> None:
        await asyncio.sleep(WAIT)


async def test_a_constructor_error_reaches_the_spawner_without_a_start_task(system) -> None:
    tasks = len(asyncio.all_tasks())
    with capture_logs() as logs, pytest.raises(Refused, match="no"):
        await system.spawn(Unbuildable, name="u")
    assert len(asyncio.all_tasks()) == tasks  # no start task was left behind
    assert system.lookup("/u") is None  # the name is free again
    assert [e for e in logs if e["event"] == "actor.crashed"]
    assert not [e for e in logs if e["event"] == "actor.started"]


async def test_an_inline_start_logs_started_and_serves(system) -> None:
    with capture_logs() as logs:
        ref = await system.spawn(Binder, [])
    assert [e["path"] for e in logs if e["event"] == "actor.started"] == [ref.path]
    assert await ref.ask(Read(), timeout=WAIT) == "unset"


async def test_a_batch_of_sync_handlers_shares_one_context_with_async_ones(system) -> None:
    journal: list[Any] = []
    ref = await system.spawn(Binder, journal)
    for value in "abc":  # queued without yielding: one turn, one Context.run
        ref.tell_nowait(Bind(value))
    asks = [asyncio.ensure_future(ref.ask(m, timeout=WAIT)) for m in (Read(), ReadAsync())]
    assert await asyncio.gather(*asks) == ["c", "c"]
    assert journal == ["a", "b", "c"]
    ref.tell_nowait(Bind("d"))  # after an async handler, the batch goes on in the same context
    assert await ref.ask(ReadAsync(), timeout=WAIT) == "d"


async def test_a_crash_in_the_middle_of_a_batch_hands_the_rest_to_the_next_incarnation(
    system,
) -> None:
    journal: list[Any] = []
    await system.start(
        Supervisor(
            "root", max_restarts=10, within=60.0, children=[Child(Binder, journal, name="b")]
        )
    )
    ref = system.lookup("/root/b")
    assert ref is not None
    ref.tell_nowait(Bind("before"))
    crashed = asyncio.ensure_future(ref.ask(Boom(), timeout=WAIT))
    ref.tell_nowait(Bind("after"))
    after = asyncio.ensure_future(ref.ask(Read(), timeout=WAIT))
    with pytest.raises(Refused):
        await crashed
    assert await after == "unset"  # the restarted incarnation's context, as before this change
    assert journal == ["before", "after"]


async def test_a_kill_of_a_suspended_async_handler_fails_its_asker(system) -> None:
    ref = await system.spawn(Binder, [], shutdown=0)
    slow = asyncio.ensure_future(ref.ask(Slow(), timeout=WAIT))
    await asyncio.sleep(0.01)
    await ref.stop()
    with pytest.raises(ActorStopped):
        await slow
    await eventually(lambda: not ref.is_alive, WAIT)


async def test_an_async_handler_that_finishes_eagerly_then_the_next_message_in_order(
    system,
) -> None:
    journal: list[Any] = []
    ref = await system.spawn(Binder, journal)
    asks = [
        asyncio.ensure_future(ref.ask(m, timeout=WAIT))
        for m in (ReadAsync(), Bind("x"), Read(), ReadAsync())
    ]
    assert await asyncio.gather(*asks) == ["unset", None, "x", "x"]
