"""The transport seam: framed connections between nodes, chosen by URL scheme.

A transport moves *frames* (byte strings) between two nodes, in order,
reliably, with a length limit; it knows nothing of actors. Adapters live in
`mycelium_actors.transports` and fill the registry below when imported, so
the kernel reaches them by scheme only and never imports one.

Exceptions: every method raises `TransportError` (from `errors`) for anything
that goes wrong with the network, with the adapter's own exception as
`__cause__`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from .errors import TransportError

if TYPE_CHECKING:
    from .ref import ActorRef
    from .system import ActorSystem

#: The largest frame a node accepts by default (API.md section 6).
DEFAULT_MAX_FRAME = 16 * 1024 * 1024


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

    @property
    @abstractmethod
    def closed(self) -> bool:
        """True once `close()` was called or the peer went away."""

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
    async def connect(self, node_url: str, *, max_frame: int) -> Connection:
        """Open a connection to the node at `node_url`; raises `TransportError`."""

    @abstractmethod
    async def listen(
        self, node_url: str, accept: Callable[[Connection], None], *, max_frame: int
    ) -> Listener:
        """Listen at `node_url`; `accept` gets each new connection (not started yet)."""

    @abstractmethod
    def split(self, url: str) -> tuple[str, str]:
        """Split a full actor URL into (node URL, actor path); raises ValueError."""

    async def settle(self) -> None:  # noqa: B027 (an optional hook: nothing to wait for here)
        """Wait until connections closed on this event loop have finished closing,
        for an adapter whose `close()` completes later (NATS); by default, no wait."""


# -- the registry ------------------------------------------------------------------

_FACTORIES: dict[str, Callable[[], Transport]] = {}
_LAZY: dict[str, tuple[str, str]] = {}  # scheme -> (module, what to install)
_INSTANCES: dict[str, Transport] = {}


def register(scheme: str, factory: Callable[[], Transport]) -> None:
    """Make `scheme://` URLs use the transport `factory()` builds (once, on first use)."""
    _FACTORIES[scheme] = factory
    _INSTANCES.pop(scheme, None)


def register_lazy(scheme: str, module: str, install: str) -> None:
    """`scheme://` is served by `module` (imported on first use; it calls `register`).

    `install` is what to tell a user whose import fails (a missing extra).
    """
    _LAZY[scheme] = (module, install)


def scheme_of(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ValueError(f"not a URL with a scheme: {url!r}")
    return scheme


def transport_for(url: str) -> Transport:
    """The transport for `url`'s scheme; `TransportError` if there is none."""
    scheme = scheme_of(url)
    transport = _INSTANCES.get(scheme)
    if transport is not None:
        return transport
    if scheme not in _FACTORIES and scheme in _LAZY:
        module, install = _LAZY[scheme]
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise TransportError(f"{scheme}:// needs {install}") from exc
    factory = _FACTORIES.get(scheme)
    if factory is None:
        known = ", ".join(sorted({*_FACTORIES, *_LAZY})) or "none"
        raise TransportError(f"no transport for {scheme}:// (known: {known})")
    transport = _INSTANCES[scheme] = factory()
    return transport


def split_url(url: str) -> tuple[str, str]:
    """(node URL, actor path) of a full actor URL, by its scheme's rules."""
    return transport_for(url).split(url)


# -- the node seam: what the system asks of its remote layer ----------------------------


@attrs.frozen
class NodeInfo:
    """A connected node, as `system.nodes()` lists it."""

    name: str
    address: str | None  # where it listens (None: it does not)
    incarnation: str  # new each time that node starts


@attrs.frozen
class NodeOptions:
    """The `ActorSystem` arguments the remote layer serves."""

    listen: str | None
    secret: bytes | None
    heartbeat_timeout: float
    max_frame: int
    serialize_local: bool


class Node(Protocol):
    """A system's presence on the network (built by the remote layer)."""

    @property
    def address(self) -> str | None:
        """The bound node URL while listening, else None."""

    async def start(self) -> None:
        """Bind the listener (if any); raises `TransportError`."""

    async def aclose(self) -> None:
        """Say goodbye to every peer and close every connection and the listener."""

    async def remote(self, url: str, path: str | None) -> ActorRef[Any]:
        """A ref to the actor at `url` (or node `url` and `path`); connects first."""

    def nodes(self) -> list[NodeInfo]:
        """The nodes connected now."""

    async def discover_cluster(
        self, actor_class: type | None, handles: type | None, timeout: float
    ) -> list[ActorRef[Any]]:
        """Refs on every connected node and every node of the adapter's cluster
        presence (this one excluded)."""

    async def publish_cluster(self, message: Any, timeout: float) -> int:
        """Publish on the nodes `discover_cluster` covers; the sum accepted."""

    def local_ref(self, slot: Any) -> ActorRef[Any] | None:
        """The ref for a new local slot, or None for the ordinary local ref."""

    async def remote_tree(self, url: str, timeout: float) -> list[dict[str, Any]]:
        """The live tree of the node at `url`, as `TreeNode` fields."""


_NODE_FACTORY: list[Callable[[ActorSystem, NodeOptions], Node]] = []


def set_node_factory(factory: Callable[[ActorSystem, NodeOptions], Node]) -> None:
    """Called once by the remote layer when it is imported."""
    _NODE_FACTORY[:] = [factory]


def new_node(system: ActorSystem, options: NodeOptions) -> Node:
    if not _NODE_FACTORY:
        raise TransportError("the remote layer is not loaded (import mycelium_actors)")
    return _NODE_FACTORY[0](system, options)
