"""`self.context`: timers, child actors, death watch, stop(), pipe_to_self."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from mycelium_actors import Actor, ActorRef, ActorSystem, Terminated, handler


@attrs.frozen
class Beat:
    pass


@attrs.frozen
class Deadline:
    pass


@attrs.frozen
class Quit:
    pass


@attrs.frozen
class Report:
    pass


class Worker(Actor):
    @handler
    def quit(self, msg: Quit) -> None:
        self.context.stop()  # ends after this message, reason "normal"


class Manager(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.beats = 0
        self.ended: tuple[str, str] | None = None

    async def on_start(self) -> None:
        ctx = self.context
        self.worker: ActorRef[Worker] = await ctx.spawn(Worker, name="worker")
        ctx.watch(self.worker)  # one Terminated when it stops for good
        self.ticker = ctx.schedule_every(0.01, Beat())  # a self-message every 10 ms
        ctx.schedule_once(0.05, Deadline())  # one self-message after 50 ms

    @handler
    def beat(self, msg: Beat) -> None:
        self.beats += 1

    @handler
    async def deadline(self, msg: Deadline) -> None:
        self.ticker.cancel()
        await self.worker.tell(Quit())

    @handler
    def terminated(self, msg: Terminated) -> None:
        self.ended = (msg.ref.path, msg.reason)

    @handler
    def report(self, msg: Report) -> dict[str, Any]:
        return {"beats": self.beats, "ended": self.ended, "worker": self.worker.path}


@attrs.frozen
class Fetch:
    key: str


@attrs.frozen
class Fetched:
    outcome: Any  # the awaitable's result, or the exception it raised


@attrs.frozen
class Results:
    pass


async def slow_lookup(key: str) -> str:
    await asyncio.sleep(0.02)
    if key == "missing":
        raise KeyError(key)
    return key.upper()


class Fetcher(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.results: list[Any] = []

    @handler
    def fetch(self, msg: Fetch) -> None:
        # The lookup runs beside the mailbox; its outcome comes back as a message.
        self.context.pipe_to_self(slow_lookup(msg.key), wrap=Fetched)

    @handler
    def fetched(self, msg: Fetched) -> None:
        self.results.append(msg.outcome)

    @handler
    def get_results(self, msg: Results) -> list[Any]:
        return list(self.results)


async def main() -> dict[str, Any]:
    async with ActorSystem("context") as system:
        manager = await system.spawn(Manager, name="manager")
        await asyncio.sleep(0.1)
        report = await manager.ask(Report())

        fetcher = await system.spawn(Fetcher, name="fetcher")
        await fetcher.tell(Fetch("ok"))
        await fetcher.tell(Fetch("missing"))
        while_fetching = await fetcher.ask(Results())  # answered at once: []
        while len(results := await fetcher.ask(Results())) < 2:
            await asyncio.sleep(0.01)
    return {**report, "while_fetching": while_fetching, "results": results}


if __name__ == "__main__":
    print(asyncio.run(main()))
