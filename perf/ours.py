"""The workloads on mycelium-actors, written the way a user would write them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from mycelium_actors import Actor, ActorRef, ActorSystem, handler

from .meter import Meter
from .workloads import RING_SIZE, ring_links


class Counter(Actor):
    def __init__(self, n: int, done: asyncio.Future[None]) -> None:
        super().__init__()
        self.left, self.done = n, done

    @handler
    def count(self, msg: int) -> None:
        self.left -= 1
        if not self.left:
            self.done.set_result(None)


class Echo(Actor):
    @handler
    def echo(self, msg: int) -> int:
        return msg


class Hop(Actor):
    def __init__(self, done: asyncio.Future[None]) -> None:
        super().__init__()
        self.done = done
        self.next: ActorRef[Hop] | None = None

    @handler
    def link(self, nxt: ActorRef) -> None:  # type: ignore[type-arg]
        self.next = nxt

    @handler
    async def hop(self, token: int) -> None:
        if token:
            await self.next.tell(token - 1)  # type: ignore[union-attr]
        else:
            self.done.set_result(None)


class Idle(Actor):
    pass


Workload = Callable[[ActorSystem, int, Meter], Awaitable[None]]


def in_system(workload: Workload) -> Callable[[int, Meter], Awaitable[None]]:
    """Run the workload inside a fresh `ActorSystem`."""

    @wraps(workload)
    async def run(n: int, meter: Meter) -> None:
        async with ActorSystem("perf") as system:
            await workload(system, n, meter)

    return run


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


@in_system
async def tell(system: ActorSystem, n: int, meter: Meter) -> None:
    done = _future()
    ref = await system.spawn(Counter, n, done)
    with meter:
        for i in range(n):
            await ref.tell(i)
        await done


@in_system
async def ask(system: ActorSystem, n: int, meter: Meter) -> None:
    ref = await system.spawn(Echo)
    with meter:
        for i in range(n):
            await ref.ask(i)


@in_system
async def ring(system: ActorSystem, n: int, meter: Meter) -> None:
    done = _future()
    refs = [await system.spawn(Hop, done) for _ in range(RING_SIZE)]
    for ref, nxt in ring_links(refs):
        await ref.tell(nxt)
    with meter:
        await refs[0].tell(n)
        await done


@in_system
async def spawn_one(system: ActorSystem, n: int, meter: Meter) -> None:
    with meter:
        for _ in range(n):
            ref = await system.spawn(Idle)
            await ref.stop()


@in_system
async def spawn_batch(system: ActorSystem, n: int, meter: Meter) -> None:
    with meter:
        refs = [await system.spawn(Idle) for _ in range(n)]
        await asyncio.gather(*(ref.stop() for ref in refs))


@in_system
async def memory(system: ActorSystem, n: int, meter: Meter) -> None:
    with meter:
        for _ in range(n):
            await system.spawn(Idle)
