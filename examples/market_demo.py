"""The market pipeline of `supervisors/market.py`, run for a few seconds with faults injected.

Run it with `python -m examples.market_demo`: it ends by itself and prints what
each stage handled, which faults were injected, how the supervisors repaired
them, and a final check that nothing was lost.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import attrs
import structlog

from contracts.market import Drain
from mycelium_actors import ActorSystem, TreeNode
from supervisors.market import Chaos, FaultLog, Stats, build_tree

# Stage (path below /market) -> the counter of messages it handled, in data-flow order.
STAGES = {
    "marketdata/feed": "feed",
    "marketdata/normalizer": "normalizer",
    "strategies/momentum": "momentum",
    "strategies/meanrev": "meanrev",
    "risk": "risk",
    "execution/gateway": "gateway",
    "execution/exchange": "exchange",
}
STRATEGIES = ("momentum", "meanrev")
# Injected fault -> the counter that injects it, the stage it crashes, and the repair.
FAULTS = {
    "malformed ticks": (
        "feed.malformed",
        "marketdata/normalizer",
        "marketdata restarts it at once (one_for_one)",
    ),
    "connection drops": (
        "exchange.drops",
        "execution/exchange",
        "execution reconnects it with backoff, then restarts the gateway (rest_for_one)",
    ),
}


@attrs.frozen
class Summary:
    seconds: float
    handled: dict[str, int]  # stage -> messages handled
    ticks_per_second: float
    restarts: dict[str, int]  # stage -> restarts, from system.tree()
    where: dict[str, str]  # stage -> "system loop" or its thread and CPUs
    injected: dict[str, int]  # fault kind -> how many were injected
    faults: dict[str, FaultLog]  # stage -> its crashes and recoveries
    orders: dict[str, int]  # "approved" / "rejected" by risk
    lost: dict[str, int]  # what went missing; all should be 0

    @property
    def problems(self) -> list[str]:
        """What went wrong; empty when the run shows what it claims."""
        found = [f"{stage} handled nothing" for stage, n in self.handled.items() if n == 0]
        for kind, (_, stage, _) in FAULTS.items():
            log = self.faults[stage]
            if not log.crashes == log.recovered == self.injected[kind] > 0:
                found.append(
                    f"{self.injected[kind]} {kind}, {stage} crashed {log.crashes}x "
                    f"and recovered {log.recovered}x"
                )
        found += [f"lost {n} {what}" for what, n in self.lost.items() if n]
        return found

    @property
    def ok(self) -> bool:
        return not self.problems


def summarize(stats: Stats, nodes: list[TreeNode], seconds: float) -> Summary:
    by_stage = {node.path.removeprefix("/market/"): node for node in _walk(nodes)}
    count = stats.count
    valid = count["feed"] - count["feed.malformed"]
    lost = {"ticks before the strategies": valid - count["normalizer"]}
    lost |= {f"ticks at {name}": count["normalizer"] - count[name] for name in STRATEGIES}
    lost["approved orders"] = count["risk.approved"] - count["exchange"]
    return Summary(
        seconds=seconds,
        handled={stage: count[key] for stage, key in STAGES.items()},
        ticks_per_second=count["normalizer"] / seconds,
        restarts={stage: by_stage[stage].restarts for stage in STAGES},
        where={stage: _where(by_stage[stage]) for stage in STAGES},
        injected={kind: count[counter] for kind, (counter, _, _) in FAULTS.items()},
        faults={
            stage: stats.faults.get(f"/market/{stage}", FaultLog())
            for _, stage, _ in FAULTS.values()
        },
        orders={verdict: count[f"risk.{verdict}"] for verdict in ("approved", "rejected")},
        lost=lost,
    )


def _walk(nodes: list[TreeNode]) -> Iterator[TreeNode]:
    for node in nodes:
        yield node
        yield from _walk(node.children)


def _where(node: TreeNode) -> str:
    return "system loop" if node.thread is None else f"own thread, cpus={node.cpus}"


def render(s: Summary) -> str:
    lines = [
        f"Market pipeline ran {s.seconds:.1f} s: {s.handled['marketdata/normalizer']:,} ticks "
        f"normalized ({s.ticks_per_second:,.0f} ticks/s), "
        f"{sum(s.handled.values()):,} messages handled "
        f"({sum(s.handled.values()) / s.seconds:,.0f}/s).",
        "",
        f"  {'stage':<24}{'handled':>9}{'restarts':>10}  runs on",
    ]
    for stage, handled in s.handled.items():
        lines.append(f"  {stage:<24}{handled:>9,}{s.restarts[stage]:>10}  {s.where[stage]}")
    lines += [
        "",
        f"Risk approved {s.orders['approved']:,} orders and rejected {s.orders['rejected']:,} "
        "(position limit).",
        "",
        "Faults injected, and how the supervisors repaired them:",
    ]
    for kind, (_, stage, repair) in FAULTS.items():
        log = s.faults[stage]
        lines += [
            f"  {s.injected[kind]} {kind}: {stage} crashed {log.crashes}x ({log.last_error})",
            f"    {repair}: recovered {log.recovered}x, slowest in {log.slowest * 1000:.1f} ms",
        ]
    total = sum(s.injected.values())
    verdict = "; ".join(s.problems) or (
        f"{total}/{total} faults recovered, every valid tick reached both strategies, "
        "every approved order was filled"
    )
    lines += ["", f"Check: {'OK' if s.ok else 'FAILED'}: {verdict}."]
    return "\n".join(lines)


def _one_line_errors(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    exc = event.pop("exc_info", None)
    if isinstance(exc, BaseException):
        event["error"] = f"{type(exc).__name__}: {exc}"
    return event


@contextmanager
def quiet_logging() -> Iterator[None]:
    """Warnings and errors only, one line each, on stderr; the previous setup comes back after."""
    previous = structlog.get_config()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            _one_line_errors,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    try:
        yield
    finally:
        structlog.configure(**previous)


async def main(seconds: float = 3.0, chaos: Chaos | None = None) -> Summary:
    """Run the market tree for `seconds`, drain it, print the summary and return it."""
    stats, chaos = Stats(), Chaos() if chaos is None else chaos
    with quiet_logging():
        async with ActorSystem("market") as system:
            await system.start(build_tree(stats, chaos))
            began = system.clock.now()
            await asyncio.sleep(seconds)
            chaos.enabled = False  # the market closes: no new faults
            await system.terminate_child("/market/marketdata/feed")
            elapsed = system.clock.now() - began
            normalizer = system.lookup("/market/marketdata/normalizer")
            assert normalizer is not None
            await normalizer.ask(Drain(), timeout=30.0)  # every stage has caught up
            summary = summarize(stats, system.tree(), elapsed)
    print(render(summary))
    return summary


if __name__ == "__main__":
    asyncio.run(main())
