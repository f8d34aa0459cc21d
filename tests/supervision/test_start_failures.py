"""supervision.md section 2, cases 20-26: failures (and refusals) at start and in restarts."""

from __future__ import annotations

import asyncio

import pytest

from mycelium_actors import Ignore, MyceliumError
from mycelium_actors.testing import events_named, eventually

from .helpers import Stopwatch, node, start, status, wait_lines
from .workers import Crash, Ping, Worker


@pytest.mark.parametrize("max_restarts", [3, 0])
async def test_failure_during_tree_start_stops_started_children(
    events, system, journal, w, sup, max_restarts
):
    """Case 20 [faulty_application_shutdown]: [a, bad, c], bad's on_start raises: start
    raises naming /root/bad with __cause__ the original; start:a, stop:a; c never starts;
    no actor.restarted, even with max_restarts=0."""
    tree = sup(w("a"), w("bad", fail_start="always"), w("c"), max_restarts=max_restarts)
    with pytest.raises(MyceliumError) as info:
        await system.start(tree)

    assert "/root/bad" in str(info.value)
    assert journal.errors and info.value.__cause__ is journal.errors[0]
    assert [line for line in journal.lifecycle() if not line.endswith(":bad")] == [
        "start:a",
        "stop:a",
    ]
    assert journal.count("start:bad") == 1
    assert journal.count("start:c") == 0
    assert events_named(events, "actor.restarted") == []
    assert system.lookup("/root/a") is None or not system.lookup("/root/a").is_alive


@pytest.mark.parametrize("how", ["tree_start", "start_child"])
async def test_an_on_start_that_hangs_fails_the_start_at_its_start_timeout(
    system, journal, w, sup, how
):
    """Case 21 [EXT start_timeout]: a's on_start sleeps "forever", start_timeout=0.3: the
    start fails within about 0.4 s (asserted with a 5x margin) with a TimeoutError naming
    /root/a (as the cause of the tree start's error, or raised by start_child as in
    case 23), and a is stopped (its on_start cancelled, no on_stop)."""
    hanging = w("a", start_delay=3600, start_timeout=0.3)
    if how == "start_child":
        await start(system, sup(w("b")))
    with Stopwatch() as sw, pytest.raises(Exception) as info:
        if how == "tree_start":
            await system.start(sup(hanging))
        else:
            await system.start_child("/root", hanging)
    assert sw.elapsed < 2.0
    timeout = info.value if how == "start_child" else info.value.__cause__
    assert isinstance(timeout, TimeoutError) and "/root/a" in str(timeout)
    assert journal.count("start:a") == 1 and journal.count("stop:a") == 0
    assert system.lookup("/root/a") is None or not system.lookup("/root/a").is_alive


async def test_a_child_that_ignores_its_start_neither_starts_nor_fails(
    events, system, journal, w, sup
):
    """Case 22 [sup_start_ignore_child / sup_start_ignore_temporary_child] [EXT]: on_start
    raises Ignore. The tree starts; a permanent child that ignored is listed as stopped
    (restart_child leaves it so while it keeps ignoring), a temporary one is absent; a
    start_child that ignores returns None. No crash is logged."""
    a, b = w("a", ignore_start="always"), w("b", ignore_start="always", restart="temporary")
    await start(system, sup(a, b, w("c")))
    assert [status(system, f"/root/{x}") for x in "abc"] == ["stopped", None, "running"]
    assert journal.count("start:a") == journal.count("start:b") == 1
    assert journal.count("stop:a") == 0

    assert await system.start_child("/root", w("d", ignore_start="always")) is None
    await system.restart_child("/root/a")
    assert status(system, "/root/d") == status(system, "/root/a") == "stopped"
    assert journal.count("start:a") == 2
    assert len(events_named(events, "actor.ignored")) == 4
    assert events_named(events, "actor.crashed") == []


async def test_a_restart_that_ignores_leaves_the_child_stopped_and_goes_on(
    events, system, journal, w, sup
):
    """[EXT] Ignore during a restart: one_for_all [a, b], a crashes and its restart
    ignores: a stays stopped, b is restarted after it, nothing counts as a failure."""
    refs = await start(system, sup(w("a", ignore_start="restarts"), w("b"), strategy="one_for_all"))
    await refs["a"].tell(Crash())
    await wait_lines(journal, "start:b", 2)
    await eventually(lambda: status(system, "/root/b") == "running")
    assert status(system, "/root/a") == "stopped"
    assert await refs["b"].ask(Ping()) == ("pong", "b")
    assert system.gave_up is None and events_named(events, "actor.ignored")


async def test_a_plain_spawn_that_ignores_raises_it_to_the_caller(system, journal):
    with pytest.raises(Ignore):
        await system.spawn(Worker, "x", journal=journal, ignore_start="always", name="x")
    assert journal.count("start:x") == 1 and system.lookup("/x") is None


async def test_start_child_failures_leave_the_tree_unchanged(system, journal, w, sup):
    """Case 23 [sup_start_child_returns_error / child_adm]: a start_child whose on_start
    raises gives the caller the exception and leaves tree() unchanged; a start_child with a
    running child's name raises "already started" and leaves that child untouched."""
    refs = await start(system, sup(w("a")))
    before = system.tree()

    with pytest.raises(Exception) as info:
        await system.start_child("/root", w("bad", fail_start="always"))
    original = journal.errors[0]
    assert info.value is original or info.value.__cause__ is original
    assert system.tree() == before
    assert system.lookup("/root/bad") is None

    mark = journal.mark()
    with pytest.raises(MyceliumError, match=r"(?i)already started"):
        await system.start_child("/root", w("a"))
    assert journal.since(mark) == []
    assert system.lookup("/root/a") is refs["a"]
    assert await refs["a"].ask(Ping()) == ("pong", "a")
    assert system.tree() == before


@pytest.mark.parametrize(("max_restarts", "survives"), [(2, True), (1, False)])
async def test_one_for_all_retries_the_whole_group_when_a_sibling_fails_to_restart(
    system, journal, w, sup, max_restarts, survives
):
    """Case 24 [one_for_all_other_child_fails_restart]: one_for_all [a, b], crash a; b's
    on_start fails once during the group restart: the new a is stopped again and the
    whole group retried, ending with both running. That counts 2 restarts: a limit of
    2 survives it, a limit of 1 gives up."""
    tree = sup(w("a"), w("b", fail_start={2}), strategy="one_for_all", max_restarts=max_restarts)
    refs = await start(system, tree)
    mark = journal.mark()
    await refs["a"].tell(Crash())
    if not survives:
        await eventually(lambda: system.gave_up is not None)
        return
    await wait_lines(journal, "start:b", 3)
    await eventually(lambda: status(system, "/root/b") == "running")
    assert journal.lifecycle(mark) == [
        *("stop:a", "stop:b", "start:a", "start:b"),  # b fails here
        *("stop:a", "start:a", "start:b"),
    ]
    assert await refs["a"].ask(Ping()) == ("pong", "a") and system.gave_up is None


async def test_rest_for_one_retries_from_the_sibling_that_failed_to_restart(
    system, journal, w, sup
):
    """Case 25 [rest_for_one_other_child_fails_restart]: rest_for_one [a, b], crash a; b
    fails once during the restart: the retry restarts b only, so a's on_start runs twice
    in all and b's three times (start, failed attempt, retry)."""
    refs = await start(
        system, sup(w("a"), w("b", fail_start={2}), strategy="rest_for_one", max_restarts=3)
    )
    await refs["a"].tell(Crash())
    await wait_lines(journal, "start:b", 3)
    await eventually(lambda: status(system, "/root/b") == "running")
    assert journal.count("start:a") == 2 and journal.count("startfail:b") == 1
    assert await refs["b"].ask(Ping()) == ("pong", "b")


async def test_hanging_restart_loop_keeps_the_supervisor_responsive(system, journal, w, sup):
    """Case 26 [hanging_restart_loop]: max_restarts=8, within=10; after a crash a's on_start
    sleeps 0.2 s then raises, every time: tree() shows a restarting, lookup / tree() /
    start_child answer within 50 ms (asserted with a 5x margin), exit within 1 s."""
    refs = await start(
        system,
        sup(w("a", fail_start="restarts", start_delay=0.2), max_restarts=8, within=10),
    )
    await refs["a"].tell(Crash())
    await wait_lines(journal, "startfail:a", 1)  # the loop is going
    await wait_lines(journal, "start:a", 3)  # ... and another attempt is in its sleep

    seen = set()
    for i in range(3):
        with Stopwatch() as sw:
            assert system.lookup("/root/a") is refs["a"]
            seen.add(status(system, "/root/a"))
            extra = await system.start_child("/root", w(f"d{i}"))
        assert sw.elapsed < 0.25, f"the supervisor took {sw.elapsed:.3f}s to answer"
        assert await extra.ask(Ping()) == ("pong", f"d{i}")
        await asyncio.sleep(0.07)  # sample at different points of the 0.2 s attempt
    assert journal.count("startfail:a") < 8, "the loop ended before the checks"

    with Stopwatch() as sw:
        await asyncio.wait_for(system.shutdown(), 5)
    assert sw.elapsed < 1.0
    n = journal.count("start:a")
    await asyncio.sleep(0.3)  # a pending attempt would show up here
    assert journal.count("start:a") == n
    assert node(system, "/root") is None
    await eventually(lambda: not system.running)
    assert seen == {"restarting"}, f"tree() showed {seen} during the restart loop"
