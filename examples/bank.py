"""A tiny bank: accounts as actors, asks and tells, typed publish, a crash.

Run it with `python -m examples.bank`; it ends by itself and prints a summary.
"""

from __future__ import annotations

import asyncio

import attrs

from mycelium_actors import Actor, ActorStopped, ActorSystem, handler


@attrs.frozen
class Deposit:
    amount: int


@attrs.frozen
class GetBalance:
    pass


@attrs.frozen
class Audit:
    """Broadcast to every actor that handles it."""


class Account(Actor):
    mailbox_capacity = 64

    def __init__(self, owner: str) -> None:
        super().__init__()
        self.owner, self.balance = owner, 0

    @handler
    def deposit(self, msg: Deposit) -> int:
        if msg.amount < 0:
            raise ValueError(f"negative deposit for {self.owner}")
        self.balance += msg.amount
        return self.balance

    @handler
    def balance_of(self, msg: GetBalance) -> int:
        return self.balance

    @handler
    def audit(self, msg: Audit) -> None:
        self.context.log.info("audit", owner=self.owner, balance=self.balance)


async def main() -> dict[str, object]:
    async with ActorSystem("bank") as system:
        owners = ["alice", "bob", "carol"]
        refs = [await system.spawn(Account, owner, name=owner) for owner in owners]
        for i in range(300):
            await refs[i % 3].tell(Deposit(i))
        balances = {ref.name: await ref.ask(GetBalance()) for ref in refs}
        audited = await system.publish(Audit())
        try:
            await refs[1].ask(Deposit(-1))
        except ValueError as exc:
            crash = str(exc)
        try:
            await refs[1].ask(GetBalance())
            after_crash = "answered"
        except ActorStopped:
            after_crash = "stopped for good (no supervisor)"
        summary = {
            "balances": balances,
            "audited": audited,
            "crash": crash,
            "bob after the crash": after_crash,
            "live accounts": [ref.name for ref in system.discover(Account)],
        }
    for key, value in summary.items():
        print(f"{key:>20}: {value}")
    return summary


if __name__ == "__main__":
    asyncio.run(main())
