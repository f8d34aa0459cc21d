"""A supervised bank: accounts restart on a crash, an auditor ticks on a timer.

mycelium-actors tree supervisors.bank:tree
mycelium-actors run supervisors.bank:tree --status-every 5
"""

from __future__ import annotations

import attrs

from mycelium_actors import Actor, Backoff, Child, Supervisor, handler


@attrs.frozen
class Deposit:
    amount: int


@attrs.frozen
class GetBalance:
    pass


@attrs.frozen
class Tick:
    pass


@attrs.frozen
class Audit:
    """Broadcast with `system.publish` to every actor that handles it."""


class Account(Actor):
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


class Auditor(Actor):
    """Every `interval` seconds, asks every account for its balance and logs the total."""

    def __init__(self, interval: float = 2.0) -> None:
        super().__init__()
        self.interval = interval

    async def on_start(self) -> None:
        self.context.schedule_every(self.interval, Tick())

    @handler
    async def tick(self, msg: Tick) -> None:
        accounts = self.context.system.discover(Account)
        total = sum([await ref.ask(GetBalance(), timeout=1.0) for ref in accounts])
        self.context.log.info("audit", accounts=len(accounts), total=total)


tree = Supervisor(
    "bank",
    strategy="one_for_one",
    max_restarts=5,
    within=10.0,
    children=[
        Supervisor(
            "accounts",
            strategy="one_for_one",
            backoff=Backoff(min=0.05, max=1.0),
            children=[Child(Account, owner, name=owner) for owner in ("alice", "bob", "carol")],
        ),
        Child(Auditor, name="auditor", restart="transient", shutdown=2.0),
    ],
)
