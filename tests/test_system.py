"""ActorSystem: names, lookup, discovery, publish, tree, shutdown, isolation (API.md §5)."""

from __future__ import annotations

import asyncio

import attrs
import pytest
from actors import (
    BOXED,
    Cat,
    Kennel,
    Ping,
    Puppy,
    Record,
    SpawnChild,
    StopOrder,
    Unknown,
    Worker,
    Zoo,
    park,
)

from mycelium_actors import Actor, ActorSystem, MyceliumError, TreeNode
from mycelium_actors.kernel import system as system_module
from mycelium_actors.testing import eventually


def paths(refs) -> list[str]:
    return [ref.path for ref in refs]


# -- names and lookup ---------------------------------------------------------


async def test_spawn_without_a_name_uses_the_class_name_and_a_counter(system) -> None:
    assert paths([await system.spawn(Worker), await system.spawn(Worker)]) == [
        "/worker-1",
        "/worker-2",
    ]


async def test_automatic_names_skip_names_in_use(system) -> None:
    await system.spawn(Worker, name="worker-1")
    assert (await system.spawn(Worker)).path == "/worker-2"


async def test_a_duplicate_top_level_name_is_a_mycelium_error(system) -> None:
    first = await system.spawn(Worker, name="dup")
    with pytest.raises(MyceliumError):
        await system.spawn(Zoo, name="dup")
    assert system.lookup("/dup") is first
    assert await first.ask(Ping()) == "pong"


async def test_spawn_refuses_a_class_that_is_not_an_actor(system) -> None:
    with pytest.raises(TypeError):
        await system.spawn(object)  # type: ignore[type-var]


async def test_lookup_finds_live_actors_by_path(system) -> None:
    ref = await system.spawn(Worker, name="w")
    assert system.lookup("/w") is ref
    assert system.lookup("/nobody") is None
    await ref.stop()
    assert system.lookup("/w") is None


# -- discovery and publish ----------------------------------------------------


async def test_discover_finds_live_actors_of_a_class_or_subclass_in_start_order(system) -> None:
    await system.spawn(Worker, name="a")
    await system.spawn(Zoo, name="z")
    await system.spawn(BOXED["fail"], name="b")
    await system.spawn(Kennel, name="k")
    stopped = await system.spawn(Worker, name="s")
    await stopped.stop()
    assert paths(system.discover(Worker)) == ["/a", "/b"]
    assert paths(system.discover(Zoo)) == ["/z", "/k"]
    assert paths(system.discover(Actor)) == ["/a", "/z", "/b", "/k"]


@pytest.mark.parametrize(
    ("message_type", "expected"),
    [(Puppy, ["/z", "/k"]), (Cat, ["/z", "/k"]), (Record, ["/w"]), (Unknown, [])],
)
async def test_discover_by_handled_type_includes_handlers_for_base_classes(
    system, message_type, expected
) -> None:
    for cls, name in ((Zoo, "z"), (Worker, "w"), (Kennel, "k")):
        await system.spawn(cls, name=name)
    assert paths(system.discover(handles=message_type)) == expected


@pytest.mark.parametrize(
    ("policy", "accepted"), [("block", 1), ("drop_new", 1), ("drop_old", 2), ("fail", 1)]
)
async def test_publish_tells_every_handler_and_a_full_mailbox_is_a_dead_letter(
    system, gate, policy, accepted
) -> None:
    journal: list[object] = []
    await system.spawn(Worker, journal)
    busy = await system.spawn(Worker, gate=gate, mailbox_capacity=1, mailbox_overflow=policy)
    await park(busy, gate, "queued")
    await system.spawn(Zoo)  # no handler for Record: not a recipient
    before = system.dead_letters
    assert await asyncio.wait_for(system.publish(Record("news")), 5) == accepted
    assert system.dead_letters == before + 1
    await eventually(lambda: "news" in journal)


# -- tree ---------------------------------------------------------------------


def node(path: str, mailbox: int = 0, children: list[TreeNode] | None = None) -> TreeNode:
    return TreeNode(
        path=path,
        kind="actor",
        status="running",
        restarts=0,
        mailbox=mailbox,
        thread=None,
        thread_id=None,
        cpus=None,
        children=children or [],
    )


async def test_tree_is_a_snapshot_of_every_actor(system, gate) -> None:
    parent = await system.spawn(Worker, gate=gate, name="p")
    await parent.ask(SpawnChild("c"))
    await park(parent, gate, 1, 2)
    zoo = await system.spawn(Zoo, name="z")
    snapshot = system.tree()
    assert snapshot == [node("/p", mailbox=2, children=[node("/p/c")]), node("/z")]
    await zoo.stop()
    assert paths(snapshot) == ["/p", "/z"]
    assert paths(system.tree()) == ["/p"]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snapshot[0].status = "stopped"  # type: ignore[misc]


# -- shutdown and isolation ---------------------------------------------------


@pytest.mark.parametrize("failing", [None, "b"], ids=["clean", "an on_stop raises"])
async def test_leaving_the_system_stops_actors_in_reverse_start_order_without_raising(
    failing,
) -> None:
    order: list[str] = []
    async with ActorSystem("ordered") as system:
        for name in ("a", "b", "c"):
            await system.spawn(StopOrder, order, fail=name == failing, name=name)
    assert order == ["/c", "/b", "/a"]
    assert system.tree() == []


async def test_two_systems_do_not_see_each_other(system, fake_system) -> None:
    mine = await system.spawn(Worker)
    theirs = await fake_system.spawn(Worker)
    assert mine.path == theirs.path == "/worker-1"
    assert system.lookup("/worker-1") is mine
    assert fake_system.discover(Worker) == [theirs]
    assert await system.publish(Record("only mine")) == 1
    await theirs.stop()
    assert mine.is_alive
    assert system.discover(Worker) == [mine]


async def test_2000_actors_answer_concurrent_asks(system) -> None:
    refs = [await system.spawn(Worker) for _ in range(2000)]
    replies = await asyncio.wait_for(
        asyncio.gather(*(ref.proxy().add(i, 1) for i, ref in enumerate(refs))), 30
    )
    assert replies == list(range(1, 2001))


@pytest.mark.parametrize("name", ["", " w", "w ", "a b", "a\nb", "a\x00b", "a\tb", "a/b", ".."])
async def test_a_bad_actor_name_is_refused_with_a_value_error(system, name) -> None:
    with pytest.raises(ValueError, match="actor name"):
        await system.spawn(Worker, name=name)
    assert system.tree() == []


async def test_a_stop_returns_once_its_background_tasks_have_ended() -> None:
    """The metrics server's task was cancelled but not awaited: on uvloop its
    `finally` (closing the listening socket) ran a loop pass after the stop."""
    ended: list[str] = []
    entered = asyncio.Event()

    async def until_cancelled() -> None:
        entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("cleaned up")

    async with ActorSystem("background") as system:
        task = system.run_in_background(until_cancelled())
        await entered.wait()
    assert task.cancelled() and ended == ["cleaned up"]


async def test_a_background_task_that_ignores_its_cancellation_does_not_hold_a_stop_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(system_module, "BACKGROUND_CANCEL_WAIT", 0.05)
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await release.wait()

    async with ActorSystem("stubborn") as system:
        task = system.run_in_background(stubborn())
        await asyncio.sleep(0)
    assert not task.done() and not system.running
    release.set()
    await task
