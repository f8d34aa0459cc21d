"""supervision.md section 2, cases 27-33: shutdown order, timeouts and races."""

from __future__ import annotations

import asyncio

import pytest

from mycelium_actors import ActorStopped, Backoff, Supervisor
from mycelium_actors.testing import events_named, eventually

from .helpers import Stopwatch, start, stop_requested, wait_lines
from .workers import Crash, Hold, Ping, Record, StopSelf


async def test_outside_stop_drains_then_exit_stops_in_reverse(events, system, journal, w, sup):
    """Case 27 [order + drain]: 3 tells queued on temporary c, then `await c.stop()`: all 3
    handled before stop:c; a later tell is a dead_letter, an ask gets ActorStopped; the
    system exit then stops b, then a."""
    refs = await start(system, sup(w("a"), w("b"), w("c", restart="temporary")))
    c = refs["c"]
    gate = asyncio.Event()
    await c.tell(Hold(gate))
    await wait_lines(journal, "hold:c", 1)
    for i in (1, 2, 3):
        await c.tell(Record(i))

    stopping = asyncio.ensure_future(c.stop())
    await eventually(lambda: stop_requested(c), message="the stop never reached c")
    gate.set()
    await asyncio.wait_for(stopping, 5)

    assert journal.got("c") == [1, 2, 3]
    assert journal.lines.index("got:c:3") < journal.lines.index("stop:c")
    assert not c.is_alive

    dead_before = system.dead_letters
    await c.tell(Record(4))
    assert system.dead_letters == dead_before + 1
    assert events_named(events, "dead_letter", path="/root/c")
    with pytest.raises(ActorStopped):
        await c.ask(Ping(), timeout=1)
    assert journal.got("c") == [1, 2, 3]

    mark = journal.mark()
    await system.shutdown()
    assert journal.lifecycle(mark) == ["stop:b", "stop:a"]


async def test_shutdown_timeout_kills_a_stuck_child(events, system, journal, w, sup):
    """Case 28 [sup_stop_timeout]: [s(shutdown=1.0, on_stop sleeps 200 s), b]: b stops
    cleanly, s is cancelled after about 1 s with reason killed, the exit takes under 2 s."""
    await start(system, sup(w("s", shutdown=1.0, stop_delay=200), w("b")))
    with Stopwatch() as sw:
        await asyncio.wait_for(system.shutdown(), 10)

    assert 0.95 <= sw.elapsed < 2.0
    assert journal.lifecycle()[-2:] == ["stop:b", "stop:s"]
    assert journal.count("stop-done:s") == 0
    assert [e["reason"] for e in events_named(events, "actor.stopped", path="/root/b")] == [
        "shutdown"
    ]
    assert [e["reason"] for e in events_named(events, "actor.stopped", path="/root/s")] == [
        "killed"
    ]


async def test_shutdown_zero_cancels_without_on_stop(events, system, journal, w, sup):
    """Case 29 [sup_stop_brutal_kill]: shutdown=0 cancels at once and runs no on_stop; the
    sibling with shutdown=1.0 gets a normal on_stop."""
    await start(system, sup(w("n", shutdown=1.0), w("k", shutdown=0, stop_delay=5)))
    with Stopwatch() as sw:
        await asyncio.wait_for(system.shutdown(), 10)

    assert journal.count("stop:k") == 0
    assert journal.count("stop:n") == 1
    assert [e["reason"] for e in events_named(events, "actor.stopped", path="/root/k")] == [
        "killed"
    ]
    assert [e["reason"] for e in events_named(events, "actor.stopped", path="/root/n")] == [
        "shutdown"
    ]
    assert sw.elapsed < 1.0


async def test_shutdown_none_waits_for_on_stop(system, journal, w, sup):
    """Case 30 [sup_stop_infinity]: shutdown=None with a 1.5 s on_stop: the exit takes at
    least 1.5 s and on_stop completes. A Supervisor child defaults to None."""
    assert Supervisor("inner").shutdown is None
    inner = sup(w("x", shutdown=None, stop_delay=1.5), name="inner")
    assert inner.shutdown is None
    await start(system, sup(inner))
    with Stopwatch() as sw:
        await asyncio.wait_for(system.shutdown(), 10)

    assert sw.elapsed >= 1.5
    assert journal.since(journal.lines.index("stop:x")) == ["stop:x", "stop-done:x"]


async def test_child_that_ignores_the_kill_is_abandoned(events, system, journal, w, sup):
    """Case 31 [child ignores the stop]: on_stop swallows CancelledError, shutdown=0.2: after
    0.2 s plus kill_grace (0.5 s here) the supervisor logs the failed kill and finishes."""
    await start(system, sup(w("x", shutdown=0.2, ignore_cancel=True), w("y")))
    with Stopwatch() as sw:
        await asyncio.wait_for(system.shutdown(), 10)

    assert journal.count("cancel-ignored:x") == 1
    assert journal.count("stop:y") == 1
    assert 0.65 <= sw.elapsed < 3.5
    errors = [
        e
        for e in events
        if e.get("path") == "/root/x"
        and e.get("log_level") == "error"
        and e.get("event") != "actor.crashed"
    ]
    assert errors, "the failed kill of /root/x was not logged"
    journal.release.set()  # let the abandoned on_stop end
    await wait_lines(journal, "stop-done:x", 1)


@pytest.mark.parametrize("how", ["normal", "crash"])
async def test_children_ending_during_shutdown_are_not_restarted(
    events, system, journal, w, sup, how
):
    """Case 32 [sup_stop_race]: during a system exit, permanent, transient and temporary
    children stop by themselves (normal or crash): nothing restarts, the exit completes
    with everything stopped."""
    gate = asyncio.Event()
    refs = await start(
        system,
        sup(
            w("perm"),
            w("trans", restart="transient"),
            w("temp", restart="temporary"),
            w("last", stop_gate=gate),  # stopped first; holds the exit open
        ),
    )
    exiting = asyncio.ensure_future(system.shutdown())
    await wait_lines(journal, "stop:last", 1)
    message = StopSelf() if how == "normal" else Crash()
    for name in ("perm", "trans", "temp"):
        await refs[name].tell(message)
    for name in ("perm", "trans", "temp"):
        await wait_lines(journal, f"stop:{name}", 1)
    assert not exiting.done()
    gate.set()
    await asyncio.wait_for(exiting, 5)

    for name in ("perm", "trans", "temp", "last"):
        assert journal.count(f"start:{name}") == 1, journal.lines
        assert journal.count(f"stop:{name}") == 1, journal.lines
        assert not refs[name].is_alive
    assert events_named(events, "actor.restarted") == []
    assert system.gave_up is None
    assert system.tree() == []
    if how == "crash":
        assert len(events_named(events, "actor.crashed")) == 3


async def test_exit_during_backoff_cancels_the_pending_restart(fake_system, clock, journal, w, sup):
    """Case 33 [stop during backoff]: Backoff(min=5, max=10, jitter=0), crash a, exit the
    system at +0.1 s: the exit takes under 1 s and a does not start again."""
    system = fake_system
    refs = await start(system, sup(w("a"), backoff=Backoff(min=5, max=10, jitter=0)))
    await refs["a"].tell(Crash())
    await wait_lines(journal, "stop:a", 1)
    await clock.advance(0.1)
    assert journal.count("start:a") == 1

    with Stopwatch() as sw:
        await asyncio.wait_for(system.shutdown(), 5)
    assert sw.elapsed < 1.0
    await clock.advance(20)  # well past the backoff delay
    await asyncio.sleep(0.05)  # a wrongly surviving restart timer would start a here
    assert journal.count("start:a") == 1
    assert not refs["a"].is_alive
