"""Handler dispatch: annotations, `@handler(T)`, unions, base classes, `on_receive`."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from mycelium_actors import Actor, ActorSystem, UnhandledMessage, handler


@attrs.frozen
class Event:
    pass


@attrs.frozen
class Payment(Event):
    amount: int


@attrs.frozen
class Refund(Payment):
    pass


@attrs.frozen
class Opened(Event):
    pass


@attrs.frozen
class Ping:
    pass


@attrs.frozen
class Pause:
    pass


@attrs.frozen
class Resume:
    pass


class Ledger(Actor):
    @handler
    def any_event(self, msg: Event) -> str:  # Event and every subclass without a closer match
        return "event"

    @handler
    async def payment(self, msg: Payment) -> str:  # also gets Refund: the closest base wins
        await asyncio.sleep(0)
        return f"payment of {msg.amount}"

    @handler(Ping)  # the type named explicitly; the annotation is not read
    def ping(self, msg: Any) -> str:
        return "pong"

    @handler
    def flow(self, msg: Pause | Resume) -> str:  # a union registers every member
        return type(msg).__name__.lower()


class Catchall(Ledger):
    async def on_receive(self, message: Any) -> Any:  # whatever no handler matches
        return f"fallback for {type(message).__name__}"


class Overridden(Ledger):
    @handler  # an override must be marked again ...
    def payment(self, msg: Payment) -> str:
        return "overridden"


class NotOverridden(Ledger):
    def payment(self, msg: Payment) -> str:  # ... or the base class handler still runs
        return "never called for a Payment"


async def main() -> dict[str, object]:
    async with ActorSystem("dispatch") as system:
        ledger = await system.spawn(Ledger, name="ledger")
        replies = [
            await ledger.ask(msg)
            for msg in (Payment(5), Refund(2), Opened(), Ping(), Pause(), Resume())
        ]
        try:
            await ledger.ask("hello")  # no handler, no on_receive
        except UnhandledMessage:
            replies.append("unhandled")
        await ledger.tell("hello")  # a told message with no handler: a dead letter
        await ledger.ask(Ping())  # (by now the tell above has been handled)
        catchall = await system.spawn(Catchall, name="catchall")
        replies.append(await catchall.ask("hello"))
        replies.append(await catchall.ask(Refund(1)))  # handlers still come first
        dead_letters = system.dead_letters
        overrides = [
            await (await system.spawn(cls)).ask(Payment(1)) for cls in (Overridden, NotOverridden)
        ]
    return {"replies": replies, "dead_letters": dead_letters, "overrides": overrides}


if __name__ == "__main__":
    print(asyncio.run(main()))
