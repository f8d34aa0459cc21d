"""Getting started: an actor with handlers, spawn/tell/ask, and a supervision tree.

python -m examples.docs.getting_started
mycelium-actors tree examples.docs.getting_started:tree
mycelium-actors run examples.docs.getting_started:tree
"""

from __future__ import annotations

import asyncio

import attrs

from mycelium_actors import Actor, ActorStopped, ActorSystem, Child, Supervisor, handler


@attrs.frozen
class Deposit:
    amount: int


@attrs.frozen
class Withdraw:
    amount: int


@attrs.frozen
class GetBalance:
    pass


class Account(Actor):
    def __init__(self, owner: str) -> None:
        super().__init__()
        self.owner = owner
        self.balance = 0

    async def on_start(self) -> None:
        self.context.log.info("account.opened", owner=self.owner)

    @handler
    def deposit(self, msg: Deposit) -> int:
        self.balance += msg.amount
        return self.balance

    @handler
    def withdraw(self, msg: Withdraw) -> int:
        if msg.amount > self.balance:
            raise ValueError(f"{self.owner}: insufficient funds")
        self.balance -= msg.amount
        return self.balance

    @handler
    def balance_of(self, msg: GetBalance) -> int:
        return self.balance


async def unsupervised() -> dict[str, object]:
    async with ActorSystem("bank") as system:
        alice = await system.spawn(Account, "alice", name="alice")
        await alice.tell(Deposit(100))  # enqueue and return
        balance = await alice.ask(Withdraw(30))  # the handler's return value: 70
        try:
            await alice.ask(Withdraw(1_000))  # the handler raises ...
        except ValueError as exc:
            error = str(exc)  # ... and the asker gets the exception
        try:
            await alice.ask(GetBalance())
        except ActorStopped:
            after = "stopped for good"  # no supervisor: a crash is the end
    return {"path": alice.path, "balance": balance, "error": error, "after": after}


tree = Supervisor(
    "bank",
    strategy="one_for_one",
    max_restarts=3,
    within=5.0,
    children=[
        Child(Account, "alice", name="alice"),
        Child(Account, "bob", name="bob"),
    ],
)


async def supervised() -> dict[str, object]:
    async with ActorSystem("bank") as system:
        await system.start(tree)
        alice, bob = system.lookup("/bank/alice"), system.lookup("/bank/bob")
        assert alice is not None and bob is not None
        await alice.ask(Deposit(100))
        await bob.ask(Deposit(5))
        try:
            await alice.ask(Withdraw(1_000))
        except ValueError:
            pass  # alice crashed; her supervisor restarts her
        alice_now = await alice.ask(GetBalance())  # same ref, new instance: 0
        bob_now = await bob.ask(GetBalance())  # one_for_one: bob is untouched, 5
    return {"path": alice.path, "alice": alice_now, "bob": bob_now}


if __name__ == "__main__":
    print(asyncio.run(unsupervised()))
    print(asyncio.run(supervised()))
