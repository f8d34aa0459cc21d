"""A system's presence on the network: listening, peers, heartbeats.

`NetworkNode` is what `ActorSystem(listen=...)` and `system.remote(...)` reach
through the kernel's node seam (`kernel.seams.set_node_factory`). It owns the
listener, one `Peer` per other node, the codec (with the ref hook that turns
refs into addresses and back), and a heartbeat timer that finds silent peers.
Each new connection first runs the handshake (`handshake.py`); queries that
span the cluster are `cluster.py`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Coroutine
from typing import Any

from ..errors import ActorStopped, AskTimeout, MyceliumError, SerializationError, TransportError
from ..kernel.ref import ActorRef, LocalActorRef, check_timeout
from ..kernel.seams import NodeInfo, NodeOptions, set_node_factory
from ..kernel.system import ActorSystem
from ..transports.base import Connection, Listener
from ..transports.registry import scheme_of, split_url, transport_for
from ..transports.urls import tcp_exposed
from ..wire import frames as wire
from ..wire.codec import Codec, RefHook
from ..wire.registry import wire_id
from .cluster import ask_all, discover_here, tree_dict
from .handshake import MAX_HANDSHAKES, Link, client_handshake, hello, server_handshake
from .peer import Peer


class NetworkNode:
    """One system's network side (see the module docstring)."""

    def __init__(self, system: ActorSystem, options: NodeOptions) -> None:
        self.system = system
        self.options = options
        self.incarnation = secrets.token_hex(8)
        self.codec = Codec(
            refs=RefHook(self._encode_ref, self._decode_ref),
            max_size=options.max_frame,  # the whole frame is checked once built
        )
        self.max_frame = options.max_frame
        self.clock = system.clock
        self.loop = asyncio.get_running_loop()  # made on the system's loop (the seam's rule)
        self._listener: Listener | None = None
        self._peers: dict[str, Peer] = {}  # by node URL (or name#incarnation if it does not listen)
        self._handshakes: dict[asyncio.Task[None], Connection] = {}  # accepted, not yet peers
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._log = system.log_event
        self._arm_heartbeat()  # made on the system's running loop, listening or not

    # -- the node seam ------------------------------------------------------------

    @property
    def address(self) -> str | None:
        return self._listener.address if self._listener is not None else None

    async def start(self) -> None:
        url = self.options.listen
        if url is not None:
            if url.startswith("nats://") and url.rstrip("/").count("/") == 2:
                # A node joins NATS under its system's name, nats://host:port/<name>,
                # unless the URL names it (the CLI: one tree, many nodes).
                url = f"{url.rstrip('/')}/{self.system.name}"
            if split_url(url)[1] not in ("", "/"):
                raise ValueError(f"listen takes a node URL without an actor path: {url!r}")
            tls = {"ssl": self.options.ssl_server} if self.options.ssl_server is not None else {}
            self._listener = await transport_for(url).listen(
                url, self._accept, max_frame=self.options.max_frame, **tls
            )
            limit = self._listener.frame_limit  # the adapter may carry less (NATS)
            if limit is not None and limit < self.max_frame:
                self.max_frame = limit
                self.codec.max_size = self.max_frame
            self._log("node.listening", self._listener.address, incarnation=self.incarnation)
            if self.options.secret is None and tcp_exposed(url):
                self._log(
                    "node.exposed",
                    self._listener.address,
                    reason="listening beyond loopback without a secret: any host that reaches "
                    "this port can send messages to its actors (set secret=, or --secret-env)",
                )

    async def aclose(self) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        up = [peer for peer in self._peers.values() if peer.up]
        for peer in up:  # what we received was delivered: its senders learn it first
            peer.flush_credit()
        settle = min(1.0, self.options.heartbeat_timeout)
        await asyncio.gather(*(peer.settle(settle) for peer in up))
        for peer in list(self._peers.values()):
            if peer.up:
                try:
                    peer.send(wire.control(wire.GOODBYE, "shutdown"), urgent=True)
                except TransportError:
                    pass
                peer.lost("this node shut down", close=True)
        for conn in list(self._handshakes.values()):  # nobody else would close them
            conn.close("this node shut down")
        if self._listener is not None:
            await self._listener.aclose()
        # close() is not async: an adapter may still be finishing what it closed.
        urls = {peer.address for peer in self._peers.values() if peer.address is not None}
        for transport in {transport_for(url) for url in urls}:
            await transport.settle()

    async def remote(self, url: str, path: str | None) -> ActorRef[Any]:
        if path is None:
            try:
                node_url, path = split_url(url)
            except ValueError as exc:
                raise TransportError(f"not an actor URL: {url!r} ({exc})") from None
        else:
            node_url = url
            if not path.startswith("/"):
                raise ValueError(f"an actor path starts with '/': {path!r}")
        if node_url == self.address:
            local = self.system.lookup(path)
            if local is not None:
                return local
        peer = self.peer_for(node_url)
        await peer.ensure_up()
        return peer.ref(path)

    def nodes(self) -> list[NodeInfo]:
        return [
            NodeInfo(peer.name, peer.address, peer.incarnation)
            for peer in self._peers.values()
            if peer.up
        ]

    async def discover_cluster(
        self, actor_class: type | None, handles: type | None, timeout: float
    ) -> list[ActorRef[Any]]:
        wanted = [
            None if actor_class is None else f"{actor_class.__module__}:{actor_class.__qualname__}",
            None if handles is None else wire_id(handles),
        ]
        answers = await self._ask_all("discover", wanted, timeout)
        found: list[ActorRef[Any]] = []
        for peer, paths in answers:
            if isinstance(paths, list):
                found += [peer.ref(path) for path in paths if isinstance(path, str)]
        return found

    async def publish_cluster(self, message: Any, timeout: float) -> int:
        body = self.encode(message)  # not a contract type: SerializationError, nothing sent
        answers = await self._ask_all("publish", body, timeout)
        return sum(n for _, n in answers if isinstance(n, int))

    async def remote_tree(self, url: str, timeout: float) -> list[dict[str, Any]]:
        peer = self.peer_for(url)
        await peer.ensure_up()
        tree = await peer.request(wire.QUERY, "tree", None, timeout=timeout)
        if not isinstance(tree, list):
            raise TransportError(f"{url} answered the tree query with {type(tree).__name__}")
        return tree

    def local_ref(self, slot: Any) -> ActorRef[Any] | None:
        return _SerializingRef(slot, self.codec) if self.options.serialize_local else None

    # -- peers and connections -------------------------------------------------

    def peer_for(self, node_url: str) -> Peer:
        transport_for(node_url)  # an unknown scheme fails here, with what to install
        peer = self._peers.get(node_url)
        if peer is None:
            peer = self._peers[node_url] = Peer(self, node_url)
        return peer

    async def connect(self, peer: Peer) -> None:
        """Open a connection to `peer` and run the client side of the handshake."""
        if self._closing:
            raise TransportError("this node is shutting down")
        url = peer.address
        assert url is not None
        tls = {"ssl": self.options.ssl_client} if self.options.ssl_client is not None else {}
        conn = await transport_for(url).connect(url, max_frame=self.options.max_frame, **tls)
        link = Link(conn)
        conn.start(link)
        try:
            name, incarnation = await client_handshake(
                link,
                url,
                self._hello,
                self.options.secret,
                self.options.heartbeat_timeout,
                self._log,
            )
        except BaseException:
            conn.close("handshake failed")
            raise
        duplicate = peer.up and peer.incarnation == incarnation
        if duplicate and not self._keep_new(True, (name, incarnation)):
            conn.close("duplicate connection")  # theirs to us is the one both keep
            return
        self._attach(peer, link, name, incarnation)

    def _keep_new(self, initiated_by_us: bool, other: tuple[str, str]) -> bool:
        """Two connections between the same two nodes: both keep the one that the
        node with the smaller (name, incarnation) opened."""
        we_are_smaller = (self.system.name, self.incarnation) < other
        return initiated_by_us == we_are_smaller

    def _hello(self, nonce: bytes, proof: bytes) -> bytes:
        return hello(self.system.name, self.incarnation, self.address, nonce, proof)

    def _attach(self, peer: Peer, link: Link, name: str, incarnation: str) -> None:
        old = peer.link if peer.conn is not None else None
        if old is not None:
            old.detach()
        peer.attach(link.conn, name, incarnation)
        peer.link = link
        link.attach(peer)
        self._log("node.up", peer.address or name, name=name, incarnation=incarnation)

    def peer_down(self, peer: Peer, reason: str) -> None:
        # A warning (API.md 8), except when we are the ones shutting down: no news then.
        level = "info" if self._closing else None
        self._log("node.down", peer.address or peer.name, level, name=peer.name, reason=reason)
        if peer.address is None:
            self._peers.pop(f"{peer.name}#{peer.incarnation}", None)

    def _accept(self, conn: Connection) -> None:
        if self._closing or len(self._handshakes) >= MAX_HANDSHAKES:
            self._log("node.refused", conn.peer, reason="too many handshakes at once")
            conn.close("too many handshakes at once")
            return
        link = Link(conn)
        conn.start(link)
        task = asyncio.get_running_loop().create_task(self._server_handshake(link))
        self._handshakes[task] = conn
        task.add_done_callback(self._handshake_done)

    def _handshake_done(self, task: asyncio.Task[None]) -> None:
        self._handshakes.pop(task, None)
        if not task.cancelled():
            task.exception()  # logged inside; retrieved here

    async def _server_handshake(self, link: Link) -> None:
        conn = link.conn
        try:
            name, incarnation, address = await server_handshake(
                link, self._hello, self.options.secret, self.options.heartbeat_timeout
            )
        except Exception as exc:  # garbage from a stranger: refuse it, keep serving
            self._log("node.refused", conn.peer, reason=str(exc) or repr(exc))
            if not conn.closed:
                conn.send(wire.control(wire.GOODBYE, str(exc)), urgent=True)
                conn.close(str(exc))
            return
        key = address if address is not None else f"{name}#{incarnation}"
        peer = self._peers.get(key)
        if peer is None:
            peer = self._peers[key] = Peer(self, address)
        elif (
            peer.up
            and peer.incarnation == incarnation
            and not self._keep_new(False, (name, incarnation))
        ):
            conn.send(wire.control(wire.GOODBYE, "duplicate connection"), urgent=True)
            conn.close("duplicate connection")
            return
        conn.send(wire.control(wire.WELCOME), urgent=True)
        self._attach(peer, link, name, incarnation)

    # -- heartbeats ---------------------------------------------------------------

    def _arm_heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.options.heartbeat_timeout / 4, self._beat)

    def _beat(self) -> None:
        if self._closing:
            return
        if self._listener is not None:
            self._listener.announce()
        now = asyncio.get_running_loop().time()
        limit = self.options.heartbeat_timeout
        for peer in list(self._peers.values()):
            if not peer.up:
                continue
            if peer.heard:
                peer.heard = False
                peer.quiet_since = now
            elif now - peer.quiet_since > limit:
                peer.lost(f"silent for {limit}s (heartbeat timeout)", close=True)
                continue
            peer.flush_credit()
            if not peer.sent:
                try:
                    peer.send(wire.control(wire.PING), urgent=True)
                except TransportError:
                    continue
            peer.sent = False
        self._arm_heartbeat()

    # -- requests from peers: stop, queries --------------------------------------------

    def on_request(self, peer: Peer, kind: int, frame: bytes) -> None:
        if kind == wire.STOP:
            request, path = wire.items(frame, 2)
            self.system.run_in_background(self._stop(peer, request, path))
            return
        request, op, argument = wire.items(frame, 3)
        if not isinstance(request, int):
            raise wire.ProtocolError("a malformed QUERY")
        if op == "discover" and isinstance(argument, list) and len(argument) == 2:
            peer.reply_value(request, discover_here(self.system, *argument))
        elif op == "publish" and isinstance(argument, bytes):
            self.system.run_in_background(self._publish_here(peer, request, argument))
        elif op == "tree":
            peer.reply_value(request, [tree_dict(node) for node in self.system.tree()])
        else:
            raise wire.ProtocolError(f"unknown query {op!r}")

    async def _stop(self, peer: Peer, request: object, path: object) -> None:
        if not isinstance(request, int) or not isinstance(path, str):
            return
        ref = self.system.lookup(path)
        if ref is not None:
            await ref.stop()
        peer.reply_value(request, None)

    async def _publish_here(self, peer: Peer, request: int, body: bytes) -> None:
        try:
            message = self.decode(body)
        except SerializationError as exc:
            peer.reply_value(request, 0)
            self._log("node.refused", peer.address or peer.name, reason=f"publish: {exc}")
            return
        peer.reply_value(request, await self.system.publish(message))

    async def _ask_all(self, op: str, argument: Any, timeout: float) -> list[tuple[Peer, Any]]:
        """Query every connected node, and every node the listener's cluster
        presence knows of (connecting first)."""
        peers = [peer for peer in self._peers.values() if peer.up]
        if self._listener is not None:  # nodes on the adapter's cluster (NATS presence)
            up = {peer.address for peer in peers}
            members = self._listener.members(self.options.heartbeat_timeout)
            peers += [self.peer_for(url) for url in members if url not in up]
        return await ask_all(peers, op, argument, timeout, self._log)

    # -- the codec and refs -------------------------------------------------------------

    def encode(self, message: Any) -> bytes:
        return self.codec.encode(message)

    def decode(self, body: bytes) -> Any:
        return self.codec.decode(body)

    def too_large(self, frame: bytes, message: Any) -> None:
        raise SerializationError(
            f"{type(message).__qualname__} takes {len(frame)} bytes on the wire, "
            f"over the maximum frame of {self.max_frame}"
        )

    def _encode_ref(self, ref: ActorRef[Any]) -> str:
        address = ref.address
        if address is None:
            raise SerializationError(
                f"cannot send a ref to {ref.path}: its system does not listen "
                "(ActorSystem(..., listen=...))"
            )
        return address

    def _decode_ref(self, address: str) -> ActorRef[Any]:
        try:
            node_url, path = split_url(address)
        except (ValueError, TransportError) as exc:
            raise SerializationError(f"not an actor address: {address!r} ({exc})") from None
        if node_url == self.address:
            local = self.system.lookup(path)
            if local is not None:
                return local
        return self.peer_for(node_url).ref(path)

    def log(self, event: str, peer: Peer, **fields: Any) -> None:
        self._log(event, peer.address or peer.name, **fields)

    def run_blocking(self, coro: Coroutine[Any, Any, Any], timeout: float | None) -> Any:
        loop = self.system.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            coro.close()
            raise MyceliumError("ask_blocking() on the system's own loop would deadlock")
        if loop is None or not loop.is_running():
            coro.close()
            raise ActorStopped("the system's event loop is not running")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)  # the ask's own timeout, not a second later
        except TimeoutError:  # concurrent.futures.TimeoutError, since 3.11
            if not future.cancel():  # done: the ask's own outcome (its AskTimeout, ...)
                return future.result()
            raise AskTimeout(f"no reply within {timeout}s") from None


class _SerializingRef(LocalActorRef[Any]):
    """`serialize_local=True`: every message and reply goes through the codec."""

    __slots__ = ("_codec",)

    def __init__(self, slot: Any, codec: Codec) -> None:
        super().__init__(slot)
        self._codec = codec

    async def tell(self, message: Any) -> None:
        await super().tell(self._codec.decode(self._codec.encode(message)))

    def tell_nowait(self, message: Any) -> None:
        super().tell_nowait(self._codec.decode(self._codec.encode(message)))

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        check_timeout(timeout)
        reply = await super().ask(self._codec.decode(self._codec.encode(message)), timeout)
        return self._codec.decode_value(self._codec.encode_value(reply))


def _new_node(system: ActorSystem, options: NodeOptions) -> NetworkNode:
    if options.listen is not None:
        scheme_of(options.listen)
    return NetworkNode(system, options)


set_node_factory(_new_node)
