"""`memory://name`: the in-process twin of the socket transports, for tests.

Both ends of a connection live on one event loop (the loop that called
`connect`); using them from another loop or thread is not supported. Frames are
delivered on a later pass of the loop (`call_soon`), never inside `send`, in
order, urgent ones first among those not yet delivered, then `frames_done()`
once per batch, as after a socket read. Listening names are kept per
`MemoryTransport` instance; the registry holds one per process.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable
from ssl import SSLContext

from ..errors import TransportError
from .base import (
    Connection,
    FrameSink,
    Listener,
    Transport,
    check_max_frame,
    no_tls,
    oversize,
)
from .urls import split_simple


class MemoryConnection(Connection):
    """One end of an in-memory pair; `receive` and `peer_closed` are its peer's doors."""

    def __init__(self, peer: str, max_frame: int) -> None:
        self.peer = peer
        self.source = "memory"
        self._max_frame = max_frame
        self._max_in = max_frame
        self._loop = asyncio.get_running_loop()
        self._other: MemoryConnection | None = None
        self._sink: FrameSink | None = None
        self._urgent: deque[bytes] = deque()
        self._normal: deque[bytes] = deque()
        self._scheduled = False
        self._closed = False
        self._lost: tuple[str | None] | None = None  # the reason to deliver, once

    def pair_with(self, other: MemoryConnection) -> None:
        self._other = other

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self, sink: FrameSink) -> None:
        self._sink = sink
        self._schedule()

    def send(self, frame: bytes, urgent: bool = False) -> None:
        if self._closed or self._other is None:
            raise TransportError(f"connection to {self.peer} is closed")
        if len(frame) > self._max_frame:
            raise TransportError(oversize(len(frame), self._max_frame))
        self._other.receive(bytes(frame), urgent)

    def limit_incoming(self, max_frame: int) -> None:
        self._max_in = min(max_frame, self._max_frame)

    def close(self, reason: str | None = None) -> None:
        self._end(None, f"closed by the peer: {reason}" if reason else "closed by the peer")
        self._drop()  # as a socket reads nothing more once closed

    def receive(self, frame: bytes, urgent: bool) -> None:
        """The peer sent `frame`: queue it for the next delivery."""
        if not self._closed:
            (self._urgent if urgent else self._normal).append(frame)
            self._schedule()

    def peer_closed(self, reason: str) -> None:
        """The peer closed: what it sent before is delivered first, then the loss."""
        self._end(reason, None)

    def _end(self, reason: str | None, peer_reason: str | None) -> None:
        if self._closed:
            return
        self._closed = True
        if self._other is not None and peer_reason is not None:
            self._other.peer_closed(peer_reason)
        self._lost = (reason,)
        self._schedule()

    def _schedule(self) -> None:
        if self._sink is not None and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        self._scheduled = False
        sink = self._sink
        if sink is None:
            return
        delivered = False
        while self._urgent or self._normal:
            frame = (self._urgent or self._normal).popleft()
            if len(frame) > self._max_in:
                # What a socket adapter does when a peer announces too long a frame.
                self._end(oversize(len(frame), self._max_in), "closed by the peer")
                self._drop()
                break
            sink.frame_received(frame)
            delivered = True
        if delivered:
            sink.frames_done()
        if self._lost is not None:
            self._sink = None  # connection_lost is delivered once
            sink.connection_lost(self._lost[0])

    def _drop(self) -> None:
        self._urgent.clear()
        self._normal.clear()


class MemoryListener(Listener):
    """A name in its transport's table, with what to do with each new connection."""

    def __init__(
        self,
        address: str,
        accept: Callable[[Connection], None],
        max_frame: int,
        table: dict[str, MemoryListener],
    ) -> None:
        self.address = address
        self.accept = accept
        self.max_frame = max_frame
        self._table = table

    async def aclose(self) -> None:
        if self._table.get(self.address) is self:
            del self._table[self.address]


class MemoryTransport(Transport):
    """Listeners by name in this instance's table; connections are in-memory pairs."""

    def __init__(self) -> None:
        self._table: dict[str, MemoryListener] = {}
        self._clients = itertools.count(1)

    async def connect(
        self, node_url: str, *, max_frame: int, ssl: SSLContext | None = None
    ) -> Connection:
        """`ssl` is ignored: the frames never leave this process."""
        check_max_frame(max_frame)
        address = self._node(node_url)
        listener = self._table.get(address)
        if listener is None:
            raise TransportError(f"cannot connect to {address}: nothing listens there")
        client = MemoryConnection(address, max_frame)
        server = MemoryConnection(f"{address} client {next(self._clients)}", listener.max_frame)
        client.pair_with(server)
        server.pair_with(client)
        listener.accept(server)
        return client

    async def listen(
        self,
        node_url: str,
        accept: Callable[[Connection], None],
        *,
        max_frame: int,
        ssl: SSLContext | None = None,
    ) -> Listener:
        """`ssl` is refused (`TransportError`): there is no TLS in memory."""
        check_max_frame(max_frame)
        address = self._node(node_url)
        if ssl is not None:
            raise TransportError(no_tls(address, "memory:// never leaves this process"))
        if address in self._table:
            raise TransportError(f"cannot listen at {address}: address in use")
        listener = self._table[address] = MemoryListener(address, accept, max_frame, self._table)
        return listener

    def split(self, url: str) -> tuple[str, str]:
        return split_simple("memory", url)

    def _node(self, node_url: str) -> str:
        node, path = self.split(node_url)
        if path != "/":
            raise ValueError(f"{node_url!r} is an actor URL, not a node URL")
        return node
