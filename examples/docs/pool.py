"""A pool of interchangeable workers behind one ref: routing, a crash, discovery, the tree."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from mycelium_actors import Actor, ActorSystem, Pool, Supervisor, handler


@attrs.frozen
class Resize:
    width: int


@attrs.frozen
class Corrupt:
    """A message the worker cannot survive."""


class Resizer(Actor):
    def __init__(self, quality: int) -> None:
        super().__init__()
        self.quality = quality

    @handler
    def resize(self, msg: Resize) -> str:
        return f"{self.context.self_ref.name} resized to {msg.width} at q{self.quality}"

    @handler
    def corrupt(self, msg: Corrupt) -> None:
        raise ValueError("corrupt image")


async def main() -> dict[str, Any]:
    tree = Supervisor(
        "root",
        children=[
            Pool(Resizer, 85, size=3, name="resizers"),  # 85 goes to every worker
        ],
    )
    async with ActorSystem("pool") as system:
        await system.start(tree)
        resizers = system.lookup("/root/resizers")
        assert resizers is not None
        answers = [await resizers.ask(Resize(w)) for w in (100, 200, 300, 400)]
        try:
            await resizers.ask(Corrupt())  # worker 1 crashes and is restarted on its own
        except ValueError as exc:
            crashed = str(exc)
        after = [await resizers.ask(Resize(500)) for _ in range(3)]
        (pool,) = (n for n in system.tree()[0].children if n.path == "/root/resizers")
        return {
            "answers": answers,
            "crashed": crashed,
            "after": after,
            "discover": [ref.path for ref in system.discover(Resizer)],
            "tree": (pool.kind, [(n.path, n.kind, n.restarts) for n in pool.children]),
        }


if __name__ == "__main__":
    print(asyncio.run(main()))
