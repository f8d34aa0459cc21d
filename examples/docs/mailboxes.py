"""The four overflow policies, on a mailbox of capacity 2 that is full."""

from __future__ import annotations

import asyncio

import attrs

from mycelium_actors import Actor, ActorSystem, MailboxFull, handler


@attrs.frozen
class Hold:
    """Parks the handler until the gate opens, so the mailbox fills up."""


@attrs.frozen
class Note:
    text: str


class Recorder(Actor):
    mailbox_capacity = 2  # class defaults; spawn() and Child() can override both
    mailbox_overflow = "block"

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__()
        self.gate = gate
        self.seen: list[str] = []

    @handler
    async def hold(self, msg: Hold) -> None:
        await self.gate.wait()

    @handler
    def note(self, msg: Note) -> list[str]:
        self.seen.append(msg.text)
        return self.seen


async def overflow(policy: str) -> dict[str, object]:
    """Fill the mailbox, send a third note, then let everything drain."""
    gate = asyncio.Event()
    async with ActorSystem("mailboxes") as system:
        ref = await system.spawn(Recorder, gate, mailbox_overflow=policy)
        await ref.tell(Hold())
        await asyncio.sleep(0)  # the handler takes Hold: the mailbox is empty again
        await ref.tell(Note("a"))
        await ref.tell(Note("b"))  # now full
        third = asyncio.create_task(ref.tell(Note("c")))
        await asyncio.sleep(0.01)
        if third.done():
            outcome = "raised MailboxFull" if third.exception() else "returned"
        else:
            outcome = "waiting"  # "block": backpressure on the sender
        gate.set()
        if outcome == "waiting":
            await third  # space freed: the waiting tell goes in, in FIFO order
        await asyncio.sleep(0.01)  # let the queue drain before the last ask
        seen = await ref.ask(Note("d"))
    return {"third": outcome, "handled": seen[:-1], "dead_letters": system.dead_letters}


async def main() -> dict[str, dict[str, object]]:
    return {p: await overflow(p) for p in ("block", "drop_new", "drop_old", "fail")}


async def tell_nowait_when_full() -> str:
    gate = asyncio.Event()
    async with ActorSystem("mailboxes") as system:
        ref = await system.spawn(Recorder, gate, mailbox_capacity=1)
        await ref.tell(Hold())
        await asyncio.sleep(0)
        ref.tell_nowait(Note("a"))
        try:
            ref.tell_nowait(Note("b"))  # "block" cannot wait here: it raises instead
        except MailboxFull:
            result = "MailboxFull"
        gate.set()
    return result


if __name__ == "__main__":
    for policy, result in asyncio.run(main()).items():
        print(f"{policy:>8}: {result}")
