"""Refs to actors on other nodes: `RemoteActorRef` (API.md section 6), and
`HereRef` for an address of this node where no actor lives."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..errors import ActorStopped, MyceliumError
from ..kernel.messages import Terminated
from ..kernel.ref import ActorRef, Watcher, check_timeout
from ..wire import frames as wire

if TYPE_CHECKING:
    from ..kernel.seams import Tracing
    from .peer import Peer

_INF = float("inf")


class RemoteActorRef(ActorRef[Any]):
    """A ref to an actor on another node (API.md section 6)."""

    __slots__ = ("_ask_tail", "_peer", "_tell_head", "_what")

    def __init__(self, peer: Peer, path: str) -> None:
        self._peer = peer
        self.path = path
        self.name = path.rsplit("/", 1)[-1]
        raw = path.encode()
        self._tell_head = wire.tell(raw, b"")
        self._ask_tail = wire.path_part(raw)
        self._what = f"ask to {peer.address or peer.name}{path}"

    def __repr__(self) -> str:
        return f"<RemoteActorRef {self.address}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemoteActorRef) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def key(self) -> tuple[str, str]:
        """What names the actor: its node and path."""
        peer = self._peer
        return (peer.address or f"{peer.name}#{peer.incarnation}", self.path)

    @property
    def address(self) -> str | None:
        node = self._peer.address
        return None if node is None else node + self.path

    @property
    def is_alive(self) -> bool:
        """True while this node is connected to the actor's node."""
        return self._peer.up

    def tell(self, message: Any) -> Coroutine[Any, Any, None]:
        """Send `message`; waits only while `WINDOW` messages to this actor are in
        flight. `SerializationError` for a non-contract message, `TransportError`
        when the node cannot be reached. (Returns the peer's coroutine: one frame
        less on the hot path.)"""
        return self._peer.tell(self.path, self._tell_head, message)

    def tell_nowait(self, message: Any) -> None:
        """Send now; `MailboxFull` when the window in flight is full."""
        self._peer.tell_nowait(self.path, self._tell_head, message)

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        """The remote handler's reply; `TransportError` if the connection is lost."""
        if timeout is not None and (type(timeout) is not float or not 0.0 < timeout < _INF):
            check_timeout(timeout)
        return await self._peer.ask(self.path, self._ask_tail, self._what, message, timeout)

    def ask_nowait(self, message: Any, reply: Any) -> None:
        """Send an ask and return at once: `reply` (a future-like object) gets
        the answer, or `TransportError` if the connection is lost first.
        `MailboxFull` when the window is full (then `await room()`)."""
        self._peer.ask_nowait(self.path, self._ask_tail, message, reply)

    async def room(self) -> None:
        """Until one more message to this actor fits in the window in flight."""
        await self._peer.room(self.path)

    def ask_blocking(self, message: Any, timeout: float | None = 5.0) -> Any:
        check_timeout(timeout)
        return self._peer.node.run_blocking(self.ask(message, timeout), timeout)

    async def stop(self) -> None:
        """Stop the remote actor for good (a no-op if none lives at the path)."""
        await self._peer.request(wire.Stop, self.path, timeout=30.0)

    def add_watcher(self, watcher: Watcher) -> None:
        self._peer.watch(self.path, watcher)

    def proxy(self, timeout: float | None = 5.0) -> Any:
        raise MyceliumError(f"{self.address}: proxies work on local refs only")


class TracedRemoteRef(RemoteActorRef):
    """A remote ref of a tracing system: a message sent while a span is current
    (or in an envelope carrying one, as the relay of a worker process sends)
    goes in a TRACED frame carrying that span's W3C trace context; without one
    it goes as a plain TELL or ASK."""

    __slots__ = ("_tracing",)

    def __init__(self, peer: Peer, path: str, tracing: Tracing) -> None:
        super().__init__(peer, path)
        self._tracing = tracing

    def _traced(self, message: Any) -> tuple[Any, bytes]:
        """(the message out of its envelope, the TRACED frame's start or b"")."""
        message, carrier = self._tracing.outgoing(message)
        return message, b"" if carrier is None else wire.traced(carrier)

    def tell(self, message: Any) -> Coroutine[Any, Any, None]:
        message, prefix = self._traced(message)
        return self._peer.tell(self.path, prefix + self._tell_head, message)

    def tell_nowait(self, message: Any) -> None:
        message, prefix = self._traced(message)
        self._peer.tell_nowait(self.path, prefix + self._tell_head, message)

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        if timeout is not None and (type(timeout) is not float or not 0.0 < timeout < _INF):
            check_timeout(timeout)
        message, prefix = self._traced(message)
        head = wire.ask_head if not prefix else _prefixed(prefix)
        return await self._peer.ask(self.path, self._ask_tail, self._what, message, timeout, head)

    def ask_nowait(self, message: Any, reply: Any) -> None:
        message, prefix = self._traced(message)
        head = wire.ask_head if not prefix else _prefixed(prefix)
        self._peer.ask_nowait(self.path, self._ask_tail, message, reply, head)

    def ask_blocking(self, message: Any, timeout: float | None = 5.0) -> Any:
        # The context is this thread's: it goes in an envelope to the node's loop.
        return super().ask_blocking(self._tracing.wrap(message), timeout)


def _prefixed(prefix: bytes) -> Callable[[int], bytes]:
    """An ASK frame's head behind `prefix` (a TRACED frame's start)."""

    def head(request: int) -> bytes:
        return prefix + wire.ask_head(request)

    return head


class HereRef(ActorRef[Any]):
    """A ref, arrived by address, to a path on this very node where no actor
    lives right now: each use looks the path up again, so it never connects
    to its own node. Without an actor there, an ask raises `ActorStopped` and
    a tell is a dead letter here, as for a remote path with no actor."""

    __slots__ = ("_address", "_system")

    def __init__(self, system: Any, node_address: str, path: str) -> None:
        self._system = system
        self._address = node_address + path
        self.path = path
        self.name = path.rsplit("/", 1)[-1]

    def __repr__(self) -> str:
        return f"<HereRef {self._address}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other.address == self._address

    def __hash__(self) -> int:
        return hash(self._address)

    @property
    def address(self) -> str | None:
        return self._address

    def _live(self) -> ActorRef[Any] | None:
        ref: ActorRef[Any] | None = self._system.lookup(self.path)
        return ref if ref is not None and ref.is_alive else None

    @property
    def is_alive(self) -> bool:
        return self._live() is not None

    async def tell(self, message: Any) -> None:
        self.tell_nowait(message)

    def tell_nowait(self, message: Any) -> None:
        ref = self._live()
        if ref is None:
            self._system.dead_letter(self.path, message, "stopped")
        else:
            ref.tell_nowait(message)

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        ref = self._live()
        if ref is None:
            raise ActorStopped(f"no actor at {self._address}")
        return await ref.ask(message, timeout)

    def ask_blocking(self, message: Any, timeout: float | None = 5.0) -> Any:
        ref = self._live()
        if ref is None:
            raise ActorStopped(f"no actor at {self._address}")
        return ref.ask_blocking(message, timeout)

    async def stop(self) -> None:
        ref = self._live()
        if ref is not None:
            await ref.stop()

    def add_watcher(self, watcher: Watcher) -> None:
        ref = self._live()
        if ref is None:
            watcher.deliver(Terminated(self, "stopped"))
        else:
            ref.add_watcher(watcher)
