"""Lifecycle events: what a supervised crash and a shutdown log."""

from __future__ import annotations

import asyncio

import structlog

from mycelium_actors import ActorSystem, Child, Supervisor

from .intensity import Crash, Flaky, Ping


async def main() -> list[tuple[str, str, str]]:
    with structlog.testing.capture_logs() as logs:
        async with ActorSystem("events") as system:
            await system.start(Supervisor("root", children=[Child(Flaky, name="f")]))
            f = system.lookup("/root/f")
            assert f is not None
            await f.tell(Crash())
            await f.ask(Ping())  # answered by the restarted instance
            await asyncio.sleep(0.01)  # let the supervisor record the restart
    return [
        (e["event"], e["path"], e.get("reason") or e.get("during") or "")
        for e in logs
        if e["event"].startswith(("actor.", "supervisor."))
    ]


if __name__ == "__main__":
    for line in asyncio.run(main()):
        print(*line)
