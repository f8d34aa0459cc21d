"""Worker processes: ours (`Subprocess`) against `multiprocessing.Pool.apply` and
`concurrent.futures.ProcessPoolExecutor.submit` of the same trivial function.

`worker_ask`: n sequential round trips of a small value to one worker process
(ours: an ask to a `Subprocess` actor, a contract message; theirs: `apply` /
`submit(...).result()` of a function returning its argument). `worker_start`:
spawn to first reply of a new worker process (ours: `spawn` + one ask; theirs:
a one-process pool's first `apply`), median of n starts in milliseconds.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import statistics
import time

from contracts.probe import Echo
from mycelium_actors import Actor, ActorSystem, Subprocess, handler

from .meter import Meter
from .workloads import Extras


def identity(value: str) -> str:
    return value


class EchoActor(Actor):
    @handler
    def echo(self, msg: Echo) -> str:
        return msg.text


async def ours_ask(n: int, meter: Meter) -> None:
    async with ActorSystem("perf") as system:
        ref = await system.spawn(EchoActor, executor=Subprocess())
        msg = Echo("x" * 16)
        await ref.ask(msg)
        with meter:
            for _ in range(n):
                await ref.ask(msg, timeout=None)


def raw_ask(n: int, meter: Meter) -> Extras:
    """The headline is `Pool.apply`; the extra is `ProcessPoolExecutor.submit` (same run)."""
    value = "x" * 16
    with multiprocessing.get_context("fork").Pool(1) as pool:
        pool.apply(identity, (value,))
        with meter:
            for _ in range(n):
                pool.apply(identity, (value,))
    with concurrent.futures.ProcessPoolExecutor(1) as executor:
        executor.submit(identity, value).result()
        start = time.perf_counter()
        for _ in range(n):
            executor.submit(identity, value).result()
        ppe = n / (time.perf_counter() - start)
    return {"process_pool_executor_per_s": ppe}


async def ours_start(n: int, meter: Meter) -> Extras:
    times = []
    async with ActorSystem("perf") as system:
        with meter:
            for _ in range(n):
                start = time.perf_counter()
                ref = await system.spawn(EchoActor, executor=Subprocess())
                await ref.ask(Echo("x"))
                times.append(time.perf_counter() - start)
                await ref.stop()
    return {"start_ms": statistics.median(times) * 1e3}


def raw_start(n: int, meter: Meter) -> Extras:
    times = []
    with meter:
        for _ in range(n):
            start = time.perf_counter()
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                pool.apply(identity, ("x",))
                times.append(time.perf_counter() - start)
    return {"start_ms": statistics.median(times) * 1e3}
