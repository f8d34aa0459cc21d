"""Restart intensity is a sliding window, shown on fake time.

max_restarts=3, within=5.0: crashes at t = 0, 1, 2 and 5.5 are restarted (t = 0
has left the window by 5.5); a crash at t = 6.0 finds 1, 2, 5.5 and 6.0 inside
the window (the edge counts), which is four restarts: the supervisor gives up.
"""

from __future__ import annotations

import asyncio

from mycelium_actors import Actor, ActorSystem, Child, Supervisor, handler
from mycelium_actors.testing import FakeClock

from .supervision_tree import Crash, Ping


class Flaky(Actor):
    @handler
    def crash(self, msg: Crash) -> None:
        raise RuntimeError("crash")

    @handler
    def ping(self, msg: Ping) -> str:
        return "pong"


async def crash_at(times: list[float]) -> list[tuple[float, str]]:
    clock = FakeClock()
    tree = Supervisor("root", max_restarts=3, within=5.0, children=[Child(Flaky, name="f")])
    outcomes = []
    async with ActorSystem("window", clock=clock) as system:
        await system.start(tree)
        f = system.lookup("/root/f")
        assert f is not None
        for t in times:
            await clock.advance(t - clock.now())
            await f.tell(Crash())
            try:
                await f.ask(Ping())  # answered by the restarted instance ...
                outcomes.append((t, "restarted"))
            except Exception:  # ... unless the supervisor gave up (ActorStopped)
                await system.wait_stopped()
                outcomes.append((t, "gave up"))
                break
    return outcomes


async def main() -> list[tuple[float, str]]:
    return await crash_at([0.0, 1.0, 2.0, 5.5, 6.0])


if __name__ == "__main__":
    for t, outcome in asyncio.run(main()):
        print(f"t={t:<4} {outcome}")
