"""Busy spells and the pass budget (issue 18): async handlers are served by one
task per busy spell, which ends when the mailbox is empty; the 2 ms budget holds
within a turn; a timer tick to a sync handler needs no task; a kill before a
spell's first step loses no message; `current_task()` follows API.md 5."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import attrs
import pytest
from actors import FakePerfClock
from structlog.testing import capture_logs

from mycelium_actors import Actor, ActorRef, ActorStopped, ActorSystem, handler
from mycelium_actors.testing import FakeClock, eventually

WAIT = 30.0  # bounds hangs on a loaded machine, not speed
SHORT = 3.0  # for waits that only end this soon on code that is wrong


@attrs.frozen
class Work:
    n: int


@attrs.frozen
class WhoServes:
    """Replies with `asyncio.current_task()` as the async handler sees it."""


@attrs.frozen
class Park:
    """An async handler that suspends until the test cancels its task."""


@attrs.frozen
class Arm:
    """Schedules a `Beat` to self after 1 s (fake clock)."""


@attrs.frozen
class Beat:
    pass


class SyncWork(Actor):
    """Each message costs 1 ms on the dispatcher's clock (a fake the test passes)."""

    def __init__(self, clock: FakePerfClock | None, got: list[int]) -> None:
        super().__init__()
        self.clock, self.got = clock, got

    @handler
    def work(self, msg: Work) -> None:
        if self.clock is not None:
            self.clock.now += 0.001
        self.got.append(msg.n)


class AsyncWork(SyncWork):
    @handler
    async def work(self, msg: Work) -> None:
        if self.clock is not None:
            self.clock.now += 0.001
        self.got.append(msg.n)


class Served(Actor):
    """Async handlers that report the task they run in."""

    def __init__(self, tasks: list[asyncio.Task[Any] | None]) -> None:
        super().__init__()
        self.tasks = tasks
        self.parked: asyncio.Future[asyncio.Task[Any] | None] | None = None

    @handler
    async def work(self, msg: Work) -> None:
        self.tasks.append(asyncio.current_task())

    @handler
    async def who(self, msg: WhoServes) -> asyncio.Task[Any] | None:
        return asyncio.current_task()

    @handler
    async def park(self, msg: Park) -> None:
        assert self.parked is not None
        self.parked.set_result(asyncio.current_task())
        await asyncio.sleep(WAIT)


class Timed(Actor):
    """A sync-only actor that uses a timer."""

    def __init__(self, beats: list[int]) -> None:
        super().__init__()
        self.beats = beats

    @handler
    def arm(self, msg: Arm) -> None:
        self.context.schedule_once(1.0, Beat())

    @handler
    def beat(self, msg: Beat) -> None:
        self.beats.append(1)


WORKERS = pytest.mark.parametrize("worker", [SyncWork, AsyncWork], ids=["sync", "async"])


def tasks_now() -> int:
    return len(asyncio.all_tasks())


# -- defect 5: the budget holds within a turn --------------------------------------


@WORKERS
async def test_the_budget_holds_within_a_turn_of_slow_handlers(system, perf_clock, worker) -> None:
    total = 200
    got: list[int] = []
    ref = await system.spawn(worker, perf_clock, got, mailbox_capacity=total)
    loop = asyncio.get_running_loop()
    seen: list[int] = []  # how many were handled each time a loop timer ran
    done: asyncio.Future[None] = loop.create_future()

    def tick() -> None:
        seen.append(len(got))
        if len(got) < total:
            loop.call_later(0, tick)
        else:
            done.set_result(None)

    for i in range(total):
        ref.tell_nowait(Work(i))
    loop.call_later(0, tick)
    await asyncio.wait_for(done, WAIT)
    # 1 ms per handler against a 2 ms budget: about three messages between two
    # runs of a loop timer, not the whole flood (nor a batch of 64).
    steps = [b - a for a, b in zip([0, *seen], seen, strict=False)]
    assert max(steps) <= 10, steps
    await eventually(lambda: len(got) == total, WAIT)
    assert got == list(range(total))


# -- defects 12 and 13: a task per busy spell, not per message -----------------------


async def test_a_busy_spell_serves_queued_async_messages_in_one_task_that_then_ends(
    system, perf_clock
) -> None:
    tasks: list[asyncio.Task[Any] | None] = []
    ref = await system.spawn(Served, tasks)
    for i in range(200):  # queued at once; the (fake) budget never runs out
        ref.tell_nowait(Work(i))
    await eventually(lambda: len(tasks) == 200, WAIT)
    spells = {id(task) for task in tasks}
    assert len(spells) == 1  # one task for the spell, not one per message
    (task,) = {task for task in tasks if task is not None}
    assert task is not asyncio.current_task()
    await eventually(task.done, SHORT)  # the mailbox is empty: the spell ended


async def test_an_async_handler_runs_in_a_task_serving_its_actor_and_none_stays_when_idle(
    system,
) -> None:
    tasks: list[asyncio.Task[Any] | None] = []
    before = tasks_now()
    ref = await system.spawn(Served, tasks)
    first = await ref.ask(WhoServes(), timeout=WAIT)
    assert isinstance(first, asyncio.Task) and first is not asyncio.current_task()
    await eventually(first.done, SHORT)  # idle: the actor holds no task (3.11 too)
    assert tasks_now() == before
    second = await ref.ask(WhoServes(), timeout=WAIT)
    assert isinstance(second, asyncio.Task) and second is not first


async def test_cancelling_the_task_of_a_running_async_handler_kills_the_actor(system) -> None:
    ref = await system.spawn(Served, [])
    actor = ref._slot.instance
    actor.parked = asyncio.get_running_loop().create_future()
    with capture_logs() as logs:
        asked = asyncio.ensure_future(ref.ask(Park(), timeout=WAIT))
        task = await asyncio.wait_for(actor.parked, WAIT)
        assert isinstance(task, asyncio.Task)
        task.cancel()  # an outside cancel of the task serving the actor
        with pytest.raises(ActorStopped):
            await asyncio.wait_for(asked, WAIT)
        await eventually(lambda: not ref.is_alive, WAIT)
    stopped = [e for e in logs if e["event"] == "actor.stopped"]
    assert [e["reason"] for e in stopped] == ["killed"]


# -- defect 7: a kill before a spell's first step loses nothing -------------------------


async def test_a_kill_before_the_spell_starts_leaves_every_tell_handled_or_dead_lettered(
    system,
) -> None:
    got: list[int] = []
    ref = await system.spawn(AsyncWork, None, got, shutdown=0)
    before = system.dead_letters
    await ref.tell(Work(1))
    await ref.tell(Work(2))
    await asyncio.sleep(0)  # the dispatcher pass runs; on 3.11 the spell has not started
    await ref.stop()  # shutdown=0: a kill at once
    await eventually(lambda: len(got) + system.dead_letters - before == 2, SHORT)
    assert got in ([], [1], [1, 2])  # handled in order, or not at all


# -- defect 11: a timer tick gives a sync-only actor no task --------------------------


async def test_a_timer_tick_to_a_sync_handler_leaves_no_task_behind() -> None:
    clock = FakeClock()
    async with ActorSystem("ticks", clock=clock, kill_grace=0.5) as system:
        beats: list[int] = []
        refs = [await system.spawn(Timed, beats) for _ in range(20)]
        for ref in refs:
            await ref.tell(Arm())
        await eventually(lambda: clock.pending == len(refs), WAIT)
        before = tasks_now()
        await clock.advance(1.0)
        await eventually(lambda: len(beats) == len(refs), WAIT)
        await eventually(lambda: tasks_now() == before, SHORT)
        assert all(ref._slot.task is None for ref in refs)


# -- carried spells: one task serves the next tasked actor of the ready queue ------

#: Set by each `Relay` at its first hop: later hops must see its own value.
mine: contextvars.ContextVar[str | None] = contextvars.ContextVar("mine", default=None)


@attrs.frozen
class Token:
    left: int
    park_at: int = -1  # the receiver of this count parks (awaits until cancelled)
    pause_at: int = -1  # the receiver of this count suspends once, then goes on
    crash_at: int = -1  # the receiver of this count raises


class Relay(Actor):
    """Passes a `Token` on to `next` (async, as a ring hop), noting who served it:
    (its name, the context variable it sees, the task it runs in)."""

    def __init__(self, name: str, log: list[Any], done: Any, parks: dict[str, Any]) -> None:
        super().__init__()
        self.name, self.log, self.done, self.parks = name, log, done, parks
        self.next: ActorRef[Relay] | None = None

    @handler
    def link(self, nxt: ActorRef[Relay]) -> None:
        self.next = nxt

    @handler
    async def hop(self, token: Token) -> None:
        if mine.get() is None:
            mine.set(self.name)
        if token.left == token.pause_at:
            await asyncio.sleep(0)  # back in through the task: still in its own context?
        self.log.append((self.name, mine.get(), asyncio.current_task()))
        if token.left == token.crash_at:
            raise RuntimeError(f"{self.name} crashes at {token.left}")
        if token.left == token.park_at:
            self.parks[self.name].set_result(asyncio.current_task())
            await asyncio.sleep(WAIT)
        if token.left:
            assert self.next is not None
            await self.next.tell(attrs.evolve(token, left=token.left - 1))
        else:
            self.done.set_result(None)

    @handler
    async def who(self, msg: WhoServes) -> str | None:
        return mine.get()


async def ring_of(
    system: ActorSystem, names: str, log: list[Any], done: Any, parks: dict[str, Any] | None = None
) -> list[Any]:
    refs = [await system.spawn(Relay, name, log, done, parks or {}, name=name) for name in names]
    for ref, nxt in zip(refs, refs[1:] + refs[:1], strict=True):
        await ref.tell(nxt)
    return refs


async def test_a_ring_of_async_hops_is_carried_by_few_tasks_each_hop_in_its_actors_context(
    system, perf_clock
) -> None:
    hops = 60
    log: list[tuple[str, str | None, Any]] = []
    done = asyncio.get_running_loop().create_future()
    refs = await ring_of(system, "abc", log, done)
    await refs[0].tell(Token(hops, pause_at=hops // 2))
    await asyncio.wait_for(done, WAIT)
    assert [name for name, _, _ in log] == [*"abc" * 21][: hops + 1]
    # Each hop ran in a task, in its own actor's context (what it set, it sees again),
    # not in the context of the actor whose task carried it.
    assert all(seen == name and task is not None for name, seen, task in log)
    # After the first round (each actor's first async message starts a spell of its
    # own), the ring comes round to the first actor and one task carries it on.
    assert len({id(task) for _, _, task in log[3:]}) == 1
    assert [await ref.ask(WhoServes()) for ref in refs] == [*"abc"]


async def test_cancelling_the_task_of_a_carried_handler_kills_that_actor_only(
    system, perf_clock
) -> None:
    log: list[tuple[str, str | None, Any]] = []
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    parked: asyncio.Future[asyncio.Task[Any] | None] = loop.create_future()
    a, b = await ring_of(system, "ab", log, done, {"b": parked})
    await a.tell(Token(3))  # a, b, a, b: both served async last, so both are carried
    await asyncio.wait_for(done, WAIT)
    await a.tell(Token(1, park_at=0))
    task = await asyncio.wait_for(parked, WAIT)
    # b's handler runs in the task that served a's hop: a's spell carried b.
    assert task is log[-2][2] and log[-2][0] == "a"
    assert task is not None
    task.cancel()
    await eventually(lambda: not b.is_alive, timeout=WAIT)
    assert await a.ask(WhoServes(), timeout=WAIT) == "a"


async def test_a_carried_handler_that_crashes_stops_its_actor_only(system, perf_clock) -> None:
    log: list[tuple[str, str | None, Any]] = []
    done = asyncio.get_running_loop().create_future()
    a, b, c = await ring_of(system, "abc", log, done)
    await a.tell(Token(5))  # a, b, c, a, b, c: every actor's spell has run once
    await asyncio.wait_for(done, WAIT)
    await a.tell(Token(2, crash_at=1))  # a, then b (carried by a's task) crashes
    await eventually(lambda: not b.is_alive, timeout=WAIT)  # spawned: a crash stops it
    a_hop, b_hop = log[-2:]
    assert (a_hop[0], b_hop[:2]) == ("a", ("b", "b")) and b_hop[2] is a_hop[2]
    # The others go on, each in its own context; nothing was left in a task.
    assert [await ref.ask(WhoServes(), timeout=WAIT) for ref in (a, c)] == ["a", "c"]
    await eventually(lambda: a._slot.task is None and c._slot.task is None, timeout=WAIT)
