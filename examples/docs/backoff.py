"""Exponential backoff between restarts, measured on fake time."""

from __future__ import annotations

import asyncio

import attrs

from mycelium_actors import Actor, ActorSystem, Backoff, Child, Supervisor, handler
from mycelium_actors.testing import FakeClock


@attrs.frozen
class Crash:
    pass


class Timed(Actor):
    def __init__(self, starts: list[float]) -> None:
        super().__init__()
        self.starts = starts

    async def on_start(self) -> None:
        self.starts.append(self.context.system.clock.now())

    @handler
    def crash(self, msg: Crash) -> None:
        raise RuntimeError("crash")


async def delays(crashes: int, pause_before_last: float = 0.0) -> list[float]:
    """Crash right after each restart; return the delay before each restart."""
    clock = FakeClock()
    starts: list[float] = []
    tree = Supervisor(
        "root",
        max_restarts=100,
        within=60.0,
        backoff=Backoff(min=1.0, max=10.0, jitter=0.0),  # reset_after: (1 + 10) / 2 = 5.5
        children=[Child(Timed, starts, name="t")],
    )
    found = []
    async with ActorSystem("backoff", clock=clock) as system:
        await system.start(tree)
        t = system.lookup("/root/t")
        assert t is not None
        for i in range(crashes):
            if i == crashes - 1:
                await clock.advance(pause_before_last)  # ran this long without a crash
            crashed_at = clock.now()
            await t.tell(Crash())
            await clock.advance(0)  # let the crash happen at crashed_at
            while len(starts) < i + 2:
                await clock.advance(0.25)
            found.append(starts[-1] - crashed_at)
    return found


async def main() -> dict[str, list[float]]:
    return {
        "back to back": await delays(7),
        "after a quiet 5.5 s": await delays(4, pause_before_last=5.5),
    }


if __name__ == "__main__":
    print(asyncio.run(main()))
