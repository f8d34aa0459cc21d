"""The transport conformance suite: every adapter in conftest.ADAPTERS passes it.

Tests that need a byte stream (a hand-written length prefix, a killed peer
process, counting socket writes) take `stream_adapter` instead of `adapter`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from mycelium_actors.errors import TransportError

from .conftest import MAX, WAIT, Adapter, Pair, Recorder, Server, open_pair

SMALL = [f"frame {i}".encode() * (i % 7) for i in range(2000)]
LARGE = [bytes([i]) * MAX for i in range(3)] + [os.urandom(MAX - 1)]


def _raw_socket(address: str) -> socket.socket:
    """A plain blocking socket connected to a unix or tcp listener."""
    scheme, _, rest = address.partition("://")
    if scheme == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(rest)
    else:
        host, _, port = rest.rpartition(":")
        sock = socket.create_connection((host.strip("[]"), int(port)))
    return sock


# -- frames ------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["client to server", "server to client"])
async def test_frames_arrive_in_order_and_intact(pair: Pair, direction: str) -> None:
    sender, receiver = (pair.client, pair.server_got)
    if direction == "server to client":
        sender, receiver = (pair.accepted, pair.client_got)
    frames = [*SMALL[:1000], *LARGE, *SMALL[1000:]]
    for i, frame in enumerate(frames):
        sender.send(frame)
        if i % 100 == 0:
            await asyncio.sleep(0)  # across many passes of the loop, not only one
    assert await receiver.frames_count(len(frames)) == frames


async def test_a_frame_above_the_maximum_is_refused_at_send_and_the_connection_stays_usable(
    pair: Pair,
) -> None:
    with pytest.raises(TransportError, match=f"frame of {MAX + 1} bytes exceeds the maximum"):
        pair.client.send(bytes(MAX + 1))
    pair.client.send(b"still here")
    assert await pair.server_got.frames_count(1) == [b"still here"]
    assert not pair.client.closed


async def test_a_peer_sending_a_frame_above_our_maximum_is_cut_off_with_the_reason(
    adapter: Adapter,
) -> None:
    pair = await open_pair(adapter, server_max=1000, client_max=MAX)
    pair.client.send(b"fits")
    pair.client.send(bytes(1001))
    assert await pair.server_got.reason() == "frame of 1001 bytes exceeds the maximum 1000"
    assert pair.server_got.frames == [b"fits"]
    assert await pair.client_got.reason()  # the sender sees the connection go
    await pair.server.aclose()


async def test_a_length_prefix_above_the_maximum_closes_before_the_body_is_read(
    stream_adapter: Adapter,
) -> None:
    server = await Server.open(stream_adapter)
    with _raw_socket(server.address) as raw:
        raw.sendall(struct.pack(">I", 2**32 - 1) + b"only the start of the body")
        got = Recorder()
        (await server.accept()).start(got)
        assert await got.reason() == f"frame of {2**32 - 1} bytes exceeds the maximum {MAX}"
    await server.aclose()


async def test_frames_done_follows_the_frames_of_each_read(pair: Pair) -> None:
    for frame in SMALL[:50]:
        pair.client.send(frame)
    await pair.server_got.frames_count(50)
    await asyncio.wait_for(_until(lambda: pair.server_got.events[-1] == "done"), WAIT)
    events = pair.server_got.events
    assert events[0] == "frame"
    assert "done,done" not in ",".join(events)  # once per read, never for an empty one


async def test_urgent_frames_overtake_a_pending_backlog(adapter: Adapter) -> None:
    # The receiver does not read until started, so a large frame fills the
    # socket buffers and the sender's writes back up; everything sent later waits.
    pair = await open_pair(adapter, server_max=16 << 20, client_max=16 << 20, start=False)
    pair.client.send(bytes(16 << 20))
    for i in range(10):  # one per pass: queued because the backlog is pending
        await asyncio.sleep(0)
        pair.client.send(b"normal %d" % i)
    pair.client.send(b"urgent", urgent=True)
    if adapter.name == "nats":
        # NATS takes every publish at once: no backlog waits at the sender, so
        # the overtaking happens among the frames queued at the receiver.
        await asyncio.wait_for(_until(lambda: len(pair.accepted._backlog) == 12), WAIT)
    pair.accepted.start(pair.server_got)
    frames = await pair.server_got.frames_count(12)
    smalls = [f for f in frames if len(f) < 100]
    assert smalls[0] == b"urgent"
    assert smalls[1:] == [b"normal %d" % i for i in range(10)]
    pair.close()
    await pair.server.aclose()


class CountingWrites:
    """Stands in for a connection's asyncio transport, counting `write` calls."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.writes = inner, 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.inner.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.mark.parametrize(("coalesce", "most_writes"), [(True, 2), (False, 1000)])
async def test_frames_sent_in_one_pass_are_coalesced_into_few_writes(
    stream_adapter: Adapter, coalesce: bool, most_writes: int
) -> None:
    adapter = attrs.evolve(
        stream_adapter, transport=type(stream_adapter.transport)(coalesce=coalesce)
    )
    pair = await open_pair(adapter)
    counting = pair.client._transport = CountingWrites(pair.client._transport)  # type: ignore[attr-defined]
    for i in range(1000):
        pair.client.send(b"%d" % i)
    assert await pair.server_got.frames_count(1000) == [b"%d" % i for i in range(1000)]
    assert counting.writes <= most_writes  # the first frame at once, the rest joined
    pair.close()
    await pair.server.aclose()


async def test_protected_connections_carry_frames_both_ways_and_close_with_a_reason(
    pair: Pair,
) -> None:
    """After `protect()` at both ends (an adapter may sign and check each frame,
    or do nothing), frames of every size, urgent or not, and the close get through."""
    one, other = b"k" * 32, b"l" * 32
    pair.client.protect(one, other)
    pair.accepted.protect(other, one)
    frames = [*SMALL[:50], *LARGE[:1]]
    for frame in frames:
        pair.client.send(frame)
        pair.accepted.send(frame, urgent=True)
    assert await pair.server_got.frames_count(len(frames)) == frames
    assert await pair.client_got.frames_count(len(frames)) == frames
    pair.client.close("signed off")
    assert isinstance(await pair.server_got.reason(), str)


# -- closing ----------------------------------------------------------------------


@pytest.mark.parametrize("closer", ["client", "server"])
async def test_close_reaches_the_other_side(pair: Pair, closer: str) -> None:
    (closing, closing_got), (other, other_got) = [
        (pair.client, pair.client_got),
        (pair.accepted, pair.server_got),
    ][:: 1 if closer == "client" else -1]
    closing.send(b"last words")
    closing.close("done here")
    assert closing.closed
    assert isinstance(await other_got.reason(), str)
    assert other_got.frames == [b"last words"]  # what was queued is flushed first
    assert await closing_got.reason() is None  # closed on purpose by this side
    assert other.closed


@pytest.mark.parametrize("who", ["this side", "the peer"])
async def test_sending_after_close_raises(pair: Pair, who: str) -> None:
    if who == "this side":
        pair.client.close()
    else:
        pair.accepted.close()
        await pair.client_got.reason()
    with pytest.raises(TransportError, match="closed"):
        pair.client.send(b"too late")


async def test_a_peer_resetting_its_socket_is_connection_lost(stream_adapter: Adapter) -> None:
    server = await Server.open(stream_adapter)
    raw = _raw_socket(server.address)
    got = Recorder()
    (await server.accept()).start(got)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
    raw.close()
    assert isinstance(await got.reason(), str)
    await server.aclose()


PEER = """
import socket, sys
scheme, _, rest = sys.argv[1].partition("://")
if scheme == "unix":
    s = socket.socket(socket.AF_UNIX)
    s.connect(rest)
else:
    host, _, port = rest.rpartition(":")
    s = socket.create_connection((host.strip("[]"), int(port)))
sys.stdin.read()
"""


async def test_a_killed_peer_process_is_connection_lost(stream_adapter: Adapter) -> None:
    server = await Server.open(stream_adapter)
    with subprocess.Popen(
        [sys.executable, "-c", PEER, server.address], stdin=subprocess.PIPE
    ) as peer:
        try:
            got = Recorder()
            (await server.accept()).start(got)
            peer.kill()
            assert isinstance(await got.reason(), str)
        finally:
            peer.kill()
    await server.aclose()


async def test_a_client_reconnects_after_the_listener_restarts_at_the_same_address(
    adapter: Adapter,
) -> None:
    pair = await open_pair(adapter)
    address = pair.server.address
    await pair.server.aclose()
    pair.accepted.close()  # the node that restarts takes its connections with it
    await pair.client_got.reason()
    server = await Server.open(adapter, url=address)
    assert server.address == address
    client = await adapter.transport.connect(address, max_frame=MAX)
    got = Recorder()
    (await server.accept()).start(got)
    client.send(b"hello again")
    assert await got.frames_count(1) == [b"hello again"]
    client.close()
    await got.reason()
    await server.aclose()


# -- addresses --------------------------------------------------------------------


async def test_two_listeners_on_one_address_is_an_error(adapter: Adapter) -> None:
    server = await Server.open(adapter)
    with pytest.raises(TransportError, match="cannot listen at"):
        await Server.open(adapter, url=server.address)
    await server.aclose()


async def test_connecting_where_nothing_listens_raises_naming_the_url(adapter: Adapter) -> None:
    server = await Server.open(adapter)
    address = server.address
    await server.aclose()
    with pytest.raises(TransportError, match=f"cannot connect to {address}"):
        await adapter.transport.connect(address, max_frame=MAX)


async def test_a_max_frame_the_prefix_cannot_carry_is_a_value_error(adapter: Adapter) -> None:
    with pytest.raises(ValueError, match="max_frame"):
        await adapter.transport.connect(adapter.url, max_frame=2**32)


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0)
