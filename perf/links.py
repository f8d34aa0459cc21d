"""The transport workloads: frames between two processes, on our adapters and on floors.

The measured client runs in the worker; its peer is a fresh process,
`python -m perf.links KIND ROLE URL N`, which prints the address it listens at,
serves one connection and exits when it closes. Both ends of a measurement use
the same implementation (KIND):

- `ours`: `mycelium_actors.transports` (coalescing on; `ours-nc` with it off);
- `protocol`: a hand-written asyncio Protocol, same 4-byte length prefix;
- `streams`: asyncio streams, `readexactly` for the prefix, then the body;
- `anyio`: anyio socket streams, a buffered `receive_exactly` the same way.

Roles: `echo` sends every frame back (ping-pong: one 100-byte frame in flight);
`sink` counts N frames, then answers with one frame holding the count (the
one-way pipeline of 32-byte frames is timed until that answer arrives).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import SocketAttribute
from anyio.streams.buffered import BufferedByteReceiveStream

from mycelium_actors.transports import Connection, TcpTransport, UnixTransport
from mycelium_actors.transports.stream import StreamTransport

from . import loops
from . import meter as meters
from .meter import Meter
from .workloads import Extras

ROOT = Path(__file__).resolve().parent.parent
PING = bytes(100)
SMALL = bytes(32)
BATCH = 256  # pipeline senders yield to the loop (and drain) once per this many frames
MAX_FRAME = 1 << 20
PREFIX = 4


def _framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(PREFIX, "big") + payload


# -- the peer process ----------------------------------------------------------------


class _Peer:
    """What the peer does with frames: echo them, or count N and answer once."""

    def __init__(self, role: str, n: int, reply: Callable[[bytes], None]) -> None:
        self.role, self.left, self.reply = role, n, reply

    def frame(self, frame: bytes) -> None:
        if self.role == "echo":
            self.reply(frame)
        else:
            self.left -= 1
            if not self.left:
                self.reply(b"done")


class _OursPeer:
    def __init__(self, conn: Connection, role: str, n: int, done: asyncio.Future[None]) -> None:
        self.peer, self.done = _Peer(role, n, conn.send), done

    def frame_received(self, frame: bytes) -> None:
        self.peer.frame(frame)

    def frames_done(self) -> None:
        pass

    def connection_lost(self, reason: str | None) -> None:
        self.done.set_result(None)


class FrameProtocol(asyncio.Protocol):
    """The floor: length-prefixed frames on a bare asyncio Protocol."""

    def __init__(self, on_frame: Callable[[bytes], None], done: asyncio.Future[None]) -> None:
        self.on_frame, self.done = on_frame, done
        self.buffer = b""
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        pos = 0
        while len(buffer) - pos >= PREFIX:
            end = pos + PREFIX + int.from_bytes(buffer[pos : pos + PREFIX], "big")
            if end > len(buffer):
                break
            self.on_frame(buffer[pos + PREFIX : end])
            pos = end
        self.buffer = buffer[pos:]

    def send(self, frame: bytes) -> None:
        self.transport.write(_framed(frame))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def _transport(url: str, coalesce: bool = True) -> StreamTransport:
    return (
        UnixTransport(coalesce=coalesce)
        if url.startswith("unix")
        else TcpTransport(coalesce=coalesce)
    )


def _unix_path(url: str) -> str:
    return url.removeprefix("unix://")


def _tcp_url(sock_name: Any) -> str:
    return f"tcp://127.0.0.1:{sock_name[1]}"


async def _serve_ours(role: str, url: str, n: int, coalesce: bool = True) -> None:
    done = asyncio.get_running_loop().create_future()
    listener = await _transport(url, coalesce).listen(
        url, lambda conn: conn.start(_OursPeer(conn, role, n, done)), max_frame=MAX_FRAME
    )
    print(listener.address, flush=True)
    await done
    await listener.aclose()


async def _serve_protocol(role: str, url: str, n: int) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def factory() -> FrameProtocol:
        protocol = FrameProtocol(lambda frame: peer.frame(frame), done)
        peer = _Peer(role, n, protocol.send)
        return protocol

    await _serve_asyncio(url, done, loop.create_unix_server, loop.create_server, factory)


async def _serve_streams(role: str, url: str, n: int) -> None:
    done = asyncio.get_running_loop().create_future()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _Peer(role, n, lambda frame: writer.write(_framed(frame)))
        try:
            while True:
                size = int.from_bytes(await reader.readexactly(PREFIX), "big")
                peer.frame(await reader.readexactly(size))
        except asyncio.IncompleteReadError:
            writer.close()
            done.set_result(None)

    await _serve_asyncio(url, done, asyncio.start_unix_server, asyncio.start_server, client)


async def _serve_asyncio(
    url: str, done: asyncio.Future[None], unix: Any, tcp: Any, handler: Any
) -> None:
    if url.startswith("unix"):
        server = await unix(handler, _unix_path(url))
        print(url, flush=True)
    else:
        server = await tcp(handler, "127.0.0.1", 0)
        print(_tcp_url(server.sockets[0].getsockname()), flush=True)
    await done
    server.close()


async def _serve_anyio(role: str, url: str, n: int) -> None:
    if url.startswith("unix"):
        listener: Any = await anyio.create_unix_listener(_unix_path(url))
        print(url, flush=True)
    else:
        listeners = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        listener = listeners.listeners[0]  # one address: one socket listener
        print(f"tcp://127.0.0.1:{listener.extra(SocketAttribute.local_port)}", flush=True)
    async with listener, await listener.accept() as stream:
        receive = BufferedByteReceiveStream(stream)
        sent: list[bytes] = []
        peer = _Peer(role, n, lambda frame: sent.append(_framed(frame)))
        try:
            while True:
                size = int.from_bytes(await receive.receive_exactly(PREFIX), "big")
                peer.frame(await receive.receive_exactly(size))
                if sent:
                    await stream.send(b"".join(sent))
                    sent.clear()
        except (anyio.IncompleteRead, anyio.EndOfStream):
            pass


SERVERS: dict[str, Callable[[str, str, int], Awaitable[None]]] = {
    "ours": _serve_ours,
    "ours-nc": lambda role, url, n: _serve_ours(role, url, n, coalesce=False),
    "protocol": _serve_protocol,
    "streams": _serve_streams,
    "anyio": _serve_anyio,
}


async def _with_peer(
    kind: str, role: str, scheme: str, n: int, client: Callable[[str], Awaitable[None]]
) -> None:
    """Start the peer process, run `client` against it, wait for the peer to exit."""
    where = tempfile.mkdtemp(prefix="perf-") if scheme == "unix" else None
    url = f"unix://{where}/peer.sock" if where else "tcp://127.0.0.1:0"
    peer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "perf.links", kind, role, url, str(n),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert peer.stdout is not None
    try:
        await client((await peer.stdout.readline()).decode().strip())
        await asyncio.wait_for(peer.wait(), 30)
    finally:
        if peer.returncode is None:
            peer.kill()
            await peer.wait()
        if where:
            shutil.rmtree(where, ignore_errors=True)


# -- the measured clients -------------------------------------------------------------


class _Replies:
    def __init__(self) -> None:
        self.waiting: asyncio.Future[bytes] | None = None

    def frame_received(self, frame: bytes) -> None:
        assert self.waiting is not None
        self.waiting.set_result(frame)

    def frames_done(self) -> None:
        pass

    def connection_lost(self, reason: str | None) -> None:
        pass


async def _ours_client(address: str, coalesce: bool) -> tuple[Connection, _Replies]:
    conn = await _transport(address, coalesce).connect(address, max_frame=MAX_FRAME)
    replies = _Replies()
    conn.start(replies)
    return conn, replies


def ours_pingpong(coalesce: bool, n: int, timer: Meter) -> Callable[[str], Awaitable[None]]:
    async def client(address: str) -> None:
        conn, replies = await _ours_client(address, coalesce)
        loop = asyncio.get_running_loop()
        with timer:
            for _ in range(n):
                replies.waiting = loop.create_future()
                conn.send(PING)
                await replies.waiting
        conn.close()

    return client


def ours_pipeline(coalesce: bool, n: int, timer: Meter) -> Callable[[str], Awaitable[None]]:
    async def client(address: str) -> None:
        conn, replies = await _ours_client(address, coalesce)
        replies.waiting = asyncio.get_running_loop().create_future()
        with timer:
            for i in range(n):
                conn.send(SMALL)
                if i % BATCH == BATCH - 1:
                    await asyncio.sleep(0)
            await replies.waiting
        conn.close()

    return client


def protocol_pingpong(n: int, timer: Meter) -> Callable[[str], Awaitable[None]]:
    async def client(address: str) -> None:
        loop = asyncio.get_running_loop()
        replies = _Replies()
        protocol = FrameProtocol(replies.frame_received, loop.create_future())
        if address.startswith("unix"):
            await loop.create_unix_connection(lambda: protocol, _unix_path(address))
        else:
            host, _, port = address.removeprefix("tcp://").rpartition(":")
            await loop.create_connection(lambda: protocol, host, int(port))
        with timer:
            for _ in range(n):
                replies.waiting = loop.create_future()
                protocol.send(PING)
                await replies.waiting
        protocol.transport.close()

    return client


async def _open_streams(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.startswith("unix"):
        return await asyncio.open_unix_connection(_unix_path(address))
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    return await asyncio.open_connection(host, int(port))


def streams_pingpong(n: int, timer: Meter) -> Callable[[str], Awaitable[None]]:
    async def client(address: str) -> None:
        reader, writer = await _open_streams(address)
        frame = _framed(PING)
        with timer:
            for _ in range(n):
                writer.write(frame)
                size = int.from_bytes(await reader.readexactly(PREFIX), "big")
                await reader.readexactly(size)
        writer.close()

    return client


def streams_pipeline(n: int, timer: Meter) -> Callable[[str], Awaitable[None]]:
    async def client(address: str) -> None:
        reader, writer = await _open_streams(address)
        frame = _framed(SMALL)
        with timer:
            for i in range(n):
                writer.write(frame)
                if i % BATCH == BATCH - 1:
                    await writer.drain()
            await reader.readexactly(PREFIX + len(b"done"))
        writer.close()

    return client


def anyio_pingpong(n: int, timer: Meter) -> Callable[[str], Awaitable[None]]:
    async def client(address: str) -> None:
        if address.startswith("unix"):
            stream: Any = await anyio.connect_unix(_unix_path(address))
        else:
            host, _, port = address.removeprefix("tcp://").rpartition(":")
            stream = await anyio.connect_tcp(host, int(port))
        receive = BufferedByteReceiveStream(stream)
        frame = _framed(PING)
        async with stream:
            with timer:
                for _ in range(n):
                    await stream.send(frame)
                    size = int.from_bytes(await receive.receive_exactly(PREFIX), "big")
                    await receive.receive_exactly(size)

    return client


def _rate(n: int, timer: Meter) -> float:
    assert timer.delta is not None
    return n / timer.delta


# -- the workloads, as perf/ours.py and perf/raw.py call them ---------------------------


async def ours_rtt(scheme: str, n: int, meter: Meter) -> Extras:
    """Our adapter at both ends; coalescing off as an extra (round trips/s)."""
    await _with_peer("ours", "echo", scheme, n, ours_pingpong(True, n, meter))
    timer = meters.stopwatch()
    await _with_peer("ours-nc", "echo", scheme, n, ours_pingpong(False, n, timer))
    return {"nocoalesce_rtps": _rate(n, timer)}


async def raw_rtt(scheme: str, n: int, meter: Meter) -> Extras:
    """The Protocol floor; asyncio streams and anyio streams as extras (round trips/s)."""
    await _with_peer("protocol", "echo", scheme, n, protocol_pingpong(n, meter))
    extras = {}
    for kind, client in (("streams", streams_pingpong), ("anyio", anyio_pingpong)):
        timer = meters.stopwatch()
        await _with_peer(kind, "echo", scheme, n, client(n, timer))
        extras[f"{kind}_rtps"] = _rate(n, timer)
    extras["anyio_cost_pct"] = (_rate(n, meter) / extras["anyio_rtps"] - 1) * 100
    return extras


async def protocol_rtt(scheme: str, n: int, meter: Meter) -> None:
    """The Protocol floor alone (the remote-ask workloads' floor)."""
    await _with_peer("protocol", "echo", scheme, n, protocol_pingpong(n, meter))


async def ours_frames(scheme: str, n: int, meter: Meter) -> Extras:
    """Our adapter, coalescing on; off as an extra (frames/s)."""
    await _with_peer("ours", "sink", scheme, n, ours_pipeline(True, n, meter))
    timer = meters.stopwatch()
    await _with_peer("ours-nc", "sink", scheme, n, ours_pipeline(False, n, timer))
    return {"nocoalesce_fps": _rate(n, timer)}


async def raw_frames(scheme: str, n: int, meter: Meter) -> None:
    """asyncio streams at both ends: write per frame, drain per batch, readexactly."""
    await _with_peer("streams", "sink", scheme, n, streams_pipeline(n, meter))


def main(argv: list[str]) -> None:
    kind, role, url, n = argv[0], argv[1], argv[2], int(argv[3])
    if kind == "anyio":
        anyio.run(_serve_anyio, role, url, n, backend_options={"loop_factory": loops.new_loop})
    else:
        loops.run(SERVERS[kind](role, url, n))
    if url.startswith("unix://") and os.path.exists(_unix_path(url)):
        os.unlink(_unix_path(url))


if __name__ == "__main__":
    main(sys.argv[1:])
