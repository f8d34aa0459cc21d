"""What the kernel asks of the layers above it, declared here and filled by them.

The kernel never imports a higher layer: the remote layer registers its node
factory with `set_node_factory` when imported (`mycelium_actors/__init__.py`
imports it), and a supervision tree spec is anything with `start_root`.
"""

from __future__ import annotations

import ssl as _ssl
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from ..errors import MyceliumError, TransportError

if TYPE_CHECKING:
    from .ref import ActorRef, LocalActorRef
    from .system import ActorSystem

#: The largest frame a node accepts by default (API.md section 6).
DEFAULT_MAX_FRAME = 16 * 1024 * 1024


@runtime_checkable
class Tree(Protocol):
    """A supervision tree spec, as `system.start` takes it (the supervision layer's
    `Supervisor` is one)."""

    async def start_root(self, system: ActorSystem) -> ActorRef[Any]:
        """Start this tree on `system` and return its root supervisor's ref."""


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
    ssl_server: _ssl.SSLContext | None = None  # tcp:// listening (ActorSystem(ssl=...))
    ssl_client: _ssl.SSLContext | None = None  # tcp:// connecting


#: What `ActorSystem(ssl=...)` takes: one context, or a server and a client one.
SslArgument = _ssl.SSLContext | Iterable[_ssl.SSLContext] | None


def tls_contexts(ssl: SslArgument) -> tuple[_ssl.SSLContext | None, _ssl.SSLContext | None]:
    """(server context, client context) of `ActorSystem(ssl=...)`.

    Each context's role is its protocol: `PROTOCOL_TLS_SERVER` (what
    `ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)` makes) serves
    listening, `PROTOCOL_TLS_CLIENT` (`Purpose.SERVER_AUTH`, the default)
    connecting. Raises TypeError for anything but contexts, ValueError for a
    context of another protocol (`PROTOCOL_TLS` would serve both roles: it is
    deprecated) or two of one role.
    """
    if ssl is None:
        return None, None
    given = [ssl] if isinstance(ssl, _ssl.SSLContext) else _listed(ssl)
    roles: dict[int, _ssl.SSLContext] = {}
    for context in given:
        if not isinstance(context, _ssl.SSLContext):
            raise TypeError(f"ssl takes ssl.SSLContext objects, not {context!r}")
        if context.protocol not in (_ssl.PROTOCOL_TLS_SERVER, _ssl.PROTOCOL_TLS_CLIENT):
            raise ValueError(
                f"an ssl context of {context.protocol.name} has no single role: make the "
                "server one with ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) "
                "(PROTOCOL_TLS_SERVER) and the client one with "
                "ssl.create_default_context() (PROTOCOL_TLS_CLIENT)"
            )
        if context.protocol in roles:
            raise ValueError(f"ssl was given two {context.protocol.name} contexts")
        roles[context.protocol] = context
    return roles.get(_ssl.PROTOCOL_TLS_SERVER), roles.get(_ssl.PROTOCOL_TLS_CLIENT)


def _listed(ssl: object) -> list[object]:
    if isinstance(ssl, str | bytes) or not isinstance(ssl, Iterable):
        raise TypeError(
            f"ssl takes an ssl.SSLContext or a (server, client) pair of them, not {ssl!r}"
        )
    given = list(ssl)
    if not 1 <= len(given) <= 2:
        raise ValueError(
            f"ssl takes one or two contexts (a server and a client one), not {len(given)}"
        )
    return given


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

    def traffic(self) -> dict[str, tuple[int, int, int, int]]:
        """Per connected node (by name): frames in, frames out, bytes in, bytes out."""


_NODE_FACTORY: list[Callable[[ActorSystem, NodeOptions], Node]] = []


def set_node_factory(factory: Callable[[ActorSystem, NodeOptions], Node]) -> None:
    """Called once by the remote layer when it is imported."""
    _NODE_FACTORY[:] = [factory]


class Tracing(Protocol):
    """What `ActorSystem(tracing=True)` asks of the tracing layer."""

    @property
    def ref_class(self) -> type[LocalActorRef[Any]]:
        """The class of the system's local refs: it wraps what is sent in an
        envelope that carries the sender's trace context."""

    def wrap(self, message: Any) -> Any:
        """`message` in an envelope carrying the current trace context (publish)."""

    def outgoing(self, message: Any) -> tuple[Any, dict[str, str] | None]:
        """For a frame: `message` out of its envelope, and the W3C trace context
        (header name -> value) of its envelope, else of the current span; None
        when that is no valid span (the frame then goes untraced)."""

    def incoming(self, message: Any, carrier: dict[str, str] | None) -> Any:
        """`message` from a frame, in an envelope whose span's parent is the
        remote sender's span in `carrier` (None: the span starts a trace); the
        library's own messages (wire ids from `LIBRARY_IDS` up) as they are."""

    def adopted(self, carrier: dict[str, str] | None) -> AbstractContextManager[None]:
        """While it is entered, the trace context in `carrier` is the current one."""


_TRACING: list[Callable[[], Tracing]] = []


def set_tracing_factory(factory: Callable[[], Tracing]) -> None:
    """Called once by `mycelium_actors.tracing` when it is imported."""
    _TRACING[:] = [factory]


def new_tracing() -> Tracing:
    """The tracing layer (MyceliumError if OpenTelemetry is not installed)."""
    if not _TRACING:
        raise MyceliumError("tracing is not loaded (import mycelium_actors)")
    return _TRACING[0]()


def new_node(system: ActorSystem, options: NodeOptions) -> Node:
    if not _NODE_FACTORY:
        raise TransportError("the remote layer is not loaded (import mycelium_actors)")
    return _NODE_FACTORY[0](system, options)
