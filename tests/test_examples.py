"""Every example runs and shows what it claims."""

from __future__ import annotations

from examples import bank


async def test_bank_example_reports_balances_and_the_crash() -> None:
    summary = await bank.main()
    assert summary["balances"] == {"alice": 14850, "bob": 14950, "carol": 15050}
    assert summary["audited"] == 3
    assert summary["live accounts"] == ["alice", "carol"]
