"""The handshake that opens every connection between two nodes (client C, server S):

    C -> S  HELLO  [magic, version, name, incarnation, address, nonce_c, b"", max_frame]
    S -> C  HELLO  [magic, version, name, incarnation, address, nonce_s, proof_s, max_frame]
    C -> S  AUTH   [proof_c]
    S -> C  WELCOME []          (or GOODBYE [reason], then close)

With a secret, proof_s = HMAC(secret, "server" | nonce_c | nonce_s) and
proof_c = HMAC(secret, "client" | nonce_s | nonce_c): each side proves it
knows the secret without sending it, bound to both sides' fresh nonces.
A handshake has one deadline, however its frames dribble in; a peer of
another protocol version gets GOODBYE naming both versions.

The steps here speak the protocol only; what a finished handshake means for
the node's peers (which connection routes where) is `NetworkNode`'s.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import TransportError
from ..kernel.clock import Clock
from ..transports.base import Connection
from ..wire import frames as wire

if TYPE_CHECKING:
    from .peer import Peer

#: Connections that may be in their handshake at once; a new one past this
#: pushes out the oldest (with GOODBYE), so silent connections lock nobody out.
MAX_HANDSHAKES = 64
#: Of those, how many one source (an IP address; every unix client is one
#: source) may hold; its new one pushes out its own oldest.
MAX_HANDSHAKES_PER_SOURCE = 16
#: The longest a handshake may take, whatever the heartbeat timeout (it takes
#: milliseconds; a connection that has proved nothing is not kept long).
HANDSHAKE_TIMEOUT = 3.0

_EXPIRED = b""  # queued when the handshake's deadline passes (no frame is empty)

#: Builds our HELLO from (nonce, proof).
Hello = Callable[[bytes, bytes], bytes]


class Link:
    """A connection's frame sink: the handshake's queue, then its peer."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.frames: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.peer: Peer | None = None
        self.lost_reason: str | None = None  # why the connection closed, if it did
        self.timeout = 0.0
        self._deadline: Any = None

    def arm(self, clock: Clock, timeout: float) -> None:
        """One deadline for the whole handshake (not one per frame)."""
        self.timeout = timeout
        self._deadline = clock.call_later(timeout, self.frames.put_nowait, _EXPIRED)

    def disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

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

    async def next_frame(self) -> bytes:
        frame = await self.frames.get()
        if frame is None:
            why = f": {self.lost_reason}" if self.lost_reason else ""
            raise TransportError(f"the connection closed during the handshake{why}")
        if frame is _EXPIRED:
            raise TransportError(f"no handshake within {self.timeout}s")
        return frame


def _ignore(_: object) -> None:
    pass


def _nothing() -> None:
    pass


class VersionMismatch(TransportError):
    """The peer speaks another version of the node protocol."""


def hello(
    name: str, incarnation: str, address: str | None, nonce: bytes, proof: bytes, max_frame: int
) -> bytes:
    return wire.Hello(
        wire.MAGIC, wire.VERSION, name, incarnation, address, nonce, proof, max_frame
    ).frame()


def refusal(frame: bytes) -> str:
    """The reason in a GOODBYE frame."""
    try:
        return wire.decode(wire.Goodbye, frame).reason
    except wire.ProtocolError as exc:
        return str(exc)


def read_hello(frame: bytes) -> wire.Hello:
    """A peer's HELLO; `TransportError` (`VersionMismatch` for another version)."""
    if not frame:
        raise TransportError("an empty frame where HELLO was due")
    if frame[0] == wire.GOODBYE:
        raise TransportError(f"refused: {refusal(frame)}")
    if frame[0] != wire.HELLO:
        raise TransportError("not a mycelium node (no HELLO)")
    try:
        head = wire.decode(wire.HelloHead, frame)
    except wire.ProtocolError as exc:
        raise TransportError(str(exc)) from None
    if head.magic != wire.MAGIC:
        raise TransportError(f"not a mycelium node (magic {head.magic!r})")
    if head.version != wire.VERSION:
        raise VersionMismatch(
            f"protocol version {head.version!r} is not supported: this node speaks "
            f"version {wire.VERSION}"
        )
    try:
        return wire.decode(wire.Hello, frame)
    except wire.ProtocolError as exc:
        raise TransportError(str(exc)) from None


async def client_handshake(
    link: Link,
    url: str,
    our_hello: Hello,
    secret: bytes | None,
    log: Callable[..., Any],
) -> wire.Hello:
    """C's side; returns the server's HELLO or raises `TransportError`."""
    mine = os.urandom(16)
    link.conn.send(our_hello(mine, b""), urgent=True)
    try:
        try:
            theirs = read_hello(await link.next_frame())
        except VersionMismatch as exc:
            link.conn.send(wire.Goodbye(str(exc)).frame(), urgent=True)
            raise
        if secret is not None and not wire.proof_matches(
            wire.proof(secret, b"server", mine, theirs.nonce), theirs.proof
        ):
            raise TransportError("wrong secret (or none): it did not prove the shared secret")
        link.conn.send(
            wire.Auth(wire.proof(secret, b"client", theirs.nonce, mine)).frame(), urgent=True
        )
        if secret is not None:
            link.protect(*wire.frame_keys(secret, mine, theirs.nonce))
        frame = await link.next_frame()
        if frame[:1] == bytes((wire.GOODBYE,)):
            raise TransportError(f"refused: {refusal(frame)}")
        if frame[:1] != bytes((wire.WELCOME,)):
            raise TransportError("the handshake ended without WELCOME")
    except (TransportError, wire.ProtocolError) as exc:
        log("node.refused", url, reason=str(exc))
        raise TransportError(f"cannot connect to {url}: {exc}") from None
    finally:
        link.disarm()
    return theirs


async def server_handshake(
    link: Link, our_hello: Hello, secret: bytes | None, check: Callable[[wire.Hello], None]
) -> wire.Hello:
    """S's side up to the client's proof; returns the client's HELLO, which
    `check` saw first (and may refuse by raising). Whatever goes wrong raises;
    WELCOME or GOODBYE is the caller's to send."""
    theirs = read_hello(await link.next_frame())
    check(theirs)
    mine = os.urandom(16)
    link.conn.send(our_hello(mine, wire.proof(secret, b"server", theirs.nonce, mine)), urgent=True)
    frame = await link.next_frame()
    if frame[:1] != bytes((wire.AUTH,)):
        raise TransportError("no AUTH after HELLO")
    their_proof = wire.decode(wire.Auth, frame).proof
    if secret is not None and not wire.proof_matches(
        wire.proof(secret, b"client", mine, theirs.nonce), their_proof
    ):
        raise TransportError("a secret is required" if not their_proof else "wrong secret")
    if secret is not None:
        from_them, to_them = wire.frame_keys(secret, theirs.nonce, mine)
        link.protect(to_them, from_them)
    return theirs
