"""What the kernel asks of the layers above it, declared here and filled by them.

The kernel never imports a higher layer: the remote layer registers its node
factory with `set_node_factory` when imported (`mycelium_actors/__init__.py`
imports it), and a supervision tree spec is anything with `start_root`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import attrs

from ..errors import TransportError

if TYPE_CHECKING:
    from .ref import ActorRef
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
