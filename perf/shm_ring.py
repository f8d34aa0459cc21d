"""Prototype: a shared-memory ring as the parent-to-worker link, against a Unix socket.

Issue 21 asks whether a ring in `multiprocessing.shared_memory` with a cheap
wake-up beats the Unix socket of the worker link by at least 1.3x for both
asks and tells; only then would it become a transport. This measures the two
links with the same two asyncio programs on either side, in the same run:

- `shm`: two single-producer single-consumer byte rings (one each way) in one
  shared-memory block, 4-byte length-prefixed frames. A consumer with nothing
  to read sets its `sleeping` flag, looks once more, then waits on an eventfd
  in its event loop; a producer writes the eventfd only when it finds the flag
  set (so a busy consumer costs its producer no system call). Python cannot
  fence between the flag and the ring's head, so a consumer also looks again
  after 1 ms: a missed wake-up costs a millisecond, not a hang (it would show
  in the figures).
- `unix`: an asyncio Protocol at both ends of a Unix socket, the same frames.

Workloads (one process each side, asyncio on both): `ask`, sequential round
trips of a 100-byte frame; `tell`, n 32-byte frames one way, timed until the
worker answers the count. Run `python -m perf.shm_ring [--n N] [--repeats R]`;
it prints the medians and the ratios shm / unix.

`resource_tracker`: before Python 3.13 a process that merely attaches to a
block registers it with its own tracker, which unlinks it (and warns) when
that process exits; the worker unregisters it at once (3.13 and later:
`track=False`). The parent creates and unlinks the block.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing import resource_tracker, shared_memory
from typing import Any

RING = 1 << 20  # bytes of frames in each direction
_HEADS = struct.Struct("<QQI")  # head (producer), tail (consumer), sleeping flag
_LEN = struct.Struct("<I")
DATA = 64  # where the frames of a ring start, after its header
PING = bytes(100)
SMALL = bytes(32)
ASK, TELL, COUNT = 1, 2, 3
RECHECK = 0.001  # seconds: a sleeping consumer looks again (a missed wake-up)


class Ring:
    """One direction: a byte ring at `offset` of the shared block."""

    def __init__(self, buf: memoryview, offset: int, efd: int) -> None:
        self.buf = buf
        self.base = offset
        self.data = offset + DATA
        self.efd = efd

    def _heads(self) -> tuple[int, int, int]:
        head, tail, sleeping = _HEADS.unpack_from(self.buf, self.base)
        return head, tail, sleeping

    def put(self, frame: bytes) -> bool:
        """Producer: append `frame`; False if the ring is full. Wakes a sleeping consumer."""
        head, tail, sleeping = self._heads()
        need = _LEN.size + len(frame)
        if RING - (head - tail) < need:
            return False
        record = _LEN.pack(len(frame)) + frame
        at = head % RING
        first = min(need, RING - at)
        self.buf[self.data + at : self.data + at + first] = record[:first]
        if first < need:
            self.buf[self.data : self.data + need - first] = record[first:]
        struct.pack_into("<Q", self.buf, self.base, head + need)
        if sleeping:
            struct.pack_into("<I", self.buf, self.base + 16, 0)
            os.eventfd_write(self.efd, 1)
        return True

    def take_all(self) -> list[bytes]:
        """Consumer: every frame written so far."""
        head, tail, _ = self._heads()
        frames = []
        while tail < head:
            at = tail % RING
            size = _LEN.unpack(self._read(at, _LEN.size))[0]
            frames.append(self._read((at + _LEN.size) % RING, size))
            tail += _LEN.size + size
        struct.pack_into("<Q", self.buf, self.base + 8, tail)
        return frames

    def _read(self, at: int, size: int) -> bytes:
        first = min(size, RING - at)
        chunk = bytes(self.buf[self.data + at : self.data + at + first])
        if first < size:
            chunk += bytes(self.buf[self.data : self.data + size - first])
        return chunk

    def sleep(self) -> bool:
        """Consumer: set the flag; True if the ring is still empty (then wait)."""
        struct.pack_into("<I", self.buf, self.base + 16, 1)
        head, tail, _ = self._heads()
        if head != tail:
            struct.pack_into("<I", self.buf, self.base + 16, 0)
            return False
        return True


class ShmEnd:
    """One side of the shm link: reads its inbound ring in the loop, writes the other."""

    def __init__(self, inbound: Ring, outbound: Ring, on_frame: Callable[[bytes], None]) -> None:
        self.inbound, self.outbound, self.on_frame = inbound, outbound, on_frame
        self.loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Serve the inbound ring (once `on_frame` can answer)."""
        self.loop.add_reader(self.inbound.efd, self._woken)
        self._drain()

    def _woken(self) -> None:
        try:
            os.eventfd_read(self.inbound.efd)
        except BlockingIOError:
            pass
        self._drain()

    def _drain(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while True:
            frames = self.inbound.take_all()
            for frame in frames:
                self.on_frame(frame)
            if not frames and self.inbound.sleep():
                self._timer = self.loop.call_later(RECHECK, self._drain)
                return

    def send(self, frame: bytes) -> None:
        while not self.outbound.put(frame):  # full: the prototype's tells stay far below
            time.sleep(0)

    def close(self) -> None:
        self.loop.remove_reader(self.inbound.efd)
        if self._timer is not None:
            self._timer.cancel()


class SocketEnd(asyncio.Protocol):
    """One side of the Unix-socket link: 4-byte length-prefixed frames."""

    def __init__(self, on_frame: Callable[[bytes], None]) -> None:
        self.on_frame = on_frame
        self.buffer = bytearray()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        at = 0
        while len(buf) - at >= 4:
            size = int.from_bytes(buf[at : at + 4], "little")
            if len(buf) - at - 4 < size:
                break
            self.on_frame(bytes(buf[at + 4 : at + 4 + size]))
            at += 4 + size
        del buf[:at]

    def send(self, frame: bytes) -> None:
        self.transport.write(len(frame).to_bytes(4, "little") + frame)


# -- the worker side ----------------------------------------------------------------------


class Worker:
    """Answers asks, counts tells, answers the count."""

    def __init__(self) -> None:
        self.count = 0
        self.send: Callable[[bytes], None] = lambda frame: None

    def frame(self, frame: bytes) -> None:
        kind = frame[0]
        if kind == TELL:
            self.count += 1
        elif kind == ASK:
            self.send(frame)
        else:
            self.send(bytes([COUNT]) + self.count.to_bytes(8, "little"))
            self.count = 0


async def serve_shm(name: str, efd_in: int, efd_out: int) -> None:
    if sys.version_info >= (3, 13):
        block = shared_memory.SharedMemory(name=name, **{"track": False})
    else:  # attaching registered it with our own tracker: the parent owns it
        block = shared_memory.SharedMemory(name=name)
        resource_tracker.unregister(block._name, "shared_memory")  # type: ignore[attr-defined]
    assert block.buf is not None
    worker = Worker()
    end = ShmEnd(Ring(block.buf, 0, efd_in), Ring(block.buf, DATA + RING, efd_out), worker.frame)
    worker.send = end.send
    end.start()
    await asyncio.Event().wait()  # until the parent kills us


async def serve_unix(path: str) -> None:
    worker = Worker()

    def factory() -> SocketEnd:
        end = SocketEnd(worker.frame)
        worker.send = end.send
        return end

    server = await asyncio.get_running_loop().create_unix_server(factory, path)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


# -- the parent side ----------------------------------------------------------------------


class Parent:
    """Sends asks and tells; `reply` resolves the one ask in flight."""

    def __init__(self) -> None:
        self.waiting: asyncio.Future[bytes] | None = None
        self.send: Callable[[bytes], None] = lambda frame: None

    def frame(self, frame: bytes) -> None:
        waiting, self.waiting = self.waiting, None
        if waiting is not None:
            waiting.set_result(frame)

    async def ask(self, frame: bytes) -> bytes:
        self.waiting = asyncio.get_running_loop().create_future()
        self.send(frame)
        return await self.waiting

    async def asks(self, n: int) -> float:
        frame = bytes([ASK]) + PING
        start = time.perf_counter()
        for _ in range(n):
            await self.ask(frame)
        return n / (time.perf_counter() - start)

    async def tells(self, n: int) -> float:
        frame = bytes([TELL]) + SMALL
        start = time.perf_counter()
        for i in range(n):
            self.send(frame)
            if i % 256 == 255:
                await asyncio.sleep(0)  # let the loop write (and the worker read)
        count = await self.ask(bytes([COUNT]))
        assert int.from_bytes(count[1:], "little") == n, "tells were lost"
        return n / (time.perf_counter() - start)


async def measure_shm(n_ask: int, n_tell: int) -> tuple[float, float]:
    block = shared_memory.SharedMemory(create=True, size=2 * (DATA + RING))
    to_worker, to_parent = os.eventfd(0, os.EFD_NONBLOCK), os.eventfd(0, os.EFD_NONBLOCK)
    fds = (to_worker, to_parent)
    command = [sys.executable, "-m", "perf.shm_ring", "serve-shm", block.name]
    child = subprocess.Popen([*command, *map(str, fds)], pass_fds=fds)
    try:
        assert block.buf is not None
        parent = Parent()
        end = ShmEnd(
            Ring(block.buf, DATA + RING, to_parent), Ring(block.buf, 0, to_worker), parent.frame
        )
        parent.send = end.send
        end.start()
        await parent.ask(bytes([ASK]) + PING)  # the worker is up
        figures = await parent.asks(n_ask), await parent.tells(n_tell)
        end.close()
        return figures
    finally:
        child.kill()
        child.wait()
        os.close(to_worker)
        os.close(to_parent)
        block.close()
        block.unlink()


async def measure_unix(n_ask: int, n_tell: int) -> tuple[float, float]:
    where = tempfile.mkdtemp(prefix="perf-shm-")
    path = os.path.join(where, "w.sock")
    child = subprocess.Popen(
        [sys.executable, "-m", "perf.shm_ring", "serve-unix", path], stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        await asyncio.to_thread(child.stdout.readline)
        parent = Parent()
        _, end = await asyncio.get_running_loop().create_unix_connection(
            lambda: SocketEnd(parent.frame), path
        )
        parent.send = end.send
        await parent.ask(bytes([ASK]) + PING)
        figures = await parent.asks(n_ask), await parent.tells(n_tell)
        end.transport.close()
        return figures
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
        os.unlink(path)
        os.rmdir(where)


def main(argv: list[str]) -> None:
    if argv and argv[0] == "serve-shm":
        asyncio.run(serve_shm(argv[1], int(argv[2]), int(argv[3])))
        return
    if argv and argv[0] == "serve-unix":
        asyncio.run(serve_unix(argv[1]))
        return
    parser = argparse.ArgumentParser(prog="python -m perf.shm_ring")
    parser.add_argument("--n", type=int, default=20_000, help="asks per run (tells: 10x)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    runs: dict[str, list[tuple[float, float]]] = {"shm": [], "unix": []}
    for _ in range(args.repeats):  # alternated, so both see the same load
        runs["shm"].append(asyncio.run(measure_shm(args.n, 10 * args.n)))
        runs["unix"].append(asyncio.run(measure_unix(args.n, 10 * args.n)))
    medians = {
        link: (statistics.median(a for a, _ in r), statistics.median(t for _, t in r))
        for link, r in runs.items()
    }
    print(f"medians of {args.repeats} alternated runs, Python {sys.version.split()[0]}")
    print(f"{'link':<6}{'ask round trips/s':>20}{'tells/s':>14}")
    for link, (ask, tell) in medians.items():
        print(f"{link:<6}{ask:>20,.0f}{tell:>14,.0f}")
    (sa, st), (ua, ut) = medians["shm"], medians["unix"]
    verdict = "a transport" if sa >= 1.3 * ua and st >= 1.3 * ut else "keep Unix sockets"
    print(f"shm / unix: ask {sa / ua:.2f}x, tell {st / ut:.2f}x (>= 1.3x both: {verdict})")


if __name__ == "__main__":
    main(sys.argv[1:])
