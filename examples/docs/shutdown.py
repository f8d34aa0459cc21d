"""Shutdown order and timeouts: a clean stop, a kill after the timeout, a kill at
once (shutdown=0), and a child that ignores the kill and is abandoned."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from mycelium_actors import Actor, ActorSystem, Child, Supervisor


class Slow(Actor):
    def __init__(self, journal: list[str], stop_takes: float, stubborn: bool = False) -> None:
        super().__init__()
        self.journal, self.stop_takes, self.stubborn = journal, stop_takes, stubborn

    async def on_stop(self) -> None:
        name = self.context.self_ref.name
        self.journal.append(f"on_stop:{name}")
        try:
            await asyncio.sleep(self.stop_takes)
            self.journal.append(f"done:{name}")
        except asyncio.CancelledError:
            self.journal.append(f"cancelled:{name}")
            if self.stubborn:
                await asyncio.sleep(0.5)  # swallows the cancellation: a bad idea
            else:
                raise


def build(journal: list[str]) -> Supervisor:
    return Supervisor(
        "root",
        children=[
            Child(Slow, journal, 0.0, name="quick"),  # on_stop finishes in time
            Child(Slow, journal, 10.0, name="slow", shutdown=0.1),  # cancelled after 0.1 s
            Child(Slow, journal, 10.0, name="brutal", shutdown=0),  # cancelled at once
            Child(Slow, journal, 10.0, True, name="stubborn", shutdown=0.1),  # abandoned
        ],
    )


async def main() -> dict[str, Any]:
    journal: list[str] = []
    with structlog.testing.capture_logs() as logs:
        async with ActorSystem("shutdown", kill_grace=0.2) as system:
            await system.start(build(journal))
            began = time.monotonic()
        elapsed = time.monotonic() - began  # about 0.1 + 0.2 + 0.1 seconds
    return {
        "journal": journal,
        "stopped": [(e["path"], e["reason"]) for e in logs if e["event"] == "actor.stopped"],
        "abandoned": [e["path"] for e in logs if e["event"] == "actor.abandoned"],
        "elapsed": elapsed,
    }


if __name__ == "__main__":
    print(asyncio.run(main()))
