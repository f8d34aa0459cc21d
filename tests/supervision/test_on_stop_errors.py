"""supervision.md section 2, cases 34-36: errors in on_stop."""

from __future__ import annotations

import asyncio

import pytest

from mycelium_actors.testing import events_named, eventually

from .helpers import node, restarts, start, status, wait_lines, wait_restarted, wait_status
from .workers import Crash, Ping, StopSelf


async def test_on_stop_error_during_shutdown_is_logged(events, system, journal, w, sup):
    """Case 34 [on_stop raises during shutdown]: [a,b,c], b's on_stop raises: logged, the
    stop order is still c, b, a, the exit completes and nothing restarts."""
    await start(system, sup(w("a"), w("b", stop_raises=True), w("c")))
    await asyncio.wait_for(system.shutdown(), 5)

    assert journal.lifecycle() == ["start:a", "start:b", "start:c", "stop:c", "stop:b", "stop:a"]
    crashed = events_named(events, "actor.crashed", path="/root/b")
    assert crashed and crashed[0]["exc_info"] is journal.errors[0]
    assert events_named(events, "actor.restarted") == []
    assert system.tree() == []


async def test_on_stop_error_during_a_restart_counts_once(events, system, journal, w, sup):
    """Case 35 [on_stop raises during a restart]: a crashes and its on_stop raises: a is
    restarted once and the restart count is 1, not 2 (max_restarts=1 survives it)."""
    refs = await start(system, sup(w("a", stop_raises=True), max_restarts=1))
    await refs["a"].tell(Crash())
    await wait_restarted(system, "/root/a", 1)
    assert await refs["a"].ask(Ping()) == ("pong", "a")

    assert journal.lifecycle() == ["start:a", "stop:a", "start:a"]
    assert restarts(system, "/root/a") == 1
    assert len(events_named(events, "actor.restarted", path="/root/a")) == 1
    assert status(system, "/root") == "running"
    assert system.gave_up is None


@pytest.mark.parametrize(("restart", "restarted"), [("transient", True), ("temporary", False)])
async def test_on_stop_error_turns_a_voluntary_stop_into_a_crash(
    system, journal, w, sup, restart, restarted
):
    """Case 36 [on_stop raises during a voluntary stop]: a transient child calls
    context.stop() and its on_stop raises: the reason becomes crash, so it restarts. The
    same with a temporary child: no restart."""
    refs = await start(system, sup(w("a", restart=restart, stop_raises=True), w("b")))
    await refs["a"].tell(StopSelf())
    await wait_lines(journal, "stop:a", 1)
    if restarted:
        await wait_restarted(system, "/root/a", 1)
        assert await refs["a"].ask(Ping()) == ("pong", "a")
        assert journal.count("start:a") == 2
    else:
        await eventually(lambda: node(system, "/root/a") is None, message="a still listed")
        assert not refs["a"].is_alive
        assert journal.count("start:a") == 1
    await wait_status(system, "/root/b")
    assert journal.count("start:b") == 1
