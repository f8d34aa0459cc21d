"""What a transport adapter implements: framed connections between nodes.

A transport moves *frames* (byte strings) between two nodes, in order,
reliably, with a length limit; it knows nothing of actors. Adapters register
by URL scheme (`transports.registry`), so the layers above reach them by
scheme only and never import one.

Exceptions: every method raises `TransportError` (from `errors`) for anything
that goes wrong with the network, with the adapter's own exception as
`__cause__`.

TLS: `connect` and `listen` take `ssl=`, an `ssl.SSLContext` (a client one to
connect, a server one to listen). The node passes it only when the system has
a context for that side, so an adapter written before the keyword keeps
working for nodes without TLS. An adapter that does not encrypt with it says
so: `listen` raises `TransportError` (a node must not believe it serves TLS
when it does not), `connect` ignores it where the link is protected another
way (a unix socket file of mode 0600, one process's memory, the NATS server's
own TLS), since the node at the other end cannot speak TLS there either.
"""

from __future__ import annotations

import ssl as _ssl
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Protocol

# -- the frame limit every adapter enforces, and how it is worded ----------------

#: A stream frame's length prefix: 4 bytes, big-endian.
PREFIX = 4
#: The largest length the prefix can carry.
LARGEST = 2**32 - 1


def check_max_frame(max_frame: int) -> None:
    """Raises ValueError for a maximum a length prefix cannot carry."""
    if not 1 <= max_frame <= LARGEST:
        raise ValueError(f"max_frame must be between 1 and {LARGEST} bytes, got {max_frame}")


def oversize(size: int, max_frame: int) -> str:
    return f"frame of {size} bytes exceeds the maximum {max_frame}"


def no_tls(node_url: str, instead: str) -> str:
    """What `listen(..., ssl=...)` says on an adapter without TLS."""
    return f"cannot listen at {node_url} with ssl=: TLS is for tcp:// ({instead})"


class FrameSink(Protocol):
    """What a connection delivers to; called on the connection's event loop."""

    def frame_received(self, frame: bytes) -> None:
        """One whole frame, without its length prefix."""

    def frames_done(self) -> None:
        """The frames of one read are delivered (a place to flush batched work)."""

    def connection_lost(self, reason: str | None) -> None:
        """The connection is closed (None: closed on purpose by this side)."""


class Connection(ABC):
    """An ordered, reliable pipe of frames to one peer."""

    #: A description of the peer for logs (an address, or a socket path).
    peer: str = ""
    #: Where the peer connects from, for bounds per source: an IP address over
    #: TCP, "unix" for every unix socket client, the client's prefix over NATS.
    source: str = ""

    @abstractmethod
    def start(self, sink: FrameSink) -> None:
        """Start delivering received frames to `sink` (frames wait until then)."""

    @abstractmethod
    def send(self, frame: bytes, urgent: bool = False) -> None:
        """Queue `frame` for sending; never blocks.

        The first frame is written at once; frames queued while a write is
        pending go out together in one write. `urgent` frames (the control
        lane) go before any queued non-urgent frame. Raises `TransportError`
        if the connection is closed or `frame` is larger than the maximum.
        """

    @abstractmethod
    def close(self, reason: str | None = None) -> None:
        """Close now; what is queued is flushed first where the adapter can."""

    def abort(self, reason: str | None = None) -> None:
        """Close now and drop what is not written yet: for a peer that does not
        read, to which a flush would never end. `close()` where the adapter has
        nothing of its own to drop."""
        self.close(reason)

    @property
    @abstractmethod
    def closed(self) -> bool:
        """True once `close()` was called or the peer went away."""

    @abstractmethod
    def limit_incoming(self, max_frame: int) -> None:
        """From now on, a received frame over `max_frame` (at most the maximum
        the connection was made with) closes the connection before its body is
        buffered: the node keeps this small until a peer has proved itself."""

    @property
    def backlog(self) -> int:
        """Bytes sent and not yet taken by the network (the peer does not read
        them); 0 where the adapter cannot tell."""
        return 0

    def protect(self, send_key: bytes, receive_key: bytes) -> None:  # noqa: B027 (optional)
        """From now on, sign each frame sent with `send_key` and drop (and log)
        each frame received that is not signed with `receive_key`.

        The node calls this once its handshake has proved the shared secret,
        on both ends, before the first frame it sends after that proof. An
        adapter whose connections a third party can write into (a shared
        message bus: NATS) must implement it; over a socket, only the two
        ends write into a connection, and the default does nothing.
        """


class Listener(ABC):
    """A bound listening endpoint."""

    #: The bound URL of the node (the real port when listening on port 0).
    address: str = ""
    #: The largest frame the adapter can carry, where it has a limit of its own
    #: (NATS: the server's max_payload); None: any that was asked for.
    frame_limit: int | None = None
    #: The name the adapter's cluster knows this node by, where it has one
    #: (NATS: the name claimed on the server); None: the system's name serves.
    node_name: str | None = None

    @abstractmethod
    async def aclose(self) -> None:
        """Stop accepting; removes what the listener created (a socket file)."""

    def announce(self) -> None:  # noqa: B027 (optional: an adapter without cluster presence)
        """Say that this node is alive (the node calls this about four times
        per heartbeat timeout), for an adapter with cluster presence."""

    def members(self, max_age: float) -> list[str]:
        """Node URLs of the other nodes on this adapter's cluster heard from
        within `max_age` seconds; only an adapter with cluster presence (NATS)
        knows any: a socket listener knows only who connects to it."""
        return []


class Transport(ABC):
    """Connects and listens for one URL scheme."""

    @abstractmethod
    async def connect(
        self, node_url: str, *, max_frame: int, ssl: _ssl.SSLContext | None = None
    ) -> Connection:
        """Open a connection to the node at `node_url`; raises `TransportError`.

        With `ssl` (a client context), over TLS where the adapter offers it (see
        the module docstring for one that does not).
        """

    @abstractmethod
    async def listen(
        self,
        node_url: str,
        accept: Callable[[Connection], None],
        *,
        max_frame: int,
        ssl: _ssl.SSLContext | None = None,
    ) -> Listener:
        """Listen at `node_url`; `accept` gets each new connection (not started yet).

        With `ssl` (a server context), every connection is TLS and a peer that does
        not speak it is closed; an adapter without TLS raises `TransportError`.
        """

    @abstractmethod
    def split(self, url: str) -> tuple[str, str]:
        """Split a full actor URL into (node URL, actor path); raises ValueError."""

    async def settle(self) -> None:  # noqa: B027 (an optional hook: nothing to wait for here)
        """Wait until connections closed on this event loop have finished closing,
        for an adapter whose `close()` completes later (NATS); by default, no wait."""
