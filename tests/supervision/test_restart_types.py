"""supervision.md section 2, cases 1-3: restart types."""

from __future__ import annotations

import asyncio

import pytest

from mycelium_actors import ActorStopped
from mycelium_actors.testing import eventually

from .helpers import node, restarts, start, status, wait_lines, wait_restarted, wait_status
from .workers import Crash, Ping, StopSelf, WhoAmI, Worker


async def test_permanent_restarts_on_normal_and_crash_but_not_after_outside_stop(
    system, journal, w, sup
):
    """Case 1 [permanent_normal/permanent_abnormal]: self-stop and crash both restart p
    (start:p x3, same ref, 2 restarts); an outside `ref.stop()` stops it for good."""
    refs = await start(system, sup(w("p"), max_restarts=5))
    p = refs["p"]

    await p.tell(StopSelf())
    await wait_restarted(system, "/root/p", 1)
    await p.tell(Crash())
    await wait_restarted(system, "/root/p", 2)

    assert journal.count("start:p") == 3
    assert system.lookup("/root/p") is p
    assert await p.ask(Ping()) == ("pong", "p")
    assert restarts(system, "/root/p") == 2

    await p.stop()
    assert status(system, "/root/p") == "stopped"  # the slot stays listed
    assert not p.is_alive
    with pytest.raises(ActorStopped):
        await p.ask(Ping(), timeout=1)
    assert journal.count("start:p") == 3
    assert status(system, "/root") == "running"


async def test_transient_restarts_after_crash_or_kill_not_after_normal_stop(
    system, journal, w, sup
):
    """Case 2 [transient_normal/transient_shutdown/transient_abnormal]: a crash restarts t,
    an outside task cancel (killed) restarts it too, `context.stop()` does not."""
    refs = await start(system, sup(w("t", restart="transient")))
    t = refs["t"]

    await t.tell(Crash())
    await wait_restarted(system, "/root/t", 1)
    assert journal.count("start:t") == 2

    seen: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    await t.tell(WhoAmI(seen))
    task = await asyncio.wait_for(seen, 5)
    assert isinstance(task, asyncio.Task)
    task.cancel()  # an outside cancel of the restarted incarnation: reason killed
    await wait_restarted(system, "/root/t", 2)
    assert journal.count("start:t") == 3
    assert await t.ask(Ping()) == ("pong", "t")

    await t.tell(StopSelf())
    await wait_lines(journal, "stop:t", 2)  # the kill ran no on_stop
    await wait_status(system, "/root/t", "stopped")
    assert node(system, "/root/t") is not None  # listed as stopped
    with pytest.raises(ActorStopped):
        await t.ask(Ping(), timeout=1)
    assert journal.count("start:t") == 3


async def test_temporary_is_never_restarted_and_leaves_the_tree(system, journal, w, sup):
    """Case 3 [temporary_* / do_not_save_child_specs_for_temporary_children]: x crashes,
    stops once, is not restarted, leaves tree() and discover; start_child(x) then works."""
    spec_x = w("x", restart="temporary")
    refs = await start(system, sup(spec_x, w("y")))
    x = refs["x"]

    await x.tell(Crash())
    await wait_lines(journal, "stop:x", 1)
    await eventually(lambda: node(system, "/root/x") is None, message="x still listed")

    assert [r.path for r in system.discover(Worker)] == ["/root/y"]
    assert system.lookup("/root/x") is None
    assert journal.count("stop:x") == 1
    assert journal.count("start:x") == 1
    with pytest.raises(ActorStopped):
        await x.ask(Ping(), timeout=1)

    again = await system.start_child("/root", spec_x)
    assert await again.ask(Ping()) == ("pong", "x")
    assert journal.count("start:x") == 2
    assert [r.path for r in system.discover(Worker)] == ["/root/y", "/root/x"]
