"""Refs: tell, ask, timeouts, ask_blocking from a plain thread, proxy, stop."""

from __future__ import annotations

import asyncio

import attrs

from mycelium_actors import Actor, ActorStopped, ActorSystem, AskTimeout, handler


@attrs.frozen
class Add:
    n: int


@attrs.frozen
class Nap:
    seconds: float


class Counter(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    @handler
    def add(self, msg: Add) -> int:
        self.total += msg.n
        return self.total

    @handler
    async def nap(self, msg: Nap) -> str:
        await asyncio.sleep(msg.seconds)
        return "rested"

    def reset(self, to: int = 0) -> int:  # a plain method: reachable through proxy()
        self.total = to
        return self.total


async def main() -> dict[str, object]:
    async with ActorSystem("refs") as system:
        counter = await system.spawn(Counter, name="counter")
        await counter.tell(Add(1))  # waits only if the mailbox is full ("block")
        counter.tell_nowait(Add(1))  # never waits; any thread
        total = await counter.ask(Add(1))  # 3

        try:
            await counter.ask(Nap(0.2), timeout=0.05)
        except AskTimeout:  # also a TimeoutError
            timed_out = True  # the Nap is still handled; its reply is dropped

        # From a plain thread (no event loop there), like pykka's ask().get():
        from_thread = await asyncio.to_thread(counter.ask_blocking, Add(10))

        reset = await counter.proxy().reset(to=100)  # the method runs inside the actor

        await counter.stop()  # graceful: what is queued is handled first
        try:
            await counter.ask(Add(1))
        except ActorStopped:
            stopped = not counter.is_alive
    return {
        "total": total,
        "timed_out": timed_out,
        "from_thread": from_thread,
        "reset": reset,
        "stopped": stopped,
        "name": counter.name,
    }


if __name__ == "__main__":
    print(asyncio.run(main()))
