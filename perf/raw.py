"""The floor: the same workloads on hand-written asyncio tasks and queues.

An "actor" here is a task consuming a bounded `asyncio.Queue` of the same
capacity as our default mailbox; nothing else (no dispatch, no timeout).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import links, loops, nats_nodes, probes, processes, wire
from .meter import Meter
from .workloads import POOL_SIZE, RING_SIZE, Extras, ring_links

CAPACITY = 1000
STOP = object()
Queue = asyncio.Queue[Any]


async def _count(q: Queue, n: int, done: asyncio.Future[None]) -> None:
    for _ in range(n):
        await q.get()
    done.set_result(None)


async def _handle(msg: Any) -> Any:
    """What an async handler is at its simplest: a coroutine per message."""
    return msg


async def _count_async(q: Queue, n: int, done: asyncio.Future[None]) -> None:
    for _ in range(n):
        await _handle(await q.get())
    done.set_result(None)


async def _echo_async(q: Queue) -> None:
    while (item := await q.get()) is not STOP:
        msg, fut = item
        fut.set_result(await _handle(msg))


async def _echo(q: Queue) -> None:
    while (item := await q.get()) is not STOP:
        msg, fut = item
        fut.set_result(msg)


async def _ask(q: Queue, msg: Any) -> Any:
    """Put `(msg, future)` on the queue and wait for the future."""
    fut = asyncio.get_running_loop().create_future()
    await q.put((msg, fut))
    return await fut


async def _asks(q: Queue, n: int) -> None:
    """n sequential round trips to q's echo task (`_ask` inlined: this loop is measured)."""
    loop = asyncio.get_running_loop()
    for i in range(n):
        fut = loop.create_future()
        await q.put((i, fut))
        await fut


async def _asker(q: Queue) -> None:
    """For each `((n, echo queue), future)`: n round trips to that echo task, then answer."""
    while (item := await q.get()) is not STOP:
        (n, echo), fut = item
        await _asks(echo, n)
        fut.set_result(None)


async def _hop(q: Queue, nxt: Queue, done: asyncio.Future[None]) -> None:
    while (token := await q.get()) is not STOP:
        if token:
            await nxt.put(token - 1)
        else:
            done.set_result(None)


async def _idle(q: Queue, started: asyncio.Future[None]) -> None:
    started.set_result(None)
    while await q.get() is not STOP:
        pass


def _start(consumer: Any, *args: Any) -> tuple[Queue, asyncio.Task[None]]:
    q: Queue = asyncio.Queue(CAPACITY)
    return q, asyncio.get_running_loop().create_task(consumer(q, *args))


async def _spawn_idle() -> tuple[Queue, asyncio.Task[None]]:
    started = asyncio.get_running_loop().create_future()
    actor = _start(_idle, started)
    await started
    return actor


async def _stop(actor: tuple[Queue, asyncio.Task[None]]) -> None:
    q, task = actor
    await q.put(STOP)
    await task


@contextmanager
def _loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in its own thread for the duration of the block."""
    loop = loops.new_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


async def tell(n: int, meter: Meter) -> None:
    done = asyncio.get_running_loop().create_future()
    q, _ = _start(_count, n, done)
    with meter:
        for i in range(n):
            await q.put(i)
        await done


async def tell_async(n: int, meter: Meter) -> None:
    done = asyncio.get_running_loop().create_future()
    q, _ = _start(_count_async, n, done)
    with meter:
        for i in range(n):
            await q.put(i)
        await done


async def ask(n: int, meter: Meter) -> None:
    actor = _start(_echo)
    with meter:
        await _asks(actor[0], n)
    await _stop(actor)


async def pool_tell(n: int, meter: Meter) -> None:
    loop = asyncio.get_running_loop()
    dones = [loop.create_future() for _ in range(POOL_SIZE)]
    shares = [n // POOL_SIZE + (k < n % POOL_SIZE) for k in range(POOL_SIZE)]
    qs = [_start(_count, share, done)[0] for share, done in zip(shares, dones, strict=True)]
    with meter:
        for i in range(n):
            await qs[i % POOL_SIZE].put(i)
        await asyncio.gather(*dones)


async def pool_ask(n: int, meter: Meter) -> None:
    actors = [_start(_echo) for _ in range(POOL_SIZE)]
    loop = asyncio.get_running_loop()
    with meter:
        for i in range(n):
            fut = loop.create_future()
            await actors[i % POOL_SIZE][0].put((i, fut))
            await fut
    for actor in actors:
        await _stop(actor)


async def ask_async(n: int, meter: Meter) -> None:
    actor = _start(_echo_async)
    with meter:
        await _asks(actor[0], n)
    await _stop(actor)


async def actor_ask(n: int, meter: Meter) -> None:
    echo, asker = _start(_echo), _start(_asker)
    with meter:
        await _ask(asker[0], (n, echo[0]))
    await _stop(asker)
    await _stop(echo)


async def fairness(n: int, meter: Meter) -> dict[str, float]:
    echo = _start(_echo)
    async with probes.beside(lambda i: _ask(echo[0], i)) as extras:
        await tell(n, meter)
    await _stop(echo)
    return extras


async def ring(n: int, meter: Meter) -> None:
    done = asyncio.get_running_loop().create_future()
    queues: list[Queue] = [asyncio.Queue(CAPACITY) for _ in range(RING_SIZE)]
    tasks = [asyncio.create_task(_hop(q, nxt, done)) for q, nxt in ring_links(queues)]
    with meter:
        await queues[0].put(n)
        await done
    for q, task in zip(queues, tasks, strict=True):
        await _stop((q, task))


async def spawn_one(n: int, meter: Meter) -> None:
    with meter:
        for _ in range(n):
            await _stop(await _spawn_idle())


async def spawn_batch(n: int, meter: Meter) -> None:
    with meter:
        actors = [await _spawn_idle() for _ in range(n)]
        await asyncio.gather(*(_stop(actor) for actor in actors))


async def memory(n: int, meter: Meter) -> None:
    with meter:  # each has handled one message, as ours do
        actors = []
        for i in range(n):
            actor = await _spawn_idle()
            await actor[0].put(i)
            actors.append(actor)
        await asyncio.sleep(0)  # the last one takes its message
    await asyncio.gather(*(_stop(actor) for actor in actors))


async def xthread_ask(n: int, meter: Meter) -> None:
    caller = asyncio.get_running_loop()

    def echo(msg: int, fut: asyncio.Future[int]) -> None:
        caller.call_soon_threadsafe(fut.set_result, msg)

    with _loop_thread() as server, meter:
        for i in range(n):
            fut = caller.create_future()
            server.call_soon_threadsafe(echo, i, fut)
            await fut


def xthread_tell(n: int, meter: Meter) -> None:
    q: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def consume() -> None:
        while q.get() is not STOP:
            pass

    consumer = threading.Thread(target=consume)
    consumer.start()
    with meter:
        for i in range(n):
            q.put(i)
        q.put(STOP)
        consumer.join()


def codec_small(n: int, meter: Meter) -> None:
    wire.floor("small", n, meter)


def codec_kib(n: int, meter: Meter) -> None:
    wire.floor("kib", n, meter)


def codec_nested(n: int, meter: Meter) -> None:
    wire.floor("nested", n, meter)


async def unix_pingpong(n: int, meter: Meter) -> dict[str, float]:
    return await links.raw_rtt("unix", n, meter)


async def tcp_pingpong(n: int, meter: Meter) -> dict[str, float]:
    return await links.raw_rtt("tcp", n, meter)


async def unix_stream(n: int, meter: Meter) -> None:
    await links.raw_frames("unix", n, meter)


async def tcp_stream(n: int, meter: Meter) -> None:
    await links.raw_frames("tcp", n, meter)


async def unix_remote_ask(n: int, meter: Meter) -> None:
    await links.protocol_rtt("unix", n, meter)


async def tcp_remote_ask(n: int, meter: Meter) -> dict[str, float]:
    await links.protocol_rtt("tcp", n, meter)
    # Thespian's TCP base beside it, as a peer (fewer asks: it is much slower).
    from . import meter as meters
    from . import thespian_peer

    timer = meters.stopwatch()
    return {"thespian_rtps": await asyncio.to_thread(thespian_peer.rtps, max(1, n // 10), timer)}


async def unix_remote_tell(n: int, meter: Meter) -> None:
    await links.raw_frames("unix", n, meter)


async def tcp_remote_tell(n: int, meter: Meter) -> None:
    await links.raw_frames("tcp", n, meter)


async def nats_remote_ask(n: int, meter: Meter) -> None:
    await nats_nodes.raw_ask(n, meter)


async def nats_remote_tell(n: int, meter: Meter) -> None:
    await nats_nodes.raw_tell(n, meter)


def worker_ask(n: int, meter: Meter) -> Extras:
    return processes.raw_ask(n, meter)


def worker_start(n: int, meter: Meter) -> Extras:
    return processes.raw_start(n, meter)


def worker_pool(n: int, meter: Meter) -> Extras:
    return processes.raw_pool(n, meter)
