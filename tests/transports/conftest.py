"""One fixture, `adapter`, runs the conformance suite against every transport.

A new adapter joins by adding one entry to `ADAPTERS`: a name, how to build its
transport, a fresh address to listen at, and whether it carries frames over a
byte stream (the tests that write raw length prefixes or kill a peer process).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import attrs
import pytest
from natsserver import shared

from mycelium_actors.transports import (
    Connection,
    Listener,
    MemoryTransport,
    TcpTransport,
    Transport,
    UnixTransport,
)
from mycelium_actors.transports.nats import NatsTransport

WAIT = 10.0  # seconds: a bound for what should take milliseconds, even on a loaded CI box
MAX = 256 * 1024  # a small maximum keeps the "up to max_frame" frames quick


@attrs.frozen
class Adapter:
    name: str
    transport: Transport
    url: str  # where a test listens
    stream: bool  # frames over a byte stream: raw prefixes can be written, peers killed


ADAPTERS: dict[str, Callable[[Path], Adapter]] = {
    "memory": lambda _: Adapter("memory", MemoryTransport(), "memory://conformance", False),
    "unix": lambda tmp: Adapter("unix", UnixTransport(), f"unix://{tmp}/node.sock", True),
    "tcp": lambda _: Adapter("tcp", TcpTransport(), "tcp://127.0.0.1:0", True),
    # A real nats-server (tests/natsserver.py); frames are NATS messages, not a stream.
    "nats": lambda tmp: Adapter("nats", NatsTransport(), f"{shared(tmp).url}/conformance", False),
}
STREAM = [name for name in ADAPTERS if name in ("unix", "tcp")]


@pytest.fixture(params=list(ADAPTERS))
def adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Adapter:
    return ADAPTERS[request.param](tmp_path)


@pytest.fixture(params=STREAM)
def stream_adapter(request: pytest.FixtureRequest, tmp_path: Path) -> Adapter:
    return ADAPTERS[request.param](tmp_path)


class Recorder:
    """A FrameSink that keeps what it was given and lets a test wait for it."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.events: list[str] = []  # "frame" and "done", in call order
        self.lost: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._wanted: tuple[int, asyncio.Future[None]] | None = None

    def frame_received(self, frame: bytes) -> None:
        assert not self.lost.done(), "a frame after connection_lost"
        self.frames.append(frame)
        self.events.append("frame")
        if self._wanted and len(self.frames) >= self._wanted[0]:
            self._wanted[1].set_result(None)
            self._wanted = None

    def frames_done(self) -> None:
        self.events.append("done")

    def connection_lost(self, reason: str | None) -> None:
        assert not self.lost.done(), "connection_lost twice"
        self.lost.set_result(reason)

    async def frames_count(self, count: int) -> list[bytes]:
        if len(self.frames) < count:
            wanted = asyncio.get_running_loop().create_future()
            self._wanted = (count, wanted)
            await asyncio.wait_for(wanted, WAIT)
        return self.frames

    async def reason(self) -> str | None:
        return await asyncio.wait_for(asyncio.shield(self.lost), WAIT)


class Server:
    """A listener whose accepted connections wait in a queue, not started."""

    def __init__(self) -> None:
        self.listener: Listener | None = None
        self.accepted: asyncio.Queue[Connection] = asyncio.Queue()

    @classmethod
    async def open(cls, adapter: Adapter, url: str | None = None, max_frame: int = MAX) -> Server:
        server = cls()
        server.listener = await adapter.transport.listen(
            url or adapter.url, server.accepted.put_nowait, max_frame=max_frame
        )
        return server

    @property
    def address(self) -> str:
        assert self.listener is not None
        return self.listener.address

    async def accept(self) -> Connection:
        return await asyncio.wait_for(self.accepted.get(), WAIT)

    async def aclose(self) -> None:
        assert self.listener is not None
        await self.listener.aclose()


@attrs.define
class Pair:
    server: Server
    client: Connection
    accepted: Connection
    client_got: Recorder
    server_got: Recorder

    def close(self) -> None:
        self.client.close()
        self.accepted.close()


async def open_pair(
    adapter: Adapter, *, server_max: int = MAX, client_max: int = MAX, start: bool = True
) -> Pair:
    server = await Server.open(adapter, max_frame=server_max)
    client = await adapter.transport.connect(server.address, max_frame=client_max)
    pair = Pair(server, client, await server.accept(), Recorder(), Recorder())
    pair.client.start(pair.client_got)
    if start:
        pair.accepted.start(pair.server_got)
    return pair


@pytest.fixture
async def pair(adapter: Adapter) -> AsyncIterator[Pair]:
    pair = await open_pair(adapter)
    yield pair
    pair.close()
    await pair.server.aclose()
