"""supervision.md 1.2 [EXT]: strategy="dynamic", Elixir's DynamicSupervisor.

Children exist only when added with start_child; each restarts on its own
(one_for_one); max_children bounds them; a child stopped for good leaves the
tree; restart_child is not supported; shutdown stops the children all at once.
"""

from __future__ import annotations

import asyncio

import pytest

from mycelium_actors import MyceliumError
from mycelium_actors.testing import eventually

from .helpers import status, wait_lines
from .workers import Crash, Ping


@pytest.fixture
async def dynamic(system, sup):
    """A running dynamic supervisor /root with room for two children."""
    await system.start(sup(strategy="dynamic", max_children=2))
    return "/root"


async def test_children_come_and_go_one_at_a_time(system, journal, w, dynamic):
    a = await system.start_child(dynamic, w("a"))
    b = await system.start_child(dynamic, w("b", restart="transient"))
    with pytest.raises(MyceliumError, match="max_children=2"):
        await system.start_child(dynamic, w("c"))

    await a.tell(Crash())
    await wait_lines(journal, "start:a", 2)  # a restarts alone
    assert journal.count("start:b") == 1
    assert await a.ask(Ping()) == ("pong", "a")

    await system.terminate_child("/root/b")
    assert status(system, "/root/b") is None  # gone, and its place is free
    with pytest.raises(MyceliumError, match="dynamic"):
        await system.restart_child("/root/a")
    assert await (await system.start_child(dynamic, w("c"))).ask(Ping()) == ("pong", "c")
    assert b.is_alive is False


async def test_shutdown_stops_the_children_all_at_once(system, journal, w, dynamic):
    """Both on_stops wait until both have begun: stopped one after the other, that
    never happens and the shutdown could not finish."""
    both = asyncio.Event()
    for name in "ab":
        await system.start_child(dynamic, w(name, stop_gate=both))
    stopping = asyncio.create_task(system.shutdown())
    await eventually(lambda: journal.count("stop:a") == journal.count("stop:b") == 1)
    both.set()
    await asyncio.wait_for(stopping, 5)
    assert journal.count("stop-done:a") == journal.count("stop-done:b") == 1
