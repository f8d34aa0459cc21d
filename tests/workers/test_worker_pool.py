"""`Pool(cls, size=n, executor=Subprocess())`: n worker processes behind one ref."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import psutil
import pytest
from procs import workers
from wactors import Add, Counter, Get, Pid, Sleep

from mycelium_actors import (
    ActorRef,
    ActorStopped,
    ActorSystem,
    Pool,
    SerializationError,
    Subprocess,
)
from mycelium_actors.testing import eventually


async def _pool(system: ActorSystem, size: int = 2, **options: Any) -> ActorRef[Any]:
    return await system.start(Pool(Counter, size=size, name="p", executor=Subprocess(), **options))


async def _pid_of(system: ActorSystem, worker: int) -> int:
    ref = system.lookup(f"/p/{worker}")
    assert ref is not None
    pid: int = await ref.ask(Pid())
    return pid


async def test_a_pool_of_worker_processes_routes_round_robin(system: ActorSystem) -> None:
    ref = await _pool(system)
    pids = [await ref.ask(Pid()) for _ in range(4)]
    first, second = await _pid_of(system, 0), await _pid_of(system, 1)
    assert first != second
    assert pids == [first, second, first, second]
    assert {p.pid for p in workers()} == {first, second}
    assert all(psutil.Process(p).ppid() == os.getpid() for p in (first, second))
    for n in range(10):
        await ref.tell(Add(n))  # five each, in turn
    totals = [await system.lookup(f"/p/{i}").ask(Get()) for i in range(2)]  # type: ignore[union-attr]
    assert totals == [0 + 2 + 4 + 6 + 8, 1 + 3 + 5 + 7 + 9]


async def test_least_busy_sees_the_asks_in_flight_in_a_worker(system: ActorSystem) -> None:
    ref = await _pool(system, route="least_busy")
    busy = await _pid_of(system, 0)
    sleeping = asyncio.ensure_future(system.lookup("/p/0").ask(Sleep(2.0)))  # type: ignore[union-attr]
    await eventually(lambda: _in_flight(system, "/p/0"))
    # Worker 0 has an ask in flight in its process: the pool sends the rest to worker 1.
    assert {await ref.ask(Pid()) for _ in range(6)} == {await _pid_of(system, 1)}
    assert await sleeping == 2.0
    assert busy == await _pid_of(system, 0)


def _in_flight(system: ActorSystem, path: str) -> bool:
    """Whether the worker at `path` has an ask in flight in its process."""
    ref: Any = system.lookup(path)
    return ref._slot.handling is not None


async def test_a_kill_9_of_one_worker_process_leaves_the_others_serving(
    system: ActorSystem,
) -> None:
    ref = await _pool(system)
    killed, other = await _pid_of(system, 0), await _pid_of(system, 1)
    await system.lookup("/p/1").tell(Add(5))  # type: ignore[union-attr]
    asking = asyncio.ensure_future(system.lookup("/p/0").ask(Sleep(30), timeout=None))  # type: ignore[union-attr]
    await eventually(lambda: _in_flight(system, "/p/0"))
    os.kill(killed, signal.SIGKILL)
    with pytest.raises(ActorStopped):
        await asyncio.wait_for(asking, 5.0)
    # Meanwhile and after, every ask through the pool is answered (the pool
    # routes around worker 0 while it restarts in a new process).
    for _ in range(10):
        assert await ref.ask(Pid(), timeout=10.0) != killed
    assert await system.lookup("/p/1").ask(Get()) == 5  # type: ignore[union-attr]
    await eventually(lambda: _restarts(system, "/p/0") == 1, timeout=10.0)
    reborn = await _pid_of(system, 0)
    assert reborn not in (killed, other)
    assert {await ref.ask(Pid()) for _ in range(4)} == {reborn, other}
    assert await _pid_of(system, 1) == other  # the other worker never stopped
    assert {p.pid for p in workers()} == {reborn, other}


def _restarts(system: ActorSystem, path: str) -> int:
    (pool,) = system.tree()
    (worker,) = [w for w in pool.children if w.path == path]
    return worker.restarts


async def test_stopping_a_pool_of_worker_processes_leaves_no_process(
    system: ActorSystem,
) -> None:
    ref = await _pool(system, size=3)
    pids = {await ref.ask(Pid()) for _ in range(3)}
    assert len(pids) == 3
    await ref.stop()
    await eventually(lambda: not any(psutil.pid_exists(p) for p in pids), timeout=5.0)
    assert not workers()


@pytest.fixture(params=[False, True], ids=["untraced", "traced"])
async def any_system(
    request: pytest.FixtureRequest, system: ActorSystem
) -> AsyncIterator[ActorSystem]:
    """The `system` fixture, and a tracing one (whose refs wrap what they send)."""
    if not request.param:
        yield system
        return
    async with ActorSystem("workers-traced", kill_grace=0.5, tracing=True) as traced:
        yield traced


async def test_a_message_that_cannot_cross_is_refused_at_the_pools_sender(
    any_system: ActorSystem,
) -> None:
    system = any_system
    ref = await _pool(system)
    with pytest.raises(SerializationError, match="not a contract type"):
        await ref.tell(object())
    with pytest.raises(SerializationError):
        ref.tell_nowait(Add("not an int"))  # type: ignore[arg-type]
    with pytest.raises(SerializationError):
        await ref.ask({"a": 1})
    assert system.dead_letters == 0  # refused, not routed and dropped
    assert await ref.ask(Get()) == 0
