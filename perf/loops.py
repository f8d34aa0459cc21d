"""Which event loop a perf process runs: `PERF_LOOP=asyncio|uvloop` in its environment.

`python -m perf --loop uvloop` (or `both`) sets it for each worker it starts,
and a worker's peer processes (`perf.nodes`, `perf.links`, `perf.nats_nodes`)
inherit it, so both ends of a remote workload run the same loop. Every perf
process makes its loops here: `run(coro)` instead of `asyncio.run(coro)`,
`new_loop()` instead of `asyncio.new_event_loop()`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

ENV = "PERF_LOOP"
LOOPS = ("asyncio", "uvloop")
T = TypeVar("T")


def chosen() -> str:
    name = os.environ.get(ENV) or "asyncio"
    if name not in LOOPS:
        raise SystemExit(f"{ENV}={name!r}: expected one of {', '.join(LOOPS)}")
    return name


def new_loop() -> asyncio.AbstractEventLoop:
    if chosen() == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(coro: Coroutine[Any, Any, T]) -> T:
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(coro)
