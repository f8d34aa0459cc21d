"""Refs inside messages to and from a worker process, over its private link
(the parent does not listen on any network)."""

from __future__ import annotations

from typing import Any

import pytest
from wactors import Add, Back, Counter, Get, Greet, Here, Introduce, Me, Note, Pid

from mycelium_actors import Actor, ActorRef, ActorSystem, SerializationError, Subprocess, handler
from mycelium_actors.testing import eventually


class Collector(Actor):
    """An actor of the parent: keeps what it is told; `Get` counts the notes."""

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []
        self.refs: list[ActorRef[Any]] = []

    @handler
    def note(self, msg: Note) -> None:
        self.notes.append(msg.text)

    @handler
    def here(self, msg: Here) -> None:
        self.refs.append(msg.ref)

    @handler
    def get(self, msg: Get) -> int:
        return len(self.notes)


@pytest.fixture
async def pair(system: ActorSystem) -> tuple[ActorRef[Any], ActorRef[Any], Collector]:
    assert system.address is None  # nothing listens
    collector = await system.spawn(Collector, name="collector")
    worker = await system.spawn(Counter, name="w", executor=Subprocess())
    instance = collector._slot.instance
    assert isinstance(instance, Collector)
    return worker, collector, instance


async def test_a_parent_ref_sent_to_a_worker_can_be_told_and_asked(
    pair: tuple[ActorRef[Any], ActorRef[Any], Collector],
) -> None:
    worker, collector, instance = pair
    pid = await worker.ask(Pid())
    assert await worker.ask(Greet(collector)) == 1  # its tell arrived before its ask
    assert instance.notes == [f"hello from {pid}"]


async def test_the_workers_own_ref_sent_to_the_parent_is_the_slots_ref(
    system: ActorSystem, pair: tuple[ActorRef[Any], ActorRef[Any], Collector]
) -> None:
    worker, collector, instance = pair
    await worker.tell(Introduce(collector))
    (ref,) = await eventually(lambda: instance.refs)
    assert ref is worker
    assert ref == system.lookup("/w")
    reply = await worker.ask(Me())
    assert reply.ref is worker
    assert await reply.ref.ask(Get()) == 0


async def test_a_parent_ref_sent_back_from_the_worker_is_the_parents_own(
    pair: tuple[ActorRef[Any], ActorRef[Any], Collector],
) -> None:
    worker, collector, _ = pair
    reply = await worker.ask(Back(collector))
    assert reply.ref is collector


async def test_a_ref_of_another_system_is_refused_at_the_sender(
    pair: tuple[ActorRef[Any], ActorRef[Any], Collector],
) -> None:
    worker, _, _ = pair
    async with ActorSystem("elsewhere") as other:
        stranger = await other.spawn(Collector)
        with pytest.raises(SerializationError, match="not an actor of this system"):
            await worker.tell(Introduce(stranger))


async def test_a_worker_reaches_another_worker_through_the_parent(
    system: ActorSystem, pair: tuple[ActorRef[Any], ActorRef[Any], Collector]
) -> None:
    worker, _, _ = pair
    other = await system.spawn(Counter, name="other", executor=Subprocess())
    await other.tell(Add(7))
    assert await worker.ask(Greet(other)) == 7  # its Note: a dead letter there
