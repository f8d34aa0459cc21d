"""Latency probes that run beside a workload on the same event loop.

`beside(ask)` keeps two probes going for the duration of an `async with` block:
a timer (a `loop.call_at` chain, each tick due `PERIOD` after the previous one
ran) that records how late each tick fires, and a task that calls `ask(i)`
every `PERIOD` and records how long each call took. Implementation-neutral: the
caller passes its own way of asking.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from .workloads import Extras

PERIOD = 0.001  # seconds between ticks, and between the end of one ask and the next


def spin(seconds: float) -> None:
    """Hold the loop (and the GIL) for `seconds`, as CPU-bound handler work does."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def percentiles(times: list[float]) -> tuple[float, float]:
    """p50 and p99, in the unit of `times`."""
    if len(times) < 2:
        return times[0], times[0]
    cuts = statistics.quantiles(times, n=100)
    return cuts[49], cuts[98]


@asynccontextmanager
async def beside(ask: Callable[[int], Awaitable[object]]) -> AsyncIterator[Extras]:
    """Probe the loop while the block runs; the yielded dict then holds, in ms, the
    p50/p99 of the timer's lateness and of the asks' latency, and how many of each.

    Each probe takes at least one sample: on leaving, the pending tick and the
    ask in flight (if any) are waited for and counted.
    """
    loop = asyncio.get_running_loop()
    lateness: list[float] = []
    latency: list[float] = []
    running = True
    last_tick = loop.create_future()

    def schedule() -> None:
        due = loop.time() + PERIOD
        loop.call_at(due, tick, due)

    def tick(due: float) -> None:
        lateness.append(loop.time() - due)
        if running:
            schedule()
        else:
            last_tick.set_result(None)

    async def asks() -> None:
        for i in itertools.count():
            start = time.perf_counter()
            await ask(i)
            latency.append(time.perf_counter() - start)
            await asyncio.sleep(PERIOD)
            if not running:
                return

    schedule()
    asker = asyncio.create_task(asks())
    extras: Extras = {}
    try:
        yield extras
    finally:
        running = False  # on an error too: the chain ends, asyncio.run cancels the asker
    await asyncio.gather(last_tick, asker)
    for name, count, times in (("timer", "ticks", lateness), ("ask", "asks", latency)):
        p50, p99 = percentiles(times)
        extras |= {f"{name}_p50_ms": p50 * 1e3, f"{name}_p99_ms": p99 * 1e3, count: len(times)}
