"""supervision.md section 2, cases 16-19: escalation and nested trees."""

from __future__ import annotations

import asyncio

from mycelium_actors import SupervisorGaveUp
from mycelium_actors.testing import events_named

from .helpers import node, start, status, wait_restarted, wait_status
from .workers import Crash, Ping


async def _nested_escalation(system, journal, w, sup, inner_restart):
    tree = sup(
        w("solo"),
        sup(w("i1"), w("i2"), name="inner", max_restarts=1, restart=inner_restart),
        max_restarts=5,
    )
    refs = await start(system, tree)
    await refs["i1"].tell(Crash())
    await wait_restarted(system, "/root/inner/i1", 1)
    mark = journal.mark()
    await refs["i1"].tell(Crash())
    await wait_restarted(system, "/root/inner", 1)
    await wait_status(system, "/root/inner/i2")

    assert journal.lifecycle(mark) == ["stop:i1", "stop:i2", "start:i1", "start:i2"]
    assert journal.count("start:i1") == 3
    assert journal.count("start:i2") == 2
    assert journal.count("start:solo") == 1
    assert journal.count("stop:solo") == 0
    assert system.lookup("/root/inner/i1") is refs["i1"]
    assert await refs["i1"].ask(Ping()) == ("pong", "i1")
    assert await refs["i2"].ask(Ping()) == ("pong", "i2")
    assert status(system, "/root") == "running"


async def test_child_supervisor_gives_up_and_is_restarted(events, system, journal, w, sup):
    """Case 16 [nested escalation]: crash i1 twice: inner (max_restarts=1) stops i2, exits
    with gave_up, root restarts it: start:i1 x3, start:i2 x2, start:solo x1."""
    await _nested_escalation(system, journal, w, sup, "permanent")
    assert events_named(events, "supervisor.gave_up", path="/root/inner")
    assert events_named(events, "actor.stopped", path="/root/inner", reason="gave_up")


async def test_escalation_restarts_a_transient_child_supervisor(events, system, journal, w, sup):
    """Case 17 [escalation reaches transient parents]: as case 16 with inner transient:
    inner is still restarted, because gave_up is abnormal."""
    await _nested_escalation(system, journal, w, sup, "transient")
    assert events_named(events, "supervisor.gave_up", path="/root/inner")
    assert events_named(events, "actor.stopped", path="/root/inner", reason="gave_up")


async def test_escalation_all_the_way_up(events, system, journal, w, sup):
    """Case 18 [escalation all the way up]: root(max 1)[inner(max 0)[w]]: crash w, wait for
    the restart, crash w again: root gives up, the system stops; w stops before inner ends
    and inner ends before root."""
    refs = await start(system, sup(sup(w("w"), name="inner", max_restarts=0), max_restarts=1))
    await refs["w"].tell(Crash())
    await wait_restarted(system, "/root/inner", 1)
    await wait_status(system, "/root/inner/w")
    await refs["w"].tell(Crash())
    await asyncio.wait_for(system.wait_stopped(), 5)

    assert isinstance(system.gave_up, SupervisorGaveUp)
    assert system.gave_up.path == "/root"
    assert journal.lifecycle() == ["start:w", "stop:w", "start:w", "stop:w"]

    def last_stop(path):
        found = events_named(events, "actor.stopped", path=path)
        assert found, f"no actor.stopped for {path}"
        return events.index(found[-1])

    assert last_stop("/root/inner/w") < last_stop("/root/inner") < last_stop("/root")
    assert len(events_named(events, "supervisor.gave_up", path="/root/inner")) == 2
    assert len(events_named(events, "supervisor.gave_up", path="/root")) == 1


async def test_group_restart_recreates_static_children_only(system, journal, w, sup):
    """Case 19 [tree]: top one_for_all[sup1[w1,w2], sup2[]]; w3 (fails on restart) and w4
    added to sup2: crash w4: only w4 restarts; crash w3: sup2 gives up, top restarts sup1
    and sup2; sup1 has fresh w1, w2; sup2 is empty."""
    tree = sup(
        sup(w("w1"), w("w2"), name="sup1"),
        sup(name="sup2"),
        name="top",
        strategy="one_for_all",
    )
    await start(system, tree)
    w3 = await system.start_child("/top/sup2", w("w3", fail_start="restarts"))
    w4 = await system.start_child("/top/sup2", w("w4"))

    mark = journal.mark()
    await w4.tell(Crash())
    await wait_restarted(system, "/top/sup2/w4", 1)
    assert journal.lifecycle(mark) == ["stop:w4", "start:w4"]

    await w3.tell(Crash())
    await wait_restarted(system, "/top/sup2", 1)
    await wait_restarted(system, "/top/sup1", 1)
    await wait_status(system, "/top/sup1/w2")

    assert journal.count("start:w1") == 2
    assert journal.count("start:w2") == 2
    assert journal.count("stop:w1") == 1
    assert journal.count("stop:w2") == 1
    assert node(system, "/top/sup2").children == []
    assert system.lookup("/top/sup2/w3") is None
    assert system.lookup("/top/sup2/w4") is None
    assert status(system, "/top") == "running"
    w1 = system.lookup("/top/sup1/w1")
    assert await w1.ask(Ping()) == ("pong", "w1")
