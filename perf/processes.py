"""Worker processes: ours (`Subprocess`) against `multiprocessing.Pool.apply` and
`concurrent.futures.ProcessPoolExecutor.submit` of the same trivial function.

`worker_ask`: n sequential round trips of a small value to one worker process
(ours: an ask to a `Subprocess` actor, a contract message; theirs: `apply` /
`submit(...).result()` of a function returning its argument). `worker_start`:
spawn to first reply of a new worker process (ours: `spawn` + one ask; theirs:
a one-process pool's first `apply`), median of n starts in milliseconds.
`worker_pool`: n asks of a CPU-bound pure-Python handler (`SPIN_ROUNDS`, about
5 ms each) from `2 * size` clients that each send their next ask when answered,
served by a `Pool` of worker processes (`least_busy`) of each size from 1 to
the cores this process may use (theirs: `multiprocessing.Pool(size).map` with
chunksize 1 of the same function); the headline is the largest pool's, and
`scale` is its throughput over `size` times one worker's (same run).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import statistics
import time
from typing import Any

from contracts.probe import Add, Echo
from mycelium_actors import Actor, ActorSystem, Pool, Subprocess, handler

from .meter import Meter
from .workloads import Extras


def identity(value: str) -> str:
    return value


class EchoActor(Actor):
    @handler
    def echo(self, msg: Echo) -> str:
        return msg.text


#: The CPU-bound handler's work: rounds of `spin`, about 5 ms on the project's
#: machine (fixed, so that ours and theirs do the same work whatever the load).
SPIN_ROUNDS = 130_000


def spin(rounds: int) -> int:
    """Pure-Python work holding the GIL: `rounds` multiply-adds."""
    total = 0
    for i in range(rounds):
        total += i * i
    return total & 0xFFFF


class Spinner(Actor):
    """Answers `Add(n)` with `spin(n)`: n rounds of pure-Python work."""

    @handler
    def add(self, msg: Add) -> int:
        return spin(msg.n)


def cores() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


async def ours_ask(n: int, meter: Meter) -> None:
    from .ours import SYSTEM_OPTIONS  # metrics off for `perf.ours_off` (ours imports us)

    async with ActorSystem("perf", **SYSTEM_OPTIONS) as system:
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


async def ours_pool(n: int, meter: Meter) -> Extras:
    most = cores()
    figures: dict[int, float] = {}
    async with ActorSystem("perf") as system:
        for size in range(1, most + 1):
            pool = Pool(
                Spinner, size=size, name=f"spin{size}", executor=Subprocess(), route="least_busy"
            )
            ref = await system.start(pool)
            await _clients(ref, 4 * size, size)  # warm
            start = time.perf_counter()
            if size == most:
                with meter:
                    await _clients(ref, n, size)
            else:
                await _clients(ref, n, size)
            figures[size] = n / (time.perf_counter() - start)
            await ref.stop()
    return _pool_extras(figures)


async def _clients(ref: Any, n: int, size: int) -> None:
    """`n` asks from `2 * size` clients, each sending its next when answered."""
    left = [n]

    async def client() -> None:
        msg = Add(SPIN_ROUNDS)
        while left[0] > 0:
            left[0] -= 1
            await ref.ask(msg, timeout=None)

    await asyncio.gather(*(client() for _ in range(2 * size)))


def raw_pool(n: int, meter: Meter) -> Extras:
    rounds = SPIN_ROUNDS
    most = cores()
    figures: dict[int, float] = {}
    for size in range(1, most + 1):
        with multiprocessing.get_context("fork").Pool(size) as pool:
            pool.map(spin, [rounds] * (4 * size), chunksize=1)  # warm
            start = time.perf_counter()
            if size == most:
                with meter:
                    pool.map(spin, [rounds] * n, chunksize=1)
            else:
                pool.map(spin, [rounds] * n, chunksize=1)
            figures[size] = n / (time.perf_counter() - start)
    return _pool_extras(figures)


def _pool_extras(figures: dict[int, float]) -> Extras:
    most = max(figures)
    extras = {f"size{size}_per_s": figure for size, figure in figures.items()}
    extras["scale"] = figures[most] / (most * figures[1])
    return extras
