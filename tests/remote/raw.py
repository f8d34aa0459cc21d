"""A raw-socket client of the node protocol, for tests that speak for a peer:
garbage, floods, impostors, clients that never read. Blocking sockets: call
it from a thread (`asyncio.to_thread`) when the node runs in the test's loop."""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

import msgspec

from mycelium_actors.wire import frames as wire

#: HELLO's first two items, the same in every version.
HELLO_HEAD = (wire.MAGIC, wire.VERSION)


def frame(payload: bytes) -> bytes:
    """`payload` with its 4-byte length prefix."""
    return struct.pack(">I", len(payload)) + payload


def hello(
    name: str = "fuzz",
    address: str | None = None,
    incarnation: str | None = None,
    max_frame: int = 1 << 24,
    version: int = wire.VERSION,
) -> bytes:
    incarnation = incarnation or os.urandom(8).hex()
    items = (wire.MAGIC, version, name, incarnation, address, os.urandom(16), b"", max_frame)
    return wire.control(wire.HELLO, *items)


def handshake(sock: socket.socket, **fields: Any) -> wire.Hello:
    """Pass the handshake with no secret, as a well-behaved client would; the
    server's HELLO. `fields` go to `hello`."""
    sock.sendall(frame(hello(**fields)))
    theirs = wire.decode(wire.Hello, read_frame(sock))
    sock.sendall(frame(wire.Auth(b"").frame()))
    welcome = read_frame(sock)
    assert welcome[:1] == bytes((wire.WELCOME,)), msgspec.msgpack.decode(welcome[1:])
    return theirs


def read_frame(sock: socket.socket) -> bytes:
    head = read_exactly(sock, 4)
    return read_exactly(sock, struct.unpack(">I", head)[0])


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def goodbye(sock: socket.socket) -> str:
    """Read until a GOODBYE (skipping pings, credits, a HELLO); its reason."""
    while True:
        got = read_frame(sock)
        if got[:1] == bytes((wire.GOODBYE,)):
            return wire.decode(wire.Goodbye, got).reason


def connect(address: str, timeout: float = 5.0) -> socket.socket:
    """A socket connected to the node at `address` (unix:// or tcp://)."""
    if address.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address.removeprefix("unix://"))
        return sock
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)


def tell_frame(path: bytes, body: bytes) -> bytes:
    return b"T" + struct.pack(">H", len(path)) + path + body


def ask_frame(request: int, path: bytes, body: bytes) -> bytes:
    return b"A" + struct.pack(">IH", request, len(path)) + path + body


def reply(sock: socket.socket) -> tuple[int, int, bytes]:
    """The next REPLY's (request id, status, payload); credits and pings may come first."""
    got = read_frame(sock)
    while got[:1] != b"R":
        got = read_frame(sock)
    request, status = struct.unpack(">IB", got[1:6])
    return request, status, got[6:]
