"""The remote-ref workloads: a node in this process asks and tells an actor on a
node in another process, over our whole stack (codec, credits, the adapter).

The peer is `python -m perf.nodes URL`: a node listening at URL with the
probe `Counter` (supervisors/probe.py) at `/sink`; it prints its address and
runs until stdin closes.
The floors are the transport workloads' (`perf/links.py`): an asyncio
Protocol ping-pong of 100-byte frames for asks, an asyncio-streams pipeline of
small frames for one-way tells.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from typing import Any

from contracts.probe import Add, Echo, GetTotal
from mycelium_actors import ActorSystem
from supervisors.probe import Counter

from . import links, loops
from .meter import Meter

ROOT = links.ROOT
TEXT = "x" * 78  # an Echo frame of about 100 bytes, like the floor's


async def _serve(url: str) -> None:
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.read(1) or closed.set())
    async with ActorSystem("peer", listen=url) as system:
        await system.spawn(Counter, name="sink")
        print(system.address, flush=True)
        await closed.wait()


async def _with_node(scheme: str, body: Callable[[Any], Awaitable[None]]) -> None:
    where = tempfile.mkdtemp(prefix="perf-") if scheme == "unix" else None
    url = f"unix://{where}/node.sock" if where else "tcp://127.0.0.1:0"
    peer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "perf.nodes", url,
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert peer.stdout is not None and peer.stdin is not None
    try:
        address = (await peer.stdout.readline()).decode().strip()
        async with ActorSystem("bench") as system:
            await body(await system.remote(address, "/sink"))
    finally:
        peer.stdin.close()
        try:
            await asyncio.wait_for(peer.wait(), 10)
        except TimeoutError:
            peer.kill()
            await peer.wait()
        if where:
            shutil.rmtree(where, ignore_errors=True)


async def asks(ref: Any, n: int, meter: Meter) -> None:
    """`n` sequential asks of an ~100-byte `Echo` to `ref`, after a warm-up."""
    echo = Echo(TEXT)
    for _ in range(100):  # connect and warm up outside the meter
        await ref.ask(echo)
    with meter:
        for _ in range(n):
            await ref.ask(echo)


async def tells(ref: Any, n: int, meter: Meter) -> None:
    """`n` tells of `Add(1)` to `ref`, timed until a final ask returns the count."""
    one = Add(1)
    await ref.ask(GetTotal())
    with meter:
        for _ in range(n):
            await ref.tell(one)
        total = await ref.ask(GetTotal(), timeout=None)
    assert total == n, total


async def ours_ask(scheme: str, n: int, meter: Meter) -> None:
    await _with_node(scheme, lambda ref: asks(ref, n, meter))


async def ours_tell(scheme: str, n: int, meter: Meter) -> None:
    await _with_node(scheme, lambda ref: tells(ref, n, meter))


if __name__ == "__main__":
    loops.run(_serve(sys.argv[1]))
