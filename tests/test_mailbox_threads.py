"""Delivery between threads (docs/design.md, "Mailboxes").

Most mailboxes here are owned by an event loop in its own thread (the
"owner"), as a pinned actor's is; the test loop plays a sender on another
thread. The owner's side (pop, grant, finish) runs on the owner loop through
`on_owner`, so every step is ordered and no test depends on timing. Then
`resume` (a task woken in the same loop pass), reply outboxes (one wake-up per
burst), and a whole actor stopped under blocked senders on several threads.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import logging
import random
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from mycelium_actors import Actor, ActorStopped, AskTimeout, PinnedThread, handler
from mycelium_actors.kernel.clock import Clock
from mycelium_actors.kernel.mailbox import Mailbox
from mycelium_actors.kernel.replies import outbox_of, resume
from mycelium_actors.testing import eventually

CLOCK = Clock()


@pytest.fixture
def owner() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in its own thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="owner")
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.fixture
def dead() -> list[Any]:
    return []


@pytest.fixture
def mailbox(owner: asyncio.AbstractEventLoop, dead: list[Any]) -> Mailbox:
    """Capacity 1, "block", owned by `owner`, holding the message "first"."""
    sink = SimpleNamespace(dead_letter=lambda path, message, reason: dead.append((message, reason)))
    mb = Mailbox("/m", 1, "block", sink)
    ready = threading.Event()

    def bind() -> None:
        mb.bind(owner, threading.get_ident())
        ready.set()

    owner.call_soon_threadsafe(bind)
    assert ready.wait(5)
    assert mb.offer(("first", None))
    return mb


async def on_owner(owner: asyncio.AbstractEventLoop, fn: Callable[[], Any]) -> Any:
    """Run `fn()` on the owner loop and return its result."""

    async def call() -> Any:
        return fn()

    return await asyncio.wait_for(
        asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call(), owner)), 5
    )


def pop(mb: Mailbox) -> Any:
    """What the consumer does: take the oldest message and hand freed space on."""
    item = mb.take()
    assert item is not None
    return item[0]


def messages(mb: Mailbox) -> list[Any]:
    return [message for message, _ in mb.queue]


async def blocked_tell(
    mb: Mailbox, message: Any, timeout: float | None = None
) -> asyncio.Task[bool]:
    """Start a tell that must wait for space; return once it is queued."""
    before = mb.blocked
    task = asyncio.create_task(mb.put((message, None), CLOCK, timeout))
    await eventually(lambda: mb.blocked == before + 1)
    return task


async def test_senders_on_another_thread_enter_in_the_order_they_blocked(owner, mailbox) -> None:
    second, third = await blocked_tell(mailbox, "second"), await blocked_tell(mailbox, "third")
    assert await on_owner(owner, lambda: pop(mailbox)) == "first"
    assert await asyncio.wait_for(second, 5) is True
    assert not third.done() and messages(mailbox) == ["second"]
    assert await on_owner(owner, lambda: pop(mailbox)) == "second"
    assert await asyncio.wait_for(third, 5) is True
    assert messages(mailbox) == ["third"]


@pytest.mark.parametrize("ending", ["cancelled", "timed_out"])
async def test_a_sender_that_gives_up_before_its_turn_enqueues_nothing(
    owner, mailbox, ending
) -> None:
    quitter = await blocked_tell(
        mailbox, "quitter", timeout=0.05 if ending == "timed_out" else None
    )
    kept = await blocked_tell(mailbox, "kept")
    if ending == "cancelled":
        quitter.cancel()
    with pytest.raises(asyncio.CancelledError if ending == "cancelled" else AskTimeout):
        await asyncio.wait_for(quitter, 5)
    await on_owner(owner, lambda: pop(mailbox))
    assert await asyncio.wait_for(kept, 5) is True
    assert messages(mailbox) == ["kept"] and mailbox.blocked == 0


async def test_a_plain_thread_waiting_for_room_gets_in_or_gives_up_enqueuing_nothing(
    owner, mailbox
) -> None:
    """`put_blocking` (ask_blocking into a full "block" mailbox): the handoff of
    `put`, waited on by a thread with no loop."""
    with pytest.raises(AskTimeout):
        await asyncio.to_thread(mailbox.put_blocking, ("quitter", None), 0.05)
    assert mailbox.blocked == 0 and messages(mailbox) == ["first"]
    kept = asyncio.ensure_future(asyncio.to_thread(mailbox.put_blocking, ("kept", None), None))
    await eventually(lambda: mailbox.blocked == 1)
    assert await on_owner(owner, lambda: pop(mailbox)) == "first"
    assert await asyncio.wait_for(kept, 5) is True
    assert messages(mailbox) == ["kept"]


@pytest.mark.parametrize("send", ["tell", "ask"])
async def test_a_sender_waiting_when_the_mailbox_finishes_is_rejected(
    owner, mailbox, dead, send
) -> None:
    reply = asyncio.get_running_loop().create_future() if send == "ask" else None
    task = asyncio.create_task(mailbox.put(("late", reply), CLOCK))
    await eventually(lambda: mailbox.blocked == 1)
    await on_owner(owner, mailbox.finish)
    assert await asyncio.wait_for(task, 5) is False
    if reply is None:
        assert sorted(dead) == [("first", "stopped"), ("late", "stopped")]
    else:
        with pytest.raises(ActorStopped):
            await asyncio.wait_for(reply, 5)


async def test_a_message_appended_after_the_final_sweep_is_still_rejected(
    owner, mailbox, dead
) -> None:
    """A sender that checked `closed` just before `finish` appends after the sweep."""
    await on_owner(owner, mailbox.finish)
    reply = asyncio.get_running_loop().create_future()
    mailbox._append_foreign(("raced", reply))
    with pytest.raises(ActorStopped):
        await asyncio.wait_for(reply, 5)
    assert messages(mailbox) == [] and dead == [("first", "stopped")]


async def test_a_sender_that_saw_a_full_mailbox_just_before_it_emptied_gets_in(
    owner, mailbox, monkeypatch
) -> None:
    """The consumer popped and parked between the sender's check and its queueing:
    nobody would grant it, so the sender asks the owner loop to."""
    await on_owner(owner, lambda: pop(mailbox))
    monkeypatch.setattr(Mailbox, "offer", lambda self, item: False)  # the stale check
    assert await asyncio.wait_for(mailbox.put(("second", None), CLOCK), 5) is True
    assert messages(mailbox) == ["second"]


async def test_many_threads_telling_through_a_tiny_mailbox_lose_and_reorder_nothing(
    owner, mailbox
) -> None:
    senders, each = 4, 200
    got: list[Any] = []
    done = asyncio.Event()
    test_loop = asyncio.get_running_loop()

    async def consume() -> None:
        while len(got) < 1 + senders * each:
            if mailbox.queue:
                got.append(pop(mailbox))
            else:
                waiter = mailbox.park()
                if waiter is not None:
                    await waiter
        test_loop.call_soon_threadsafe(done.set)

    asyncio.run_coroutine_threadsafe(consume(), owner)

    def send(sender: int) -> None:
        async def tells() -> None:
            for i in range(each):
                await mailbox.put(((sender, i), None), CLOCK)

        asyncio.run(tells())

    await asyncio.gather(*(asyncio.to_thread(send, s) for s in range(senders)))
    await asyncio.wait_for(done.wait(), 10)
    assert got[0] == "first"
    for sender in range(senders):
        assert [i for s, i in got[1:] if s == sender] == list(range(each))


# -- resume: the waiting task's step runs in the same loop pass -----------------

WHERE = contextvars.ContextVar("where", default="callback")


async def waiting_task(fut: asyncio.Future[int]) -> asyncio.Task[tuple[int, str]]:
    """A task that sets a context variable, then waits for `fut`."""

    async def wait() -> tuple[int, str]:
        WHERE.set("task")
        return await fut, WHERE.get()

    task = asyncio.create_task(wait())
    await asyncio.sleep(0)
    return task


@pytest.mark.parametrize(("from_callback", "done_at_once"), [(True, True), (False, False)])
async def test_resume_runs_the_waiter_at_once_only_from_a_plain_callback(
    from_callback, done_at_once
) -> None:
    fut = asyncio.get_running_loop().create_future()
    task = await waiting_task(fut)
    done_right_after: list[bool] = []

    def complete() -> None:
        resume(fut, 7)
        done_right_after.append(task.done())

    if from_callback:
        asyncio.get_running_loop().call_soon(complete)
    else:
        complete()  # from inside a task (this test's): the ordinary path
    assert await asyncio.wait_for(task, 5) == (7, "task")  # in the task's own context
    assert done_right_after == [done_at_once]


async def test_resume_with_several_waiters_wakes_them_all() -> None:
    fut = asyncio.get_running_loop().create_future()
    tasks = [await waiting_task(fut) for _ in range(2)]
    asyncio.get_running_loop().call_soon(resume, fut, None, KeyError("gone"))
    for task in tasks:
        with pytest.raises(KeyError):
            await asyncio.wait_for(task, 5)


async def test_resume_leaves_a_plain_done_callback_to_the_loop() -> None:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    called: list[int] = []
    fut.add_done_callback(lambda f: called.append(f.result()))
    loop.call_soon(resume, fut, 3)
    loop.call_soon(lambda: called.append(-1))  # runs in the same pass as resume()
    await eventually(lambda: len(called) == 2)
    assert called == [-1, 3]  # the done-callback waited for the next pass, as always


# -- outboxes: replies to another loop, one wake-up per burst -------------------


async def test_a_burst_of_replies_from_another_thread_wakes_the_asker_loop_once(
    owner, monkeypatch
) -> None:
    loop = asyncio.get_running_loop()
    wakeups: list[object] = []
    schedule = loop.call_soon_threadsafe
    monkeypatch.setattr(loop, "call_soon_threadsafe", lambda *a: wakeups.append(a) or schedule(*a))
    futures = [loop.create_future() for _ in range(100)]
    posted = threading.Event()

    def reply_all() -> None:
        for i, fut in enumerate(futures):
            outbox_of(loop).post(fut, i, None)
        posted.set()

    owner.call_soon_threadsafe(reply_all)
    assert posted.wait(5)  # this loop is blocked meanwhile: every reply lands in one burst
    assert await asyncio.wait_for(asyncio.gather(*futures), 5) == list(range(100))
    assert len(wakeups) == 1


async def test_replies_to_a_closed_loop_are_dropped_without_error(owner) -> None:
    closed = asyncio.new_event_loop()
    fut = closed.create_future()
    closed.close()
    await on_owner(owner, lambda: outbox_of(closed).post(fut, 1, None))
    assert not fut.done()


# -- an actor stopping while senders on several threads are blocked ------------


class Tally(Actor):
    """Records every int it handles; a tiny "block" mailbox keeps senders waiting."""

    mailbox_capacity = 2

    def __init__(self, seen: list[int]) -> None:
        super().__init__()
        self.seen = seen

    @handler
    def record(self, msg: int) -> None:
        self.seen.append(msg)


@pytest.mark.parametrize("executor", [None, PinnedThread()], ids=["system_loop", "pinned"])
async def test_stopping_under_blocked_senders_on_many_threads_loses_and_repeats_nothing(
    system, executor
) -> None:
    """Each message is handled once or becomes a dead letter once; no sender hangs."""
    senders, each = 3, 300
    seen: list[int] = []
    ref = await system.spawn(Tally, seen, executor=executor)
    before = system.dead_letters

    def send(sender: int) -> None:
        async def tells() -> None:
            for i in range(each):
                await ref.tell(sender * each + i)

        asyncio.run(tells())

    sending = asyncio.gather(*(asyncio.to_thread(send, s) for s in range(senders)))
    await eventually(lambda: len(seen) >= each)  # well under way, senders blocking
    await ref.stop()
    await asyncio.wait_for(sending, 10)
    assert len(set(seen)) == len(seen)
    assert len(seen) + system.dead_letters - before == senders * each


class Doubler(Actor):
    """Doubles ints; every 7th takes a loop pass longer, every 97th raises."""

    mailbox_capacity = 4

    @handler
    async def double(self, msg: int) -> int:
        if msg % 7 == 0:
            await asyncio.sleep(0.001)
        if msg % 97 == 0:
            raise ValueError(msg)
        return msg * 2


ASK_ENDINGS = {int, ValueError, AskTimeout, ActorStopped, asyncio.CancelledError}


@pytest.mark.parametrize("seed", range(3))
async def test_asks_from_many_threads_racing_timeouts_cancels_and_a_stop_all_end_cleanly(
    system, caplog, seed
) -> None:
    """Each ask ends in a reply, the handler's error, a timeout, ActorStopped or its
    own cancellation; no ask hangs and no failed reply is left unread."""
    rnd = random.Random(seed)
    ref = await system.spawn(Doubler, executor=PinnedThread())

    def client(first: int) -> list[type]:
        async def asks() -> list[type]:
            tasks = []
            for i in range(first, first + 300):
                timeout = rnd.choice([0.005, 0.05, 1.0])
                tasks.append(asyncio.create_task(ref.ask(i, timeout=timeout)))
                if i % 10 == 0:
                    await asyncio.sleep(0)
                if i % 50 == 25:
                    tasks[-2].cancel()
            ends = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
            return [type(end) for end in ends]

        return asyncio.run(asks())

    async def stop_soon() -> list[type]:
        await asyncio.sleep(rnd.uniform(0.01, 0.2))
        await ref.stop()
        return []

    ends = await asyncio.wait_for(
        asyncio.gather(stop_soon(), *(asyncio.to_thread(client, k * 1000) for k in range(3))), 20
    )
    gc.collect()  # unread failed futures complain when they are collected
    assert {end for each in ends for end in each} <= ASK_ENDINGS
    assert sum(map(len, ends)) == 900
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "asyncio"]
