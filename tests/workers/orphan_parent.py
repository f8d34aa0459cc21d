"""A parent process for the orphan test: spawns a worker, prints its pid, and
holds the worker busy (or idle) until this parent is killed."""

from __future__ import annotations

import asyncio
import sys

from wactors import Block, Counter, Pid

from mycelium_actors import ActorSystem, Subprocess


async def main(busy: bool) -> None:
    async with ActorSystem("orphan-parent") as system:
        ref = await system.spawn(Counter, name="c", executor=Subprocess())
        pid = await ref.ask(Pid())
        if busy:
            await ref.tell(Block(60))  # the worker's loop is held when we die
        print(pid, flush=True)
        await asyncio.sleep(60)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] == "busy"))
