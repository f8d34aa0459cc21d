"""supervision.md section 2, cases 4-9: strategies."""

from __future__ import annotations

import asyncio

import pytest

from mycelium_actors.testing import eventually

from .helpers import node, restarts, start, status, wait_lines, wait_restarted, wait_status
from .workers import Crash, Ping, StopSelf


async def test_one_for_one_restarts_only_the_failed_child(system, journal, w, sup):
    """Case 4 [one_for_one]: crash b in [a,b,c]: start:b x2, a and c untouched, 1 restart."""
    refs = await start(system, sup(w("a"), w("b"), w("c")))
    mark = journal.mark()

    await refs["b"].tell(Crash())
    await wait_restarted(system, "/root/b", 1)

    assert journal.lifecycle(mark) == ["stop:b", "start:b"]
    assert journal.count("start:b") == 2
    assert [restarts(system, f"/root/{x}") for x in "abc"] == [0, 1, 0]
    for x in "abc":
        assert await refs[x].ask(Ping()) == ("pong", x)


async def test_one_for_all_restarts_every_child_and_counts_once(system, journal, w, sup):
    """Case 5 [one_for_all]: crash a: stop:a, stop:c, stop:b, start:a, start:b, start:c;
    refs unchanged; with max_restarts=1 the supervisor survives (one restart counted)."""
    refs = await start(system, sup(w("a"), w("b"), w("c"), strategy="one_for_all", max_restarts=1))
    mark = journal.mark()

    await refs["a"].tell(Crash())
    await wait_lines(journal, "start:c", 2)
    for x in "abc":
        await wait_restarted(system, f"/root/{x}", 1)

    assert journal.lifecycle(mark) == [
        "stop:a",
        "stop:c",
        "stop:b",
        "start:a",
        "start:b",
        "start:c",
    ]
    for x in "abc":
        assert system.lookup(f"/root/{x}") is refs[x]
        assert await refs[x].ask(Ping()) == ("pong", x)
    assert status(system, "/root") == "running"
    assert system.gave_up is None


async def test_rest_for_one_follows_start_order_not_names(system, journal, w, sup):
    """Case 6 [order_of_children]: rest_for_one over ch7, ch3, ch10, ch2, ch5; crash ch10:
    stop ch5, ch2; start ch10, ch2, ch5; system exit stops ch5, ch2, ch10, ch3, ch7."""
    names = ["ch7", "ch3", "ch10", "ch2", "ch5"]
    refs = await start(system, sup(*(w(n) for n in names), strategy="rest_for_one"))
    mark = journal.mark()

    await refs["ch10"].tell(Crash())
    await wait_lines(journal, "start:ch5", 2)
    for n in ("ch10", "ch2", "ch5"):
        await wait_restarted(system, f"/root/{n}", 1)

    assert journal.lifecycle(mark) == [
        "stop:ch10",
        "stop:ch5",
        "stop:ch2",
        "start:ch10",
        "start:ch2",
        "start:ch5",
    ]
    assert restarts(system, "/root/ch7") == restarts(system, "/root/ch3") == 0

    mark = journal.mark()
    await system.shutdown()
    assert journal.lifecycle(mark) == ["stop:ch5", "stop:ch2", "stop:ch10", "stop:ch3", "stop:ch7"]


@pytest.mark.parametrize("strategy", ["one_for_all", "rest_for_one"])
async def test_temporary_bystander_is_dropped_not_restarted(system, journal, w, sup, strategy):
    """Case 7 [temporary_bystander]: p exits normally and restarts; temporary t is stopped
    as a bystander and not restarted; after 0.35 s the supervisor is up with only p."""
    refs = await start(
        system,
        sup(w("p"), w("t", restart="temporary"), strategy=strategy, max_restarts=2, within=0.3),
    )
    mark = journal.mark()

    await refs["p"].tell(StopSelf())
    await wait_restarted(system, "/root/p", 1)
    await eventually(lambda: node(system, "/root/t") is None, message="t still listed")
    await asyncio.sleep(0.35)  # let the intensity window pass: nothing else may happen

    assert journal.lifecycle(mark) == ["stop:p", "stop:t", "start:p"]
    assert status(system, "/root") == "running"
    assert [n.path for n in node(system, "/root").children] == ["/root/p"]
    assert await refs["p"].ask(Ping()) == ("pong", "p")
    assert system.gave_up is None


async def test_strategy_acts_only_when_the_child_is_restarted(system, journal, w, sup):
    """Case 8: one_for_all[a, tmp(temporary), tr(transient)]: tmp crashes, then tr calls
    context.stop(); a is never stopped or restarted."""
    refs = await start(
        system,
        sup(
            w("a"),
            w("tmp", restart="temporary"),
            w("tr", restart="transient"),
            strategy="one_for_all",
        ),
    )
    await refs["tmp"].tell(Crash())
    await wait_lines(journal, "stop:tmp", 1)
    await eventually(lambda: node(system, "/root/tmp") is None, message="tmp still listed")
    await refs["tr"].tell(StopSelf())
    await wait_status(system, "/root/tr", "stopped")

    assert await refs["a"].ask(Ping()) == ("pong", "a")
    assert journal.lifecycle() == ["start:a", "start:tmp", "start:tr", "stop:tmp", "stop:tr"]
    assert restarts(system, "/root/a") == 0
    assert status(system, "/root/a") == "running"


async def test_start_child_goes_last_in_the_order(system, journal, w, sup):
    """Case 9 [start_child goes last]: rest_for_one[a,b] + start_child(c); crash a:
    stop:c, stop:b, start:a, start:b, start:c."""
    refs = await start(system, sup(w("a"), w("b"), strategy="rest_for_one"))
    c = await system.start_child("/root", w("c"))
    mark = journal.mark()

    await refs["a"].tell(Crash())
    await wait_lines(journal, "start:c", 2)
    await wait_restarted(system, "/root/c", 1)

    assert journal.lifecycle(mark) == [
        "stop:a",
        "stop:c",
        "stop:b",
        "start:a",
        "start:b",
        "start:c",
    ]
    assert await c.ask(Ping()) == ("pong", "c")
