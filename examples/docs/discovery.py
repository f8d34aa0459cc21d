"""Typed discovery and publish: find actors by class or by what they handle."""

from __future__ import annotations

import asyncio

import attrs

from mycelium_actors import Actor, ActorSystem, Child, Supervisor, handler


@attrs.frozen
class PriceChanged:
    symbol: str
    price: float


@attrs.frozen
class UrgentPriceChanged(PriceChanged):
    pass


class Trader(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.last: dict[str, float] = {}

    @handler
    def on_price(self, msg: PriceChanged) -> None:
        self.last[msg.symbol] = msg.price


class CautiousTrader(Trader):
    pass


class Clerk(Actor):
    pass


tree = Supervisor(
    "desk",
    children=[
        Child(Trader, name="ann"),
        Child(CautiousTrader, name="ben"),
        Child(Clerk, name="cal"),
    ],
)


async def main() -> dict[str, object]:
    async with ActorSystem("market") as system:
        await system.start(tree)
        solo = await system.spawn(Trader, name="solo")
        traders = system.discover(Trader)  # subclasses too, in start order
        cautious = system.discover(CautiousTrader)
        listeners = system.discover(handles=UrgentPriceChanged)  # a handler for it or a base
        delivered = await system.publish(UrgentPriceChanged("ACME", 9.5))  # never waits
        await solo.stop()
        after_stop = await system.publish(PriceChanged("ACME", 9.0))
        everyone = system.discover()  # every live actor (supervisors are not actors)
    return {
        "traders": [r.path for r in traders],
        "cautious": [r.path for r in cautious],
        "listeners": [r.path for r in listeners],
        "delivered": delivered,
        "after_stop": after_stop,
        "everyone": [r.path for r in everyone],
    }


if __name__ == "__main__":
    print(asyncio.run(main()))
