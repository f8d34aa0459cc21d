"""supervision.md section 2, cases 10-15: restart intensity."""

from __future__ import annotations

import asyncio

import pytest

from mycelium_actors import ActorStopped, SupervisorGaveUp
from mycelium_actors.testing import events_named

from .helpers import restarts, start, status, wait_lines, wait_restarted
from .workers import Crash, Hold, Ping, Record


async def _crash_and_wait(system, refs, name):
    before = restarts(system, f"/root/{name}")
    await refs[name].tell(Crash())
    await wait_restarted(system, f"/root/{name}", before + 1)


async def _gives_up(system, root="/root"):
    await asyncio.wait_for(system.wait_stopped(), 5)
    assert isinstance(system.gave_up, SupervisorGaveUp)
    assert system.gave_up.path == root
    assert not system.running


@pytest.mark.parametrize(
    ("max_restarts", "crashes"), [(2, ["a", "b", "a"]), (0, ["a"])], ids=["limit2", "limit0"]
)
async def test_going_over_the_limit_gives_up_and_stops_the_system(
    events, system, journal, w, sup, max_restarts, crashes
):
    """Case 10 [restart frequency]: max_restarts=2, within=3600: crash a, b, a: the third
    crash gives up, the survivor b is stopped, the root's system stops, asks queued on b
    fail with ActorStopped. With max_restarts=0 the first crash gives up (start:a once)."""
    refs = await start(
        system, sup(w("a"), w("b", shutdown=0.3), max_restarts=max_restarts, within=3600)
    )
    for name in crashes[:-1]:
        await _crash_and_wait(system, refs, name)

    gate = asyncio.Event()  # never opened: b stays busy, so the asks below stay queued
    await refs["b"].tell(Hold(gate))
    await wait_lines(journal, "hold:b", 1)
    queued = [asyncio.ensure_future(refs["b"].ask(Record(i), timeout=30)) for i in range(3)]
    mark = journal.mark()

    await refs[crashes[-1]].tell(Crash())
    await _gives_up(system)

    # b is stuck on the gate, so it is killed after its shutdown time (no on_stop).
    assert journal.lifecycle(mark) == ["stop:a"]
    assert journal.count("start:a") == 1 + crashes[:-1].count("a")
    gave_up = events_named(events, "supervisor.gave_up", path="/root")
    assert len(gave_up) == 1
    b_stopped = events_named(events, "actor.stopped", path="/root/b")
    assert b_stopped and events.index(b_stopped[-1]) > events.index(gave_up[0])
    _, pending = await asyncio.wait(queued, timeout=5)
    assert not pending, "an ask queued on b hangs"
    for fut in queued:
        assert isinstance(fut.exception(), ActorStopped)
    assert journal.got("b") == []


async def test_crashes_spaced_beyond_the_window_are_all_restarted(
    fake_system, clock, journal, w, sup
):
    """Case 11 [multiple_restarts] [clock]: max_restarts=1, within=1: crashes at t = 0, 2.1,
    4.2 and 6.3 are each restarted and the supervisor stays up."""
    system = fake_system
    refs = await start(system, sup(w("a"), max_restarts=1, within=1))
    for i, at in enumerate([0.0, 2.1, 4.2, 6.3]):
        await clock.advance(at - clock.now())
        await _crash_and_wait(system, refs, "a")
        assert journal.count("start:a") == i + 2
    assert status(system, "/root") == "running"
    assert system.gave_up is None
    assert await refs["a"].ask(Ping()) == ("pong", "a")


async def test_sliding_window_counts_the_edge(fake_system, clock, journal, w, sup):
    """Case 12 [sliding-window boundary] [clock]: max_restarts=3, within=5: crashes at 0, 1,
    2 and 5.5 are restarted; a crash at 6.0 finds 1, 2, 5.5, 6.0 in the window: give up."""
    system = fake_system
    refs = await start(system, sup(w("a"), max_restarts=3, within=5))
    for at in [0.0, 1.0, 2.0, 5.5]:
        await clock.advance(at - clock.now())
        await _crash_and_wait(system, refs, "a")
    assert journal.count("start:a") == 5
    assert status(system, "/root") == "running"

    await clock.advance(6.0 - clock.now())
    await refs["a"].tell(Crash())
    await _gives_up(system)
    assert journal.count("start:a") == 5


async def test_window_resets_after_within(fake_system, clock, journal, w, sup):
    """Case 13 [reset retry limit after withinTimeRange]: max_restarts=2, within=0.5: 2
    crashes, 0.7 s pass, 2 more crashes, all restarted; one more quick crash gives up."""
    system = fake_system
    refs = await start(system, sup(w("a"), max_restarts=2, within=0.5))
    for _ in range(2):
        await _crash_and_wait(system, refs, "a")
    await clock.advance(0.7)
    for _ in range(2):
        await _crash_and_wait(system, refs, "a")
    assert journal.count("start:a") == 5
    assert status(system, "/root") == "running"

    await refs["a"].tell(Crash())
    await _gives_up(system)
    assert journal.count("start:a") == 5


async def test_limit_is_counted_per_supervisor(fake_system, journal, w, sup):
    """Case 14 [limit counted per supervisor]: max_restarts=2, [a,b,c]: crash a, b, c
    quickly: the supervisor gives up although no child crashed twice."""
    system = fake_system
    refs = await start(system, sup(w("a"), w("b"), w("c"), max_restarts=2))
    await _crash_and_wait(system, refs, "a")
    await _crash_and_wait(system, refs, "b")
    await refs["c"].tell(Crash())
    await _gives_up(system)
    assert [journal.count(f"start:{x}") for x in "abc"] == [2, 2, 1]


async def test_failing_restarts_count_until_give_up(fake_system, journal, w, sup):
    """Case 15 [one_for_one_escalation]: max_restarts=4, a's on_start fails on every
    restart: crash a: exactly 4 failed attempts, no 5th, then give up; b ends with stop:b."""
    system = fake_system
    refs = await start(system, sup(w("a", fail_start="restarts"), w("b"), max_restarts=4))
    mark = journal.mark()
    await refs["a"].tell(Crash())
    await _gives_up(system)

    assert journal.count("startfail:a") == 4
    assert journal.count("start:a") == 5
    assert journal.since(mark) == [
        "stop:a",
        *["start:a", "startfail:a"] * 4,
        "stop:b",
    ]
