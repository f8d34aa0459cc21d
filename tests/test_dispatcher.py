"""The per-loop dispatcher: idle actors have no task, handlers still run as tasks
where it matters, and nothing visible changes (order, stops, restarts, fairness)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import attrs
import pytest
from actors import Crash, Record, StopSelf, Worker

from mycelium_actors import (
    Actor,
    ActorRef,
    ActorStopped,
    ActorSystem,
    Child,
    PinnedThread,
    Supervisor,
    handler,
)
from mycelium_actors.testing import eventually

WAIT = 30.0  # generous: the machine may be loaded; these bound hangs, not speed

# -- messages and actors ----------------------------------------------------


@attrs.frozen
class Timed:
    """Sleeps past an `asyncio.timeout()` at the top of the handler."""


@attrs.frozen
class Grouped:
    """Runs two tasks in a `TaskGroup` at the top of the handler."""


@attrs.frozen
class CurrentTask:
    """Replies with the task that runs the (async) handler."""


@attrs.frozen
class SuspendThenCrash:
    """Suspends once, then raises `Crash`."""


@attrs.frozen
class StopMyself:
    """An async handler that stops its own actor through its ref."""


@attrs.frozen
class Note:
    """Appends (incarnation, value) to the shared journal; replies `value`."""

    value: int


@attrs.frozen
class Fail:
    """Raises `Crash` in a sync handler."""


@attrs.frozen
class Flooded:
    value: int


class Tasky(Actor):
    """Async handlers that need a task of their own."""

    def __init__(self, journal: list[Any] | None = None) -> None:
        super().__init__()
        self.journal = journal if journal is not None else []

    async def on_start(self) -> None:
        self.journal.append("start")

    @handler
    async def timed(self, msg: Timed) -> str:
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(WAIT)
        except TimeoutError:
            return "timed out"
        return "slept"

    @handler
    async def grouped(self, msg: Grouped) -> list[int]:
        async def twice(n: int) -> int:
            await asyncio.sleep(0)
            return 2 * n

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(twice(n)) for n in (1, 2)]
        return [task.result() for task in tasks]

    @handler
    async def current(self, msg: CurrentTask) -> asyncio.Task[Any] | None:
        return asyncio.current_task()

    @handler
    async def suspend_then_crash(self, msg: SuspendThenCrash) -> None:
        await asyncio.sleep(0)
        raise Crash("after a suspension")

    @handler
    async def stop_myself(self, msg: StopMyself) -> str:
        await self.context.self_ref.stop()
        return "stopping"


class Noter(Actor):
    """Journals (incarnation id, value) per `Note`, sync or async by class attribute."""

    def __init__(self, journal: list[tuple[int, int]]) -> None:
        super().__init__()
        self.journal = journal

    @handler
    def note(self, msg: Note) -> int:
        self.journal.append((id(self), msg.value))
        return msg.value

    @handler
    def fail(self, msg: Fail) -> None:
        raise Crash("fail")


class AsyncNoter(Noter):
    @handler
    async def note(self, msg: Note) -> int:
        self.journal.append((id(self), msg.value))
        return msg.value


class Sink(Actor):
    """Counts `Flooded` messages per sender value (sync, or async with no suspension)."""

    def __init__(self, got: list[int]) -> None:
        super().__init__()
        self.got = got

    @handler
    def flooded(self, msg: Flooded) -> None:
        self.got.append(msg.value)


class AsyncSink(Sink):
    @handler
    async def flooded(self, msg: Flooded) -> None:
        self.got.append(msg.value)


class Peek(Actor):
    """Replies with how many messages the `got` list held when the ask was handled."""

    def __init__(self, got: list[int]) -> None:
        super().__init__()
        self.got = got

    @handler
    def peek(self, msg: int) -> int:
        return len(self.got)


NOTERS = pytest.mark.parametrize("noter", [Noter, AsyncNoter], ids=["sync", "async"])


async def supervised(system: ActorSystem, *children: Child) -> list[ActorRef[Any]]:
    await system.start(Supervisor("root", max_restarts=100, within=60.0, children=list(children)))
    return [system.lookup(f"/root/{child.name}") for child in children]  # type: ignore[misc]


def tasks_now() -> int:
    return len(asyncio.all_tasks())


# -- handlers still run as tasks where it matters ------------------------------


@pytest.mark.parametrize(
    ("message", "reply"),
    [(Timed(), "timed out"), (Grouped(), [2, 4])],
    ids=["timeout", "taskgroup"],
)
async def test_timeout_and_taskgroup_work_at_the_top_of_a_handler(system, message, reply) -> None:
    ref = await system.spawn(Tasky)
    assert await ref.ask(message, timeout=WAIT) == reply


async def test_an_async_handler_runs_in_a_task_of_its_own(system) -> None:
    ref = await system.spawn(Tasky)
    task = await ref.ask(CurrentTask())
    assert isinstance(task, asyncio.Task)
    assert task is not asyncio.current_task()


async def test_an_async_handler_that_crashes_after_suspending_is_restarted(system) -> None:
    journal: list[Any] = []
    (ref,) = await supervised(system, Child(Tasky, journal, name="t"))
    with pytest.raises(Crash, match="after a suspension"):
        await ref.ask(SuspendThenCrash(), timeout=WAIT)
    await eventually(lambda: journal == ["start", "start"], WAIT)
    assert isinstance(await ref.ask(CurrentTask(), timeout=WAIT), asyncio.Task)


@pytest.mark.parametrize("how", ["context_stop", "ref_stop"])
async def test_a_handler_can_stop_its_own_actor(system, how) -> None:
    ref = await system.spawn(Worker if how == "context_stop" else Tasky)
    assert await ref.ask(StopSelf() if how == "context_stop" else StopMyself()) == "stopping"
    await eventually(lambda: not ref.is_alive, WAIT)
    with pytest.raises(ActorStopped):
        await ref.ask(Record(1), timeout=WAIT)


# -- stops and restarts while an actor waits on the ready queue ----------------


def burst(ref: ActorRef[Any], values: range) -> list[asyncio.Task[Any]]:
    """Queue an ask per value without yielding: the actor is on the ready queue after."""
    return [asyncio.ensure_future(ref.ask(Note(v), timeout=WAIT)) for v in values]


async def outcomes(asks: list[asyncio.Task[Any]]) -> list[Any]:
    done = await asyncio.wait_for(asyncio.gather(*asks, return_exceptions=True), WAIT)
    return list(done)


@NOTERS
async def test_a_graceful_stop_of_a_ready_actor_answers_what_was_queued(system, noter) -> None:
    journal: list[tuple[int, int]] = []
    ref = await system.spawn(noter, journal)
    asks = burst(ref, range(10))
    await asyncio.sleep(0)  # the asks are in; the actor waits for its turn
    await ref.stop()
    assert await outcomes(asks) == list(range(10))
    assert [value for _, value in journal] == list(range(10))


@NOTERS
async def test_a_kill_of_a_ready_actor_fails_what_was_queued(system, noter) -> None:
    journal: list[tuple[int, int]] = []
    ref = await system.spawn(noter, journal, shutdown=0)
    asks = burst(ref, range(10))
    await asyncio.sleep(0)
    await ref.stop()
    results = await outcomes(asks)
    handled = [value for _, value in journal]
    assert len(handled) == len(set(handled))  # none twice
    for value, result in enumerate(results):
        assert result == value if value in handled else isinstance(result, ActorStopped)
    assert not ref.is_alive


@NOTERS
async def test_a_restart_while_ready_hands_the_rest_to_the_new_incarnation(system, noter) -> None:
    journal: list[tuple[int, int]] = []
    (ref,) = await supervised(system, Child(noter, journal, name="n"))
    first = burst(ref, range(5))
    await asyncio.sleep(0)  # the asks are in, the actor has not had its turn yet
    ref.tell_nowait(Fail())  # crashes the first incarnation mid-queue
    rest = burst(ref, range(5, 10))
    assert await outcomes(first + rest) == list(range(10))
    assert [value for _, value in journal] == list(range(10))  # each once, in order
    incarnations = [incarnation for incarnation, _ in journal]
    assert len(set(incarnations[:5])) == len(set(incarnations[5:])) == 1
    assert incarnations[0] != incarnations[5]  # the dead one handled nothing after its crash


async def test_shutdown_with_actors_on_the_ready_queue_leaves_nothing_hanging() -> None:
    journal: list[tuple[int, int]] = []
    async with ActorSystem("ready-at-exit", kill_grace=0.5) as system:
        refs = [await system.spawn(noter, journal) for noter in [Noter, AsyncNoter] * 20]
        asks = [ask for ref in refs for ask in burst(ref, range(5))]
        await asyncio.sleep(0)  # the asks are in, the actors wait for their turn
    results = await outcomes(asks)
    assert all(
        result == i % 5 or isinstance(result, ActorStopped) for i, result in enumerate(results)
    )
    assert len(journal) == len(set(journal))


# -- many senders, many actors -------------------------------------------------


@pytest.mark.parametrize("executor", [None, PinnedThread()], ids=["system_loop", "pinned"])
async def test_a_flood_from_several_threads_arrives_whole_and_fifo_per_sender(
    system, executor
) -> None:
    senders, each = 4, 5_000
    got: list[int] = []
    ref = await system.spawn(
        Sink, got, executor=executor, mailbox_capacity=senders * each, mailbox_overflow="fail"
    )

    def send(sender: int) -> None:
        for i in range(each):
            ref.tell_nowait(Flooded(sender * each + i))

    threads = [threading.Thread(target=send, args=(s,)) for s in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        await asyncio.to_thread(thread.join, WAIT)
    await eventually(lambda: len(got) == senders * each, WAIT)
    for sender in range(senders):
        mine = [v for v in got if v // each == sender]
        assert mine == list(range(sender * each, (sender + 1) * each))


async def test_ten_thousand_actors_each_handle_one_message_and_hold_no_task(system) -> None:
    n = 10_000  # a task each would be 10,000 tasks; perf's `memory` runs 100k actors
    got: list[int] = []
    refs = [await system.spawn(Sink, got) for _ in range(n)]
    for i, ref in enumerate(refs):
        ref.tell_nowait(Flooded(i))
    await eventually(lambda: len(got) == n, WAIT)
    assert sorted(got) == list(range(n))
    assert tasks_now() < 50  # idle actors hold no task


# -- fairness -------------------------------------------------------------------


@pytest.mark.parametrize("sink", [Sink, AsyncSink], ids=["sync", "async"])
async def test_a_flooded_actor_starves_neither_another_actor_nor_a_loop_timer(system, sink) -> None:
    total = 50_000  # many 2 ms turns (dispatcher.BUDGET) of work, even on a fast machine
    got: list[int] = []
    flooded = await system.spawn(sink, got, mailbox_capacity=total, mailbox_overflow="fail")
    peek = await system.spawn(Peek, got)
    loop = asyncio.get_running_loop()
    timer_saw: asyncio.Future[int] = loop.create_future()
    for i in range(total):
        flooded.tell_nowait(Flooded(i))
    asked = asyncio.ensure_future(peek.ask(0, timeout=WAIT))
    loop.call_later(0, lambda: timer_saw.set_result(len(got)))
    seen_by_ask = await asked
    seen_by_timer = await asyncio.wait_for(timer_saw, WAIT)
    assert seen_by_ask < total  # answered while the flood was still being served
    assert seen_by_timer < total  # the loop ran its timer in the middle of the flood
    await eventually(lambda: len(got) == total, WAIT)
    assert got == list(range(total))
