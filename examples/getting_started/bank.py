"""Getting started, file 1 of 2: the messages, an account actor and its tree."""

from __future__ import annotations

import attrs

from mycelium_actors import Actor, Child, Supervisor, handler


@attrs.frozen
class Deposit:
    amount: int


@attrs.frozen
class Withdraw:
    amount: int


@attrs.frozen
class GetBalance:
    pass


class InsufficientFunds(Exception):
    """A business error: the withdrawal is refused and the account is fine."""


class Account(Actor):
    def __init__(self, owner: str) -> None:
        super().__init__()
        self.owner = owner
        self.balance = 0

    async def on_start(self) -> None:
        self.context.log.info("account.opened", owner=self.owner)

    @handler
    def deposit(self, msg: Deposit) -> int:
        if msg.amount <= 0:
            raise ValueError(f"a deposit must be positive, not {msg.amount}")
        self.balance += msg.amount
        return self.balance

    @handler
    def withdraw(self, msg: Withdraw) -> int:
        if msg.amount > self.balance:
            raise InsufficientFunds(f"{self.owner}: insufficient funds")
        self.balance -= msg.amount
        return self.balance

    @handler
    def balance_of(self, msg: GetBalance) -> int:
        return self.balance


tree = Supervisor(
    "bank",
    strategy="one_for_one",
    max_restarts=3,
    within=5.0,
    children=[
        # A refused withdrawal is business as usual: resume, keeping the balance.
        # Any other exception is a crash: a fresh Account replaces this one.
        Child(Account, "alice", name="alice", resume_on=(InsufficientFunds,)),
        Child(Account, "bob", name="bob", resume_on=(InsufficientFunds,)),
    ],
)
