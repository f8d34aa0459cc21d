"""The workloads on mycelium-actors, written the way a user would write them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import itertools
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

from mycelium_actors import (
    Actor,
    ActorRef,
    ActorSystem,
    Child,
    Executor,
    PinnedThread,
    Pool,
    Supervisor,
    handler,
)

from . import links, nats_nodes, nodes, probes, processes, wire
from .meter import Meter
from .workloads import (
    CRASH_STORM_CHILDREN,
    POOL_SIZE,
    RING_SIZE,
    SLOW_HANDLER_US,
    TELLS_PER_CRASH,
    Extras,
    ring_links,
)


class Counter(Actor):
    def __init__(self, n: int, done: concurrent.futures.Future[None]) -> None:
        super().__init__()
        self.left, self.done = n, done

    @handler
    def count(self, msg: int) -> None:
        self.left -= 1
        if not self.left:
            self.done.set_result(None)


class AsyncCounter(Counter):
    @handler
    async def count(self, msg: int) -> None:
        self.left -= 1
        if not self.left:
            self.done.set_result(None)


class Echo(Actor):
    @handler
    def echo(self, msg: int) -> int:
        return msg


class AsyncEcho(Actor):
    @handler
    async def echo(self, msg: int) -> int:
        return msg


class Slow(Actor):
    """Spins `SLOW_HANDLER_US` per message (holding the loop, as CPU-bound work does)."""

    def __init__(self, n: int, done: asyncio.Future[None]) -> None:
        super().__init__()
        self.left, self.done = n, done

    @handler
    def work(self, msg: int) -> None:
        probes.spin(SLOW_HANDLER_US / 1e6)
        self.left -= 1
        if not self.left:
            self.done.set_result(None)


class AsyncSlow(Slow):
    @handler
    async def work(self, msg: int) -> None:
        probes.spin(SLOW_HANDLER_US / 1e6)
        self.left -= 1
        if not self.left:
            self.done.set_result(None)


class Hop(Actor):
    def __init__(self, done: asyncio.Future[None]) -> None:
        super().__init__()
        self.done = done
        self.next: ActorRef[Hop] | None = None

    @handler
    def link(self, nxt: ActorRef) -> None:  # type: ignore[type-arg]
        self.next = nxt

    @handler
    async def hop(self, token: int) -> None:
        if token:
            await self.next.tell(token - 1)  # type: ignore[union-attr]
        else:
            self.done.set_result(None)


class Idle(Actor):
    @handler
    def poke(self, msg: int) -> None:
        pass


class Crash:
    """The message that makes a `Fragile` actor crash."""


class Fragile(Actor):
    """Echoes ints, crashes on `Crash`; counts what it handled in `tally` (which
    outlives its restarts)."""

    def __init__(self, tally: list[int] | None = None) -> None:
        super().__init__()
        self.tally = tally

    @handler
    def crash(self, msg: Crash) -> None:
        raise RuntimeError("crash on purpose")

    @handler
    def echo(self, msg: int) -> int:
        if self.tally is not None:
            self.tally[0] += 1
        return msg


class Asker(Actor):
    """Asks `target` n sequential times from inside one handler."""

    def __init__(self, target: ActorRef[Echo]) -> None:
        super().__init__()
        self.target = target

    @handler
    async def ask_n(self, n: int) -> None:
        await _ask_each(self.target, n)


class Timer(Actor):
    """Times sequential asks to `target`, from wherever this actor runs."""

    def __init__(self, target: ActorRef[Echo]) -> None:
        super().__init__()
        self.target = target

    @handler
    async def time_asks(self, n: int) -> list[float]:
        return await _latencies(self.target, n)


Workload = Callable[[ActorSystem, int, Meter], Awaitable[Extras | None]]
#: Keyword arguments of every workload's `ActorSystem` (`perf.ours_off` sets metrics=False).
SYSTEM_OPTIONS: dict[str, Any] = {}


def in_system(workload: Workload) -> Callable[[int, Meter], Awaitable[Extras | None]]:
    """Run the workload inside a fresh `ActorSystem`."""

    @wraps(workload)
    async def run(n: int, meter: Meter) -> Extras | None:
        async with ActorSystem("perf", **SYSTEM_OPTIONS) as system:
            return await workload(system, n, meter)

    return run


async def _latencies(ref: ActorRef[Echo], n: int) -> list[float]:
    """Seconds each of n sequential asks took."""
    times = []
    for i in range(n):
        start = time.perf_counter()
        await ref.ask(i)
        times.append(time.perf_counter() - start)
    return times


async def _ask_each(ref: ActorRef[Echo], n: int) -> None:
    for i in range(n):
        await ref.ask(i)


async def _supervised(system: ActorSystem, *children: Child) -> list[ActorRef[Any]]:
    """Start the children under one_for_one with a limit never reached; their refs."""
    tree = Supervisor("root", max_restarts=10**9, within=1.0, children=list(children))
    await system.start(tree)
    return [system.lookup(f"/root/{child.name}") for child in children]  # type: ignore[misc]


def _future() -> asyncio.Future[Any]:
    return asyncio.get_running_loop().create_future()


async def _tells(
    system: ActorSystem,
    n: int,
    meter: Meter,
    executor: Executor | None,
    counter: type[Counter] = Counter,
) -> None:
    done: concurrent.futures.Future[None] = concurrent.futures.Future()  # set from any thread
    ref = await system.spawn(counter, n, done, executor=executor)
    with meter:
        for i in range(n):
            await ref.tell(i)
        await asyncio.wrap_future(done)


async def _asks(
    system: ActorSystem,
    n: int,
    meter: Meter,
    executor: Executor | None,
    echo: type[Actor] = Echo,
) -> None:
    ref = await system.spawn(echo, executor=executor)
    with meter:
        await _ask_each(ref, n)


@in_system
async def tell(system: ActorSystem, n: int, meter: Meter) -> None:
    await _tells(system, n, meter, None)


@in_system
async def tell_async(system: ActorSystem, n: int, meter: Meter) -> None:
    await _tells(system, n, meter, None, AsyncCounter)


@in_system
async def ask(system: ActorSystem, n: int, meter: Meter) -> None:
    await _asks(system, n, meter, None)


@in_system
async def ask_async(system: ActorSystem, n: int, meter: Meter) -> None:
    await _asks(system, n, meter, None, AsyncEcho)


@in_system
async def xthread_tell(system: ActorSystem, n: int, meter: Meter) -> None:
    await _tells(system, n, meter, PinnedThread(cpus=None))


@in_system
async def xthread_ask(system: ActorSystem, n: int, meter: Meter) -> None:
    await _asks(system, n, meter, PinnedThread(cpus=None))


@in_system
async def actor_ask(system: ActorSystem, n: int, meter: Meter) -> None:
    asker = await system.spawn(Asker, await system.spawn(Echo))
    with meter:
        await asker.ask(n, timeout=None)


@in_system
async def fairness(system: ActorSystem, n: int, meter: Meter) -> Extras:
    echo = await system.spawn(Echo)
    async with probes.beside(echo.ask) as extras:
        await _tells(system, n, meter, None)
    return extras


async def _slow_flood(system: ActorSystem, n: int, meter: Meter, cls: type[Slow]) -> Extras:
    """n slow messages queued at once (room for all), handled beside the probes."""
    echo = await system.spawn(Echo)
    done = _future()
    ref = await system.spawn(cls, n, done, mailbox_capacity=n)
    async with probes.beside(echo.ask) as extras:
        with meter:
            for i in range(n):
                ref.tell_nowait(i)
            await done
    return extras


@in_system
async def fairness_slow(system: ActorSystem, n: int, meter: Meter) -> Extras:
    return await _slow_flood(system, n, meter, Slow)


@in_system
async def fairness_slow_async(system: ActorSystem, n: int, meter: Meter) -> Extras:
    return await _slow_flood(system, n, meter, AsyncSlow)


@in_system
async def ring(system: ActorSystem, n: int, meter: Meter) -> None:
    done = _future()
    refs = [await system.spawn(Hop, done) for _ in range(RING_SIZE)]
    for ref, nxt in ring_links(refs):
        await ref.tell(nxt)
    with meter:
        await refs[0].tell(n)
        await done


@in_system
async def spawn_one(system: ActorSystem, n: int, meter: Meter) -> None:
    with meter:
        for _ in range(n):
            ref = await system.spawn(Idle)
            await ref.stop()


@in_system
async def spawn_batch(system: ActorSystem, n: int, meter: Meter) -> None:
    with meter:
        refs = [await system.spawn(Idle) for _ in range(n)]
        await asyncio.gather(*(ref.stop() for ref in refs))


@in_system
async def memory(system: ActorSystem, n: int, meter: Meter) -> None:
    with meter:  # each actor has handled one message: an actor that has worked once
        for i in range(n):
            ref = await system.spawn(Idle)
            await ref.tell(i)
        await ref.ask(-1)  # the ready queue is FIFO: every tell before it was handled


#: Snapshots per `metrics_snapshot` measurement (the figure is their mean).
SNAPSHOTS = 20


@in_system
async def metrics_snapshot(system: ActorSystem, n: int, meter: Meter) -> Extras:
    refs = [await system.spawn(Idle) for _ in range(n)]
    for i, ref in enumerate(refs):
        await ref.tell(i)
    await refs[-1].ask(-1)  # every actor has handled a message: each has its figures
    with meter:
        for _ in range(SNAPSHOTS):
            snapshot = system.metrics()
    assert len(snapshot.actors) == n and meter.delta is not None
    return {"snapshot_ms": meter.delta / SNAPSHOTS * 1e3}


@in_system
async def restart(system: ActorSystem, n: int, meter: Meter) -> Extras:
    (ref,) = await _supervised(system, Child(Fragile, name="w"))
    times = []
    with meter:
        for i in range(n):
            start = time.perf_counter()
            await ref.tell(Crash())
            await ref.ask(i)
            times.append(time.perf_counter() - start)
    return {"median_us": statistics.median(times) * 1e6}


@in_system
async def crash_storm(system: ActorSystem, n: int, meter: Meter) -> Extras:
    tally = [0]
    children = [Child(Fragile, tally, name=f"c{i}") for i in range(CRASH_STORM_CHILDREN)]
    refs = await _supervised(system, *children)
    sent = 0
    with meter:
        for crash in range(n):
            await refs[crash % len(refs)].tell(Crash())
            for _ in range(TELLS_PER_CRASH):
                await refs[sent % len(refs)].tell(sent)
                sent += 1
        for ref in refs:  # mailboxes are FIFO: once each answers, all before it was handled
            await ref.ask(-1)
    return {"sent": sent, "lost": sent + len(refs) - tally[0]}


_POOLS = itertools.count()


class SharedCounter(Actor):
    """Counts down a countdown it shares with others (a pool's workers, one loop)."""

    def __init__(self, left: list[int], done: asyncio.Future[None]) -> None:
        super().__init__()
        self.left, self.done = left, done

    @handler
    def count(self, msg: int) -> None:
        self.left[0] -= 1
        if not self.left[0]:
            self.done.set_result(None)


async def _pool_or_single(system: ActorSystem, pool: bool, cls: type[Actor], *args: Any) -> Any:
    """A pool of POOL_SIZE workers of `cls` under a root supervisor, or one such actor."""
    if not pool:
        return await system.spawn(cls, *args)
    name = f"pool-{next(_POOLS)}"
    await system.start(Supervisor(name, children=[Pool(cls, *args, size=POOL_SIZE, name="p")]))
    return system.lookup(f"/{name}/p")


async def _counted_tells(system: ActorSystem, n: int, pool: bool, meter: Meter | None) -> float:
    """n tells to a pool (or one actor) of shared counters, until all are handled; seconds."""
    done = _future()
    ref = await _pool_or_single(system, pool, SharedCounter, [n], done)
    start = time.perf_counter()
    with meter or contextlib.nullcontext():
        for i in range(n):
            await ref.tell(i)
        await done
    seconds = time.perf_counter() - start
    await ref.stop()
    return seconds


async def _timed_asks(ref: ActorRef[Echo], n: int, meter: Meter | None) -> float:
    start = time.perf_counter()
    with meter or contextlib.nullcontext():
        await _ask_each(ref, n)
    return time.perf_counter() - start


@in_system
async def pool_tell(system: ActorSystem, n: int, meter: Meter) -> Extras:
    for pool in (False, True):  # warm both paths up first: neither pays for the other
        await _counted_tells(system, max(1, n // 10), pool, None)
    single = n / await _counted_tells(system, n, False, None)
    pooled = n / await _counted_tells(system, n, True, meter)
    return {"single": single, "vs_single": pooled / single}


@in_system
async def pool_ask(system: ActorSystem, n: int, meter: Meter) -> Extras:
    one = await _pool_or_single(system, False, Echo)
    pool = await _pool_or_single(system, True, Echo)
    for ref in (one, pool):
        await _timed_asks(ref, max(1, n // 10), None)
    single = n / await _timed_asks(one, n, None)
    pooled = n / await _timed_asks(pool, n, meter)
    return {"single": single, "vs_single": pooled / single}


def _sha_chunk(buffer: bytes = bytes(8 << 20)) -> None:
    hashlib.sha256(buffer)  # ~10 ms, without the GIL


def _python_chunk() -> None:
    total = 0
    for i in range(200_000):  # ~10 ms of bytecode, holding the GIL
        total += i * i


async def _hog(chunk: Callable[[], None]) -> None:
    while True:
        chunk()
        await asyncio.sleep(0)  # share the loop between chunks


@in_system
async def isolation(system: ActorSystem, n: int, meter: Meter) -> Extras:
    pool = PinnedThread(cpus=None, shared=True)
    pinned = await system.spawn(Timer, await system.spawn(Echo, executor=pool), executor=pool)
    on_loop = await system.spawn(Echo)
    extras: Extras = {}
    with meter:
        for hog_name, chunk in (("sha", _sha_chunk), ("python", _python_chunk)):
            hog = asyncio.create_task(_hog(chunk))
            pinned_times = await pinned.ask(n, timeout=60.0)
            main_times = await _latencies(on_loop, n)
            hog.cancel()
            for where, times in (("pinned", pinned_times), ("main", main_times)):
                p50, p99 = (t * 1e6 for t in probes.percentiles(times))
                extras |= {f"{hog_name}_{where}_p50_us": p50, f"{hog_name}_{where}_p99_us": p99}
            ratio = extras[f"{hog_name}_main_p99_us"] / extras[f"{hog_name}_pinned_p99_us"]
            extras[f"p99_ratio_{hog_name}"] = ratio
    return extras


def codec_small(n: int, meter: Meter) -> Extras:
    return wire.ours("small", n, meter)


def codec_kib(n: int, meter: Meter) -> Extras:
    return wire.ours("kib", n, meter)


def codec_nested(n: int, meter: Meter) -> Extras:
    return wire.ours("nested", n, meter)


async def unix_pingpong(n: int, meter: Meter) -> Extras:
    return await links.ours_rtt("unix", n, meter)


async def tcp_pingpong(n: int, meter: Meter) -> Extras:
    return await links.ours_rtt("tcp", n, meter)


async def unix_stream(n: int, meter: Meter) -> Extras:
    return await links.ours_frames("unix", n, meter)


async def tcp_stream(n: int, meter: Meter) -> Extras:
    return await links.ours_frames("tcp", n, meter)


async def unix_remote_ask(n: int, meter: Meter) -> None:
    await nodes.ours_ask("unix", n, meter)


async def tcp_remote_ask(n: int, meter: Meter) -> None:
    await nodes.ours_ask("tcp", n, meter)


async def unix_remote_tell(n: int, meter: Meter) -> None:
    await nodes.ours_tell("unix", n, meter)


async def tcp_remote_tell(n: int, meter: Meter) -> None:
    await nodes.ours_tell("tcp", n, meter)


async def nats_remote_ask(n: int, meter: Meter) -> None:
    await nats_nodes.ours_ask(n, meter)


async def nats_remote_tell(n: int, meter: Meter) -> None:
    await nats_nodes.ours_tell(n, meter)


async def worker_ask(n: int, meter: Meter) -> None:
    await processes.ours_ask(n, meter)


async def worker_start(n: int, meter: Meter) -> Extras:
    return await processes.ours_start(n, meter)


async def worker_pool(n: int, meter: Meter) -> Extras:
    return await processes.ours_pool(n, meter)
