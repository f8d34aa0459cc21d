"""Lifecycle events in code: count crashes per actor with `system.events.subscribe`."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import attrs

from mycelium_actors import Actor, ActorSystem, Child, Supervisor, handler


@attrs.frozen
class Charge:
    cents: int


class Billing(Actor):
    @handler
    def charge(self, msg: Charge) -> int:
        if msg.cents < 0:
            raise ValueError(f"a negative charge: {msg.cents}")
        return msg.cents


async def main() -> dict[str, Any]:
    crashes: Counter[str] = Counter()
    seen: list[str] = []

    def on_event(event: dict[str, Any]) -> None:  # runs on the system's loop
        seen.append(event["event"])
        if event["event"] == "actor.crashed":
            crashes[event["path"]] += 1
            print(f"{event['path']} crashed: {event['exc_type']}: {event['error']}")

    async with ActorSystem("billing") as system:
        unsubscribe = system.events.subscribe(on_event)
        await system.start(Supervisor("root", children=[Child(Billing, name="billing")]))
        billing = system.lookup("/root/billing")
        assert billing is not None
        await billing.tell(Charge(-5))  # crashes; the supervisor restarts it
        print(await billing.ask(Charge(250)))  # the restarted instance answers: 250
        unsubscribe()
    return {"crashes": dict(crashes), "seen": seen}


if __name__ == "__main__":
    asyncio.run(main())
