"""supervision.md section 2, cases 45-48 and 50: mailbox, asks and watching."""

from __future__ import annotations

import asyncio

import pytest

from mycelium_actors import ActorStopped, AskTimeout
from mycelium_actors.testing import events_named, settle

from .helpers import Stopwatch, node, start, wait_lines, wait_restarted
from .workers import Crash, Ping, Record, Watch, Watcher


async def test_ask_that_crashes_gets_the_original_exception(system, journal, w, sup):
    """Case 45 [ask that crashes the actor]: ask(Crash(), timeout=3) raises the original
    RuntimeError within 0.5 s, not AskTimeout; the actor restarts and answers the next ask."""
    refs = await start(system, sup(w("a")))
    with Stopwatch() as sw:
        with pytest.raises(RuntimeError) as info:
            await refs["a"].ask(Crash(), timeout=3)
    assert sw.elapsed < 0.5
    assert not isinstance(info.value, AskTimeout)
    assert info.value is journal.errors[0]
    await wait_restarted(system, "/root/a", 1)
    assert await refs["a"].ask(Ping()) == ("pong", "a")


@pytest.mark.parametrize("on_restart_mailbox", ["keep", "drop"])
async def test_restart_keeps_or_drops_queued_asks(system, journal, w, sup, on_restart_mailbox):
    """Case 46 [unhandled message retention during restart]: tell_nowait(Crash()) then 5
    queued asks: the new instance answers all 5 in order, with start:a x2. With [EXT]
    on_restart_mailbox="drop" the 5 fail with ActorStopped instead, and a is restarted."""
    refs = await start(system, sup(w("a", on_restart_mailbox=on_restart_mailbox)))
    a = refs["a"]
    gate = asyncio.Event()
    a.tell_nowait(Crash(gate))
    await wait_lines(journal, "hold:a", 1)
    asks = [asyncio.ensure_future(a.ask(Record(i), timeout=5)) for i in range(5)]
    await settle()
    gate.set()

    ends = await asyncio.wait_for(asyncio.gather(*asks, return_exceptions=True), 5)
    await wait_lines(journal, "start:a", 2)
    if on_restart_mailbox == "keep":
        assert ends == [0, 1, 2, 3, 4]
        assert journal.got("a") == [0, 1, 2, 3, 4]
        assert journal.lines.index("got:a:0") > journal.lines.index("start:a", 1)
    else:
        assert [type(end) for end in ends] == [ActorStopped] * 5
        assert journal.got("a") == []
    assert journal.count("start:a") == 2
    assert await a.ask(Record(9), timeout=5) == 9


async def test_queued_asks_fail_fast_when_the_actor_stops_for_good(events, system, journal, w, sup):
    """Case 47 [asks when the actor stops for good]: temporary x gets ask(Crash) then 5
    queued asks: the first raises the original exception, the 5 fail with ActorStopped
    within 0.2 s (asserted with a 5x margin); later asks fail at once, tells are dead."""
    refs = await start(system, sup(w("x", restart="temporary")))
    x = refs["x"]
    gate = asyncio.Event()
    first = asyncio.ensure_future(x.ask(Crash(gate), timeout=5))
    await wait_lines(journal, "hold:x", 1)
    queued = [asyncio.ensure_future(x.ask(Record(i), timeout=5)) for i in range(5)]
    await settle()
    assert not any(f.done() for f in queued)

    with Stopwatch() as sw:
        gate.set()
        _, pending = await asyncio.wait([first, *queued], timeout=5)
    assert not pending
    assert sw.elapsed < 1.0
    assert first.exception() is journal.errors[0]
    for fut in queued:
        assert isinstance(fut.exception(), ActorStopped)
    assert journal.got("x") == []

    with Stopwatch() as sw:
        with pytest.raises(ActorStopped):
            await x.ask(Ping(), timeout=5)
    assert sw.elapsed < 0.1
    dead_before = system.dead_letters
    await x.tell(Record(9))
    assert system.dead_letters == dead_before + 1
    assert events_named(events, "dead_letter", path="/root/x")
    assert journal.count("start:x") == 1


async def test_restart_with_a_full_blocking_mailbox(system, journal, w, sup):
    """Case 48 [restart with a full mailbox]: capacity 4, "block"; the handler is held on a
    gate and then crashes; 4 queued, 2 tellers blocked; after the gate opens the restart
    completes, the new instance handles the 6 in FIFO order, both tellers return, all
    within 1 s."""
    refs = await start(system, sup(w("a", mailbox_capacity=4, mailbox_overflow="block")))
    a = refs["a"]
    gate = asyncio.Event()
    await a.tell(Crash(gate))
    await wait_lines(journal, "hold:a", 1)
    for i in (1, 2, 3, 4):
        await a.tell(Record(i))
    t5 = asyncio.ensure_future(a.tell(Record(5)))
    await settle()
    t6 = asyncio.ensure_future(a.tell(Record(6)))
    await settle()
    assert not t5.done() and not t6.done(), "the mailbox did not block the tellers"

    with Stopwatch() as sw:
        gate.set()
        await asyncio.wait_for(asyncio.gather(t5, t6), 5)
        await wait_lines(journal, "got:a:6", 1, timeout=5)
    assert sw.elapsed < 1.0
    await wait_restarted(system, "/root/a", 1)
    assert journal.got("a") == [1, 2, 3, 4, 5, 6]
    assert journal.count("start:a") == 2
    assert journal.lines.index("got:a:1") > journal.lines.index("start:a", 1)


async def test_watch_sees_only_the_final_stop(system, journal, w, sup):
    """Case 50 [watch, death-watch rule]: a watch on a permanent child gets no Terminated
    while it restarts, exactly one after terminate_child, and at once for a stopped ref."""
    refs = await start(system, sup(w("a")))
    a = refs["a"]
    watcher = await system.spawn(Watcher, journal=journal, name="watcher")
    await watcher.ask(Watch(a))

    await a.tell(Crash())
    await wait_restarted(system, "/root/a", 1)
    assert await watcher.ask(Ping()) == "pong"
    assert journal.count("terminated:/root/a") == 0

    await system.terminate_child("/root/a")
    await wait_lines(journal, "terminated:/root/a", 1)
    assert node(system, "/root/a").status == "stopped"
    await a.tell(Crash())  # a dead letter now: no second notice
    assert await watcher.ask(Ping()) == "pong"
    assert journal.count("terminated:/root/a") == 1

    late = await system.spawn(Watcher, journal=journal, name="late")
    await late.ask(Watch(a))
    assert await late.ask(Ping()) == "pong"  # handled after anything the watch delivered
    assert journal.count("terminated:/root/a") == 2
