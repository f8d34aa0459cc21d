"""`system.events.subscribe(callback)`: the lifecycle events as dicts, in code."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from actors import Boom, Crash, Worker

from mycelium_actors import ActorSystem, Child, PinnedThread, Supervisor
from mycelium_actors.testing import capture_events, events_named, eventually

LIFECYCLE = ("actor.started", "actor.crashed", "actor.stopped", "actor.restarted")


def subscribed(system: ActorSystem) -> tuple[list[dict[str, Any]], Any]:
    """A list the events land in, and the `unsubscribe` function."""
    got: list[dict[str, Any]] = []
    return got, system.events.subscribe(got.append)


async def crash_once(system: ActorSystem) -> str:
    """A supervised worker crashes once and is restarted; its path."""
    await system.start(Supervisor("root", children=[Child(Worker, name="w")]))
    ref = system.lookup("/root/w")
    assert ref is not None
    await ref.tell(Boom("once"))
    await eventually(lambda: system.tree()[0].children[0].restarts == 1)
    return ref.path


async def test_a_subscriber_gets_each_lifecycle_event_with_the_fields_of_the_log_event(
    system: ActorSystem,
) -> None:
    got, _ = subscribed(system)
    with capture_events() as logged:
        path = await crash_once(system)
    assert [(e["event"], e["path"]) for e in got if e["path"] == path] == [
        ("actor.started", path),
        ("actor.crashed", path),
        ("actor.stopped", path),
        ("actor.started", path),
        ("actor.restarted", path),
    ]
    assert [e for e in logged if e["event"] in LIFECYCLE] == got
    [crashed] = [e for e in got if e["event"] == "actor.crashed"]
    assert (crashed["exc_type"], crashed["error"], crashed["restarts"]) == (
        "actors.Crash",
        "once",
        0,
    )
    assert isinstance(crashed["exc_info"], Crash) and crashed["log_level"] == "error"


async def test_a_give_up_is_an_event(system: ActorSystem) -> None:
    got, _ = subscribed(system)
    await system.start(Supervisor("fragile", max_restarts=0, children=[Child(Worker, name="w")]))
    ref = system.lookup("/fragile/w")
    assert ref is not None
    await ref.tell(Boom())
    await system.wait_stopped()
    [gave_up] = [e for e in got if e["event"] == "supervisor.gave_up"]
    assert gave_up["path"] == "/fragile" and gave_up["log_level"] == "error"


async def test_unsubscribe_stops_the_events_and_may_be_called_twice(system: ActorSystem) -> None:
    got, unsubscribe = subscribed(system)
    await system.spawn(Worker, name="before")
    unsubscribe()
    unsubscribe()
    await system.spawn(Worker, name="after")
    assert [e["path"] for e in got] == ["/before"]
    assert not system.events.active


async def test_a_callback_that_raises_is_logged_and_unsubscribed(system: ActorSystem) -> None:
    calls = 0

    def broken(event: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("a bug in the callback")

    system.events.subscribe(broken)
    got, _ = subscribed(system)
    with capture_events() as logged:
        await system.spawn(Worker, name="one")
        await system.spawn(Worker, name="two")
    assert calls == 1
    assert [e["path"] for e in got] == ["/one", "/two"]  # the others still get every event
    [failed] = events_named(logged, "events.callback_failed")
    assert (failed["exc_type"], failed["error"]) == ("RuntimeError", "a bug in the callback")
    assert "broken" in failed["callback"]


async def test_events_from_a_pinned_thread_reach_the_callback_on_the_system_loop(
    system: ActorSystem,
) -> None:
    threads: list[int] = []
    system.events.subscribe(lambda event: threads.append(threading.get_ident()))
    ref = await system.spawn(Worker, name="pinned", executor=PinnedThread())
    await ref.tell(Boom())
    await eventually(lambda: len(threads) >= 3)  # started, crashed, stopped
    assert set(threads) == {threading.get_ident()}


async def test_node_up_and_down_are_events() -> None:
    async with ActorSystem("a", listen="memory://events-a") as a:
        got, _ = subscribed(a)
        async with ActorSystem("b", listen="memory://events-b") as b:
            await a.remote(f"{b.address}/nobody")
            await eventually(lambda: any(e["event"] == "node.up" for e in got))
        await eventually(lambda: any(e["event"] == "node.down" for e in got))
    [up] = [e for e in got if e["event"] == "node.up"]
    [down] = [e for e in got if e["event"] == "node.down"]
    assert up["name"] == down["name"] == "b"
    assert "reason" in down


@pytest.mark.parametrize("value", [None, "not callable"])
def test_subscribe_takes_a_callable(value: Any) -> None:
    with pytest.raises(TypeError, match="callable"):
        ActorSystem("x").events.subscribe(value)
