"""Pricing on every core: a `Pool` of worker processes behind one ref.

Run it with `python -m examples.process_pool`: it prices a batch of options by
Monte Carlo (pure Python, a few milliseconds each) first on one worker process,
then on a pool of one worker process per CPU; midway through the second batch
it kills one worker with SIGKILL. It ends by itself and prints the throughput
of each, what the kill cost (the prices that were in that process fail with
`ActorStopped` and are asked again) and that no worker process is left.

The actor and its messages live in `examples/pricing.py`, not here: a worker
process imports the actor's class by module:qualname, and a class of the
script being run (`__main__`) cannot be imported that way.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import attrs
import psutil

from examples.pricing import Price, Pricer, WhoAmI
from mycelium_actors import ActorRef, ActorStopped, ActorSystem, Pool, Subprocess


@attrs.frozen
class Run:
    workers: int
    priced: int
    per_second: float
    retried: int  # prices asked again after their worker process was killed
    restarts: list[int]  # per worker


async def price_all(
    ref: ActorRef[Any], jobs: list[Price], clients: int, midway: Callable[[], Any] | None
) -> tuple[int, float]:
    """Price every job from `clients` concurrent askers, calling `midway()`
    once half of them are priced; (prices asked again, seconds)."""
    queue = list(reversed(jobs))
    priced = retried = 0

    async def client() -> None:
        nonlocal priced, retried
        while queue:
            job = queue.pop()
            try:
                await ref.ask(job, timeout=30.0)
            except ActorStopped:  # its worker process died with it: ask again
                retried += 1
                queue.append(job)
                continue
            priced += 1
            if priced == len(jobs) // 2 and midway is not None:
                midway()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return retried, time.perf_counter() - start


async def main(jobs: int = 400, paths: int = 10_000) -> dict[str, Any]:
    cores = len(psutil.Process().cpu_affinity() or [0])
    batch = [Price(100.0, 95.0 + i % 10, paths, seed=i) for i in range(jobs)]
    runs: list[Run] = []
    async with ActorSystem("pricing") as system:
        for size in (1, max(2, cores)):
            name = f"pricers{size}"
            ref = await system.start(Pool(Pricer, size=size, name=name, executor=Subprocess()))
            await asyncio.gather(*(ref.ask(job) for job in batch[: 2 * size]))  # warm up
            victim = system.lookup(f"/{name}/0")
            assert victim is not None
            pid = await victim.ask(WhoAmI())
            # Midway through the batch on the pool: kill -9 its worker 0.
            kill = None if size == 1 else functools.partial(os.kill, pid, signal.SIGKILL)
            retried, seconds = await price_all(ref, batch, 2 * size, kill)
            restarts = await restarts_when_all_run(system, f"/{name}")
            runs.append(Run(size, jobs, jobs / seconds, retried, restarts))
            plural = "es" if size > 1 else ""
            print(
                f"{size} worker process{plural}: {jobs} options priced in {seconds:.2f} s "
                f"({jobs / seconds:,.0f}/s)"
            )
            if kill is not None:
                print(
                    f"  worker 0 (pid {pid}) was killed with SIGKILL midway: {retried} price(s) "
                    f"in its process failed with ActorStopped and were asked again; "
                    f"restarts per worker: {restarts}"
                )
            await ref.stop()  # its worker processes end with it
    left = [p.pid for p in psutil.Process().children(recursive=True) if _is_worker(p)]
    speedup = runs[-1].per_second / runs[0].per_second
    print(
        f"{runs[-1].workers} worker processes on {cores} CPUs: {speedup:.2f}x one worker's "
        f"throughput, with a kill -9 along the way; worker processes left: {len(left)}"
    )
    return {"runs": runs, "speedup": speedup, "left": left}


async def restarts_when_all_run(system: ActorSystem, path: str) -> list[int]:
    """The restarts of each worker of the pool at `path`, once all of them run
    (a killed one is back in a new process within a second or so)."""
    for _ in range(1000):
        (pool,) = [node for node in system.tree() if node.path == path]
        if all(worker.status == "running" for worker in pool.children):
            return [worker.restarts for worker in pool.children]
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{path}: a worker did not come back within 10 s")


def _is_worker(p: psutil.Process) -> bool:
    try:
        return "mycelium_actors.workers.child" in " ".join(p.cmdline())
    except psutil.Error:
        return False


if __name__ == "__main__":
    asyncio.run(main())
