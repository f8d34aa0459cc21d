"""Every example runs and shows what it claims."""

from __future__ import annotations

import pytest

from examples import bank, market_demo, process_pool, remote_demo
from supervisors.market import Chaos


async def test_bank_example_reports_balances_and_the_crash() -> None:
    summary = await bank.main()
    assert summary["balances"] == {"alice": 14850, "bob": 14950, "carol": 15050}
    assert summary["audited"] == 3
    assert summary["live accounts"] == ["alice", "carol"]


async def test_market_demo_repairs_every_injected_fault_and_loses_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = await market_demo.main(seconds=1.5, chaos=Chaos(malformed_every=200, drop_every=0.4))

    assert all(summary.handled.values()), summary.handled
    malformed, drops = summary.injected["malformed ticks"], summary.injected["connection drops"]
    assert malformed > 0 and drops > 0
    normalizer = summary.faults["marketdata/normalizer"]
    exchange = summary.faults["execution/exchange"]
    assert normalizer.crashes == normalizer.recovered == malformed
    assert exchange.crashes == exchange.recovered == drops
    assert summary.restarts["marketdata/normalizer"] == malformed
    # rest_for_one: the gateway restarts after every reconnect of the exchange before it
    assert summary.restarts["execution/exchange"] == summary.restarts["execution/gateway"] == drops
    assert summary.restarts["strategies/momentum"] == summary.restarts["risk"] == 0
    assert summary.lost == dict.fromkeys(summary.lost, 0)
    assert summary.where["strategies/meanrev"].startswith("own thread")
    assert "Check: OK" in capsys.readouterr().out


async def test_remote_demo_runs_execution_in_another_process_and_loses_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = await remote_demo.main(seconds=1.5, chaos=Chaos(malformed_every=200))

    assert summary.ok, summary
    pipeline = summary.pipeline
    assert pipeline.ok and pipeline.lost == dict.fromkeys(pipeline.lost, 0)
    assert summary.node_names == ["market"]
    # the venue drops its exchange connection every second: repaired over there
    drops = pipeline.injected["connection drops"]
    assert drops >= 1 and summary.venue_restarts == 2 * drops
    assert (
        pipeline.restarts["execution/gateway"] == pipeline.restarts["execution/exchange"] == drops
    )
    assert pipeline.where["execution/gateway"].startswith("other process")
    assert pipeline.restarts["marketdata/normalizer"] == pipeline.injected["malformed ticks"] > 0
    out = capsys.readouterr().out
    assert "Check: OK" in out and "Remote check: OK" in out


async def test_process_pool_survives_a_kill_9_and_leaves_no_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = await process_pool.main(jobs=80, paths=5_000)
    one, pool = summary["runs"]
    assert (one.workers, one.priced, one.restarts) == (1, 80, [0])
    assert pool.priced == 80
    assert pool.restarts[0] == 1 and not any(pool.restarts[1:])  # only the killed one
    assert summary["left"] == []
    assert "was killed with SIGKILL midway" in capsys.readouterr().out
