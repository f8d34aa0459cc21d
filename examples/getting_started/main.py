"""Getting started, file 2 of 2: spawn, tell and ask; then the tree of bank.py."""

from __future__ import annotations

import asyncio

from bank import Account, Deposit, GetBalance, InsufficientFunds, Withdraw, tree

from mycelium_actors import ActorStopped, ActorSystem


async def unsupervised() -> None:
    async with ActorSystem("bank") as system:
        alice = await system.spawn(Account, "alice", name="alice")
        await alice.tell(Deposit(100))  # enqueue and return
        print("balance:", await alice.ask(Withdraw(30)))  # the handler's return value: 70
        try:
            await alice.ask(Withdraw(1_000))  # the handler raises ...
        except InsufficientFunds as exc:
            print("refused:", exc)  # ... and the asker gets the exception
        try:
            await alice.ask(GetBalance())
        except ActorStopped:
            print("alice: stopped for good")  # no supervisor: an exception is the end


async def supervised() -> None:
    async with ActorSystem("bank") as system:
        await system.start(tree)
        alice, bob = system.lookup("/bank/alice"), system.lookup("/bank/bob")
        assert alice is not None and bob is not None
        await alice.ask(Deposit(100))
        await bob.ask(Deposit(5))
        try:
            await alice.ask(Withdraw(1_000))
        except InsufficientFunds:
            pass  # resume_on: alice goes on with her state
        print("alice after a refusal:", await alice.ask(GetBalance()))  # 100
        try:
            await alice.ask(Deposit(-1))
        except ValueError:
            pass  # a crash: her supervisor restarts her
        print("alice after a crash:", await alice.ask(GetBalance()))  # same ref, new instance: 0
        print("bob:", await bob.ask(GetBalance()))  # one_for_one: bob is untouched, 5


if __name__ == "__main__":
    asyncio.run(unsupervised())
    asyncio.run(supervised())
