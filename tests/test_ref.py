"""ActorRef: tell, tell_nowait, ask, ask_blocking, proxy, stop, path/name/is_alive (API.md §3)."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import attrs
import pytest
from actors import (
    AskSelf,
    Boom,
    Crash,
    GetSeen,
    Hold,
    Ping,
    Record,
    StopSelf,
    Watch,
    Worker,
    park,
)

from mycelium_actors import ActorStopped, AskTimeout, MyceliumError, PinnedThread, handler
from mycelium_actors.testing import eventually, settle


@pytest.fixture
async def worker(system):
    return await system.spawn(Worker, name="alice")


# -- tell ---------------------------------------------------------------------


async def test_tell_delivers_in_order(worker) -> None:
    for i in range(5):
        await worker.tell(Record(i))
    assert await worker.ask(GetSeen()) == [0, 1, 2, 3, 4]


async def test_tell_nowait_from_a_plain_thread_wakes_the_actor(system) -> None:
    journal: list[object] = []
    ref = await system.spawn(Worker, journal)

    def from_thread() -> None:
        for i in range(100):
            ref.tell_nowait(Record(i))

    await asyncio.to_thread(from_thread)
    await eventually(lambda: len(journal) == 101)
    assert journal == ["on_start", *range(100)]


# -- ask ----------------------------------------------------------------------


async def test_ask_returns_the_handlers_reply(worker) -> None:
    assert await worker.ask(Ping()) == "pong"


async def test_ask_reraises_the_handlers_exception(worker) -> None:
    with pytest.raises(Crash, match="kaput"):
        await worker.ask(Boom("kaput"))


async def test_ask_times_out_with_a_timeout_error_and_the_message_is_still_handled(
    fake_system, clock, gate
) -> None:
    ref = await fake_system.spawn(Worker, gate=gate)
    await park(ref, gate)
    asking = asyncio.create_task(ref.ask(Record("late"), timeout=2.0))
    await settle()  # the ask starts its timer at t=0
    await clock.advance(1.5)
    assert not asking.done()
    await clock.advance(0.5)
    with pytest.raises(AskTimeout) as info:
        await asyncio.wait_for(asking, 5)
    assert isinstance(info.value, TimeoutError)
    gate.open()
    assert await ref.ask(GetSeen()) == ["late"]


async def test_asks_on_the_real_clock_each_time_out_after_their_own_timeout(system, gate) -> None:
    ref = await system.spawn(Worker, gate=gate)
    await park(ref, gate)
    patient = asyncio.create_task(ref.ask(Record("patient"), timeout=2.0))
    hasty = asyncio.create_task(ref.ask(Record("hasty"), timeout=0.1))
    with pytest.raises(AskTimeout):
        await asyncio.wait_for(hasty, 5)
    assert not patient.done()
    gate.open()
    assert await asyncio.wait_for(patient, 5) is None


async def test_ask_to_a_stopped_actor_raises_actor_stopped(worker) -> None:
    await worker.stop()
    with pytest.raises(ActorStopped):
        await worker.ask(Ping())


@pytest.mark.parametrize("ending", [StopSelf(), Boom()], ids=["context.stop", "crash"])
async def test_asks_queued_when_the_actor_stops_for_good_get_actor_stopped(
    system, gate, ending
) -> None:
    ref = await system.spawn(Worker, gate=gate)
    await park(ref, gate)
    ender = asyncio.create_task(ref.ask(ending))
    queued = asyncio.create_task(ref.ask(Ping()))
    await settle()
    gate.open()
    await asyncio.wait_for(asyncio.gather(ender, return_exceptions=True), 5)
    with pytest.raises(ActorStopped):
        await asyncio.wait_for(queued, 5)


async def test_an_ask_in_flight_when_stop_kills_the_actor_gets_actor_stopped(
    fake_system, clock, gate
) -> None:
    # The handler outlasts the actor's shutdown time, so stop() cancels it:
    # the actor stopped for good before replying.
    ref = await fake_system.spawn(Worker, gate=gate, shutdown=1.0)
    asking = asyncio.create_task(ref.ask(Hold(), timeout=None))
    await gate.wait_entered()
    stopping = asyncio.create_task(ref.stop())
    await settle()  # the stop starts its shutdown timer at t=0
    await clock.advance(1.0)
    await asyncio.wait_for(stopping, 5)
    assert not ref.is_alive
    try:
        await eventually(asking.done, timeout=2.0, message="the ask still hangs")
    finally:
        asking.cancel()
    with pytest.raises(ActorStopped):
        asking.result()


async def test_an_actor_asking_itself_gets_a_mycelium_error_at_once(worker) -> None:
    error = await worker.ask(AskSelf(), timeout=5.0)
    assert isinstance(error, MyceliumError)
    assert not isinstance(error, AskTimeout)


# -- ask_blocking -------------------------------------------------------------


async def test_ask_blocking_from_a_plain_thread_returns_the_reply(worker) -> None:
    assert await asyncio.to_thread(worker.ask_blocking, Ping()) == "pong"


async def test_ask_blocking_from_a_plain_thread_reraises_the_handlers_exception(worker) -> None:
    with pytest.raises(Crash, match="threaded"):
        await asyncio.to_thread(worker.ask_blocking, Boom("threaded"))


async def test_ask_blocking_on_the_actors_loop_is_an_error(worker) -> None:
    with pytest.raises(MyceliumError):
        worker.ask_blocking(Ping())
    assert await worker.ask(Ping()) == "pong"


# -- proxy --------------------------------------------------------------------


async def test_proxy_passes_arguments_and_returns_the_result(worker) -> None:
    assert await worker.proxy().add(2, b=3) == 5


@pytest.mark.parametrize("method", ["where", "where_async"], ids=["sync", "async"])
async def test_proxy_method_runs_inside_the_actor(worker, method) -> None:
    task, inside = await getattr(worker.proxy(), method)()
    assert task != id(asyncio.current_task())
    assert inside


async def test_proxy_call_waits_its_turn_in_the_mailbox(system, gate) -> None:
    ref = await system.spawn(Worker, gate=gate)
    await park(ref, gate)
    calling = asyncio.create_task(ref.proxy().add(1, 1))
    await settle()
    assert not calling.done()
    gate.open()
    assert await asyncio.wait_for(calling, 5) == 2


async def test_proxy_calls_time_out_after_the_proxy_timeout(fake_system, clock, gate) -> None:
    ref = await fake_system.spawn(Worker, gate=gate)
    await park(ref, gate)
    calling = asyncio.create_task(ref.proxy(timeout=1.0).add(1, 1))
    await settle()
    await clock.advance(1.0)
    with pytest.raises(AskTimeout):
        await asyncio.wait_for(calling, 5)


async def test_proxy_reraises_the_methods_exception(worker) -> None:
    with pytest.raises(Crash, match="proxy"):
        await worker.proxy().explode()


@pytest.mark.parametrize("name", ["no_such_method", "_private", "mailbox_capacity"])
async def test_proxy_unknown_attribute_is_an_attribute_error(worker, name) -> None:
    with pytest.raises(AttributeError):
        getattr(worker.proxy(), name)


# -- stop ---------------------------------------------------------------------


async def test_stop_handles_queued_messages_first(system, gate) -> None:
    journal: list[object] = []
    ref = await system.spawn(Worker, journal, gate)
    await park(ref, gate, 1, 2)
    pinging = asyncio.create_task(ref.ask(Ping()))
    await settle()
    stopping = asyncio.create_task(ref.stop())
    await settle()
    assert not stopping.done()
    gate.open()
    await asyncio.wait_for(stopping, 5)
    assert journal == ["on_start", 1, 2, "on_stop"]
    assert pinging.result() == "pong"


async def test_stop_with_shutdown_zero_cancels_at_once_without_on_stop(system, gate) -> None:
    journal: list[object] = []
    ref = await system.spawn(Worker, journal, gate, shutdown=0)
    await park(ref, gate, "queued")
    queued_ask = asyncio.create_task(ref.ask(Ping()))
    await settle()
    await asyncio.wait_for(ref.stop(), 5)
    assert not ref.is_alive
    assert journal == ["on_start"]
    with pytest.raises(ActorStopped):
        await asyncio.wait_for(queued_ask, 5)


async def test_after_stop_tells_are_dead_letters_and_asks_raise_actor_stopped(
    system, worker
) -> None:
    await worker.stop()
    before = system.dead_letters
    await worker.tell(Record(1))
    worker.tell_nowait(Record(2))
    assert system.dead_letters == before + 2
    with pytest.raises(ActorStopped):
        await worker.ask(Ping())


async def test_messages_sent_while_stopping_are_refused(system, gate) -> None:
    journal: list[object] = []
    ref = await system.spawn(Worker, journal, gate)
    await park(ref, gate)
    stopping = asyncio.create_task(ref.stop())
    await settle()
    before = system.dead_letters
    await ref.tell(Record("late"))
    assert system.dead_letters == before + 1
    with pytest.raises(ActorStopped):
        await ref.ask(Ping())
    gate.open()
    await asyncio.wait_for(stopping, 5)
    assert "late" not in journal


def _threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


@pytest.mark.parametrize("executor", [None, PinnedThread()], ids=["system loop", "pinned"])
async def test_a_stop_completes_although_its_caller_is_cancelled(system, gate, executor) -> None:
    """Issue 18, defect 3: the slot used to stay running, unwatched and on its thread."""
    watcher = await system.spawn(Worker, name="watcher")
    ref = await system.spawn(Worker, None, gate, name="w", executor=executor)
    await watcher.ask(Watch(ref))
    await park(ref, gate)
    stopping = asyncio.create_task(ref.stop())
    await eventually(lambda: ref.mailbox.closed)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    gate.open()
    await eventually(lambda: not ref.is_alive)
    assert system.lookup("/w") is None
    seen = await watcher.ask(GetSeen())
    assert [(t.ref, type(t).__name__) for t in seen] == [(ref, "Terminated")]
    await eventually(lambda: not _threads_named("mycelium:/w"))
    await asyncio.wait_for(ref.stop(), 5)  # a second stop has nothing left to do


@attrs.frozen
class Quit:
    """The handler stops its own actor through its ref, wrapped as `how` says."""

    how: str


class Quitter(Worker):
    @handler
    async def quit(self, msg: Quit) -> str:
        stop = self.context.self_ref.stop()
        if msg.how == "wait_for":
            await asyncio.wait_for(stop, 10)
        elif msg.how == "gather":
            await asyncio.gather(stop)
        else:
            await stop
        return "returned"


@pytest.mark.parametrize("how", ["direct", "wait_for", "gather"])
async def test_a_handler_stopping_its_own_actor_through_its_ref_returns_at_once(
    system, how
) -> None:
    """Issue 18, defect 4: through gather or wait_for it waited for itself."""
    watcher = await system.spawn(Worker, name="watcher")
    ref = await system.spawn(Quitter, shutdown=10)
    await watcher.ask(Watch(ref))
    assert await asyncio.wait_for(ref.ask(Quit(how), timeout=None), 5) == "returned"
    await eventually(lambda: not ref.is_alive)
    seen = await watcher.ask(GetSeen())
    assert [(t.ref, t.reason) for t in seen] == [(ref, "shutdown")]


async def test_ref_names_the_actor_and_tracks_whether_it_is_alive(worker) -> None:
    assert (worker.path, worker.name, worker.is_alive) == ("/alice", "alice", True)
    await worker.stop()
    assert worker.is_alive is False


@pytest.mark.parametrize(
    ("timeout", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("1", TypeError),
        (True, TypeError),
    ],
)
@pytest.mark.parametrize("call", ["ask", "ask_blocking", "proxy"])
async def test_a_bad_timeout_is_refused_before_anything_is_sent(worker, timeout, error, call):
    """Defect 10: a positive finite number of seconds or None (API.md section 3)."""
    with pytest.raises(error, match="timeout"):
        if call == "ask":
            await worker.ask(Record("never"), timeout=timeout)
        elif call == "ask_blocking":
            await asyncio.to_thread(worker.ask_blocking, Record("never"), timeout)
        else:
            worker.proxy(timeout=timeout)
    assert await worker.ask(GetSeen()) == []


async def test_an_idle_actor_keeps_no_reference_to_its_last_message(worker) -> None:
    """Defect 9: a large last message must not stay alive until the next one."""
    message = Record("big")
    gone = weakref.ref(message)
    assert await worker.ask(message) is None
    del message
    await settle()
    gc.collect()
    assert gone() is None
