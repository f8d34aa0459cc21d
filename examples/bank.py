"""A tiny bank: accounts as actors, asks and tells, typed publish, a crash.

Run it with `python -m examples.bank`; it ends by itself and prints a summary.
"""

from __future__ import annotations

import asyncio

from mycelium_actors import ActorStopped, ActorSystem
from supervisors.bank import Account, Audit, Deposit, GetBalance


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
