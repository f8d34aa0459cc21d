"""The handshake that opens every connection between two nodes (client C, server S):

    C -> S  HELLO  [magic, version, name, incarnation, address, nonce_c, b""]
    S -> C  HELLO  [magic, version, name, incarnation, address, nonce_s, proof_s]
    C -> S  AUTH   [proof_c]
    S -> C  WELCOME []          (or GOODBYE [reason], then close)

With a secret, proof_s = HMAC(secret, "server" | nonce_c | nonce_s) and
proof_c = HMAC(secret, "client" | nonce_s | nonce_c): each side proves it
knows the secret without sending it, bound to both sides' fresh nonces.

The steps here speak the protocol only; what a finished handshake means for
the node's peers (which connection it keeps) is `NetworkNode`'s.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import TransportError
from ..transports.base import Connection
from ..wire import frames as wire

if TYPE_CHECKING:
    from .peer import Peer

#: Connections that may be in their handshake at once; more are closed at once.
MAX_HANDSHAKES = 64

#: Builds our HELLO from (nonce, proof).
Hello = Callable[[bytes, bytes], bytes]


class Link:
    """A connection's frame sink: the handshake's queue, then its peer."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.peer: Peer | None = None
        self.lost_reason: str | None = None  # why the connection closed, if it did

    def frame_received(self, frame: bytes) -> None:
        self.frames.put_nowait(frame)

    def frames_done(self) -> None:
        pass

    def connection_lost(self, reason: str | None) -> None:
        self.lost_reason = reason
        self.frames.put_nowait(None)

    def protect(self, send_key: bytes, receive_key: bytes) -> None:
        """Signed frames from now on. The peer sends nothing between its proof
        and the end of the handshake, so whatever is queued here now came from
        someone else (over a bus anyone may publish to) and is dropped."""
        self.conn.protect(send_key, receive_key)
        while not self.frames.empty():
            if self.frames.get_nowait() is None:
                self.frames.put_nowait(None)  # a close is not a frame: keep it
                break

    def attach(self, peer: Peer) -> None:
        """From now on the peer gets the frames (no extra call per frame)."""
        self.peer = peer
        while not self.frames.empty():  # frames that came right behind the handshake
            frame = self.frames.get_nowait()
            if frame is not None:
                peer.frame_received(frame)
        self.frame_received = peer.frame_received  # type: ignore[method-assign]
        self.frames_done = peer.frames_done  # type: ignore[method-assign]
        self.connection_lost = self._lost  # type: ignore[method-assign]

    def detach(self) -> None:
        """A replaced connection: whatever it still delivers is ignored."""
        self.frame_received = _ignore  # type: ignore[method-assign, assignment]
        self.frames_done = _nothing  # type: ignore[method-assign]
        self.connection_lost = _ignore  # type: ignore[method-assign, assignment]

    def _lost(self, reason: str | None) -> None:
        peer = self.peer
        if peer is not None and peer.conn is self.conn:
            peer.connection_lost(reason)

    async def next_frame(self, timeout: float) -> bytes:
        try:
            frame = await asyncio.wait_for(self.frames.get(), timeout)
        except TimeoutError:
            raise TransportError(f"no handshake within {timeout}s") from None
        if frame is None:
            why = f": {self.lost_reason}" if self.lost_reason else ""
            raise TransportError(f"the connection closed during the handshake{why}")
        return frame


def _ignore(_: object) -> None:
    pass


def _nothing() -> None:
    pass


def hello(name: str, incarnation: str, address: str | None, nonce: bytes, proof: bytes) -> bytes:
    return wire.control(
        wire.HELLO,
        wire.MAGIC,
        wire.VERSION,
        name,
        incarnation,
        address,
        nonce,
        proof,
    )


def read_hello(frame: bytes) -> tuple[str, str, str | None, bytes, bytes]:
    if not frame:
        raise TransportError("an empty frame where HELLO was due")
    if frame[0] == wire.GOODBYE:
        (reason,) = wire.items(frame, 1)
        raise TransportError(f"refused: {reason}")
    if frame[0] != wire.HELLO:
        raise TransportError("not a mycelium node (no HELLO)")
    magic, version, name, incarnation, address, nonce, proof = wire.items(frame, 7)
    if magic != wire.MAGIC or version != wire.VERSION:
        raise TransportError(f"protocol {magic!r} version {version!r} is not ours")
    if not (
        isinstance(name, str)
        and isinstance(incarnation, str)
        and (address is None or isinstance(address, str))
        and isinstance(nonce, bytes)
        and len(nonce) == 16
        and isinstance(proof, bytes)
    ):
        raise TransportError("a malformed HELLO")
    return name, incarnation, address, nonce, proof


async def client_handshake(
    link: Link,
    url: str,
    our_hello: Hello,
    secret: bytes | None,
    timeout: float,
    log: Callable[..., Any],
) -> tuple[str, str]:
    """C's side; returns the server's (name, incarnation) or raises `TransportError`."""
    mine = os.urandom(16)
    link.conn.send(our_hello(mine, b""), urgent=True)
    try:
        name, incarnation, _, theirs, their_proof = read_hello(await link.next_frame(timeout))
        if secret is not None and not wire.proof_matches(
            wire.proof(secret, b"server", mine, theirs), their_proof
        ):
            raise TransportError("wrong secret (or none): it did not prove the shared secret")
        link.conn.send(
            wire.control(wire.AUTH, wire.proof(secret, b"client", theirs, mine)), urgent=True
        )
        if secret is not None:
            link.protect(*wire.frame_keys(secret, mine, theirs))
        frame = await link.next_frame(timeout)
        if frame[:1] == bytes((wire.GOODBYE,)):
            (reason,) = wire.items(frame, 1)
            raise TransportError(f"refused: {reason}")
        if frame[:1] != bytes((wire.WELCOME,)):
            raise TransportError("the handshake ended without WELCOME")
    except (TransportError, wire.ProtocolError) as exc:
        log("node.refused", url, reason=str(exc))
        raise TransportError(f"cannot connect to {url}: {exc}") from None
    return name, incarnation


async def server_handshake(
    link: Link, our_hello: Hello, secret: bytes | None, timeout: float
) -> tuple[str, str, str | None]:
    """S's side up to the client's proof; returns the client's (name, incarnation,
    address). Whatever goes wrong raises; WELCOME or GOODBYE is the caller's to send."""
    name, incarnation, address, theirs, _ = read_hello(await link.next_frame(timeout))
    mine = os.urandom(16)
    link.conn.send(our_hello(mine, wire.proof(secret, b"server", theirs, mine)), urgent=True)
    frame = await link.next_frame(timeout)
    if frame[:1] != bytes((wire.AUTH,)):
        raise TransportError("no AUTH after HELLO")
    (their_proof,) = wire.items(frame, 1)
    if secret is not None and not wire.proof_matches(
        wire.proof(secret, b"client", mine, theirs), their_proof
    ):
        raise TransportError("a secret is required" if not their_proof else "wrong secret")
    if secret is not None:
        from_them, to_them = wire.frame_keys(secret, theirs, mine)
        link.protect(to_them, from_them)
    return name, incarnation, address
