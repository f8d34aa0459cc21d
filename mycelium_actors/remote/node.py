"""A system's presence on the network: listening, peers, heartbeats.

`NetworkNode` is what `ActorSystem(listen=...)` and `system.remote(...)` reach
through the kernel's node seam (`kernel.seams.set_node_factory`). It owns the
listener, the peers, the codec (with the ref hook that turns refs into
addresses and back), and a heartbeat timer that finds silent peers. Each new
connection first runs the handshake (`handshake.py`); queries that span the
cluster are `cluster.py`.

Routes: a node sends its own requests (tells, asks, stops, watches, queries)
only over connections it opened itself, to the address it was given (a
*route*, one `Peer` per node URL). A connection another node opened (an
*inbound* peer) serves that node's requests and the replies to them; the
address it declares in HELLO is never trusted as a route (anyone may claim
any address), it only names the node in `nodes()` and is where a query for
that node goes, over a route of our own.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import weakref
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
from .handshake import (
    HANDSHAKE_TIMEOUT,
    MAX_HANDSHAKES,
    MAX_HANDSHAKES_PER_SOURCE,
    Link,
    VersionMismatch,
    client_handshake,
    hello,
    server_handshake,
)
from .peer import Peer, RemoteWatcher
from .refs import HereRef


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
        self.name = system.name  # the node's name (NATS: the name it holds there)
        # Routes that are up (or connecting), by node URL; every route while
        # anything (a ref) refers to it, so an address seen once is not kept forever.
        self._peers: dict[str, Peer] = {}
        self._known: weakref.WeakValueDictionary[str, Peer] = weakref.WeakValueDictionary()
        self._inbound: dict[str, Peer] = {}  # connections other nodes opened, by key
        self._serial = itertools.count(1)
        self._handshakes: dict[asyncio.Task[None], Link] = {}  # accepted, oldest first
        self._watches: dict[str, RemoteWatcher] = {}  # our paths that peers watch
        self.handshake_timeout = min(options.heartbeat_timeout, HANDSHAKE_TIMEOUT)
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
            self.name = self._listener.node_name or self.name
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
        # Routes were dialed by us (their URLs parse); inbound peers came through
        # our listener. A declared address is never dialed here.
        urls = {*self._peers, *([self.address] if self.address else [])}
        transports = {transport_for(url) for url in urls}
        peers = [*self._peers.values(), *self._inbound.values()]
        up = [peer for peer in peers if peer.up]
        for peer in up:  # what we received was delivered: its senders learn it first
            peer.flush_credit()
        settle = min(1.0, self.options.heartbeat_timeout)
        await asyncio.gather(*(peer.settle(settle) for peer in up))
        for peer in peers:
            if peer.up:
                try:
                    peer.send(wire.Goodbye("shutdown").frame(), urgent=True)
                except TransportError:
                    pass
                peer.lost("this node shut down", close=True)
        for link in list(self._handshakes.values()):  # nobody else would close them
            link.conn.close("this node shut down")
        if self._listener is not None:
            await self._listener.aclose()
        # close() is not async: an adapter may still be finishing what it closed.
        for transport in transports:
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
            return self._here(path)
        peer = self.peer_for(node_url)
        await peer.ensure_up()
        return peer.ref(path)

    def _here(self, path: str) -> ActorRef[Any]:
        """A ref to `path` on this node: the local ref, or one that looks again."""
        local = self.system.lookup(path)
        if local is not None:
            return local
        assert self.address is not None
        return HereRef(self.system, self.address, path)

    def nodes(self) -> list[NodeInfo]:
        found: dict[tuple[str, str], NodeInfo] = {}
        for peer in [*self._peers.values(), *self._inbound.values()]:  # routes first
            if peer.up and (peer.name, peer.incarnation) not in found:
                address = peer.address or peer.claimed
                found[peer.name, peer.incarnation] = NodeInfo(peer.name, address, peer.incarnation)
        return list(found.values())

    def traffic(self) -> dict[str, tuple[int, int, int, int]]:
        """Frames and bytes (in, out) per connected node, by name; two connections
        to one node (each side dialled) add up."""
        found: dict[str, tuple[int, int, int, int]] = {}
        for peer in [*self._peers.values(), *self._inbound.values()]:
            if peer.up and peer.name:
                fi, fo, bi, bo = found.get(peer.name, (0, 0, 0, 0))
                found[peer.name] = (
                    fi + peer.frames_in,
                    fo + peer.frames_out,
                    bi + peer.bytes_in,
                    bo + peer.bytes_out,
                )
        return found

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
        argument: Any = body
        tracing = self.system.tracing
        if tracing is not None:
            carrier = tracing.outgoing(message)[1]
            if carrier is not None:  # the publisher's span: [body, trace context]
                argument = [body, carrier]
        answers = await self._ask_all("publish", argument, timeout)
        return sum(n for _, n in answers if isinstance(n, int))

    async def remote_tree(self, url: str, timeout: float) -> list[dict[str, Any]]:
        peer = self.peer_for(url)
        await peer.ensure_up()
        tree = await peer.request(wire.Query, "tree", None, timeout=timeout)
        if not isinstance(tree, list):
            raise TransportError(f"{url} answered the tree query with {type(tree).__name__}")
        return tree

    def inbound(self) -> list[Peer]:
        """The connections other nodes opened to this one that are up, oldest
        first (a worker process's node has one: its parent's)."""
        return [peer for peer in self._inbound.values() if peer.up]

    def local_ref(self, slot: Any) -> ActorRef[Any] | None:
        return _SerializingRef(slot, self.codec) if self.options.serialize_local else None

    # -- peers and connections -------------------------------------------------

    def peer_for(self, node_url: str) -> Peer:
        """The route to the node at `node_url` (not connected yet, maybe)."""
        transport_for(node_url)  # an unknown scheme fails here, with what to install
        peer = self._known.get(node_url)
        if peer is None:
            peer = self._known[node_url] = Peer(self, node_url)
        return peer

    async def connect(self, peer: Peer) -> None:
        """Open a connection to `peer` and run the client side of the handshake."""
        if self._closing:
            raise TransportError("this node is shutting down")
        url = peer.address
        assert url is not None
        tls = {"ssl": self.options.ssl_client} if self.options.ssl_client is not None else {}
        conn = await transport_for(url).connect(url, max_frame=self.options.max_frame, **tls)
        conn.limit_incoming(wire.HANDSHAKE_FRAME)
        link = Link(conn)
        link.arm(self.clock, self.handshake_timeout)
        conn.start(link)
        try:
            theirs = await client_handshake(link, url, self._hello, self.options.secret, self._log)
        except BaseException:
            conn.close("handshake failed")
            raise
        self._peers[url] = peer
        self._attach(peer, link, theirs)

    def _hello(self, nonce: bytes, proof: bytes) -> bytes:
        return hello(
            self.name, self.incarnation, self.address, nonce, proof, self.options.max_frame
        )

    def _attach(self, peer: Peer, link: Link, theirs: wire.Hello) -> None:
        link.conn.limit_incoming(self.options.max_frame)
        old = peer.link if peer.conn is not None else None
        if old is not None:
            old.detach()
        peer.attach(link.conn, theirs.name, theirs.incarnation, theirs.max_frame)
        peer.link = link
        link.attach(peer)
        self._log(
            "node.up",
            peer.address or theirs.address or theirs.name,
            name=theirs.name,
            incarnation=theirs.incarnation,
        )

    def peer_down(self, peer: Peer, reason: str) -> None:
        # A warning (API.md 8), except when we are the ones shutting down: no news then.
        level = "info" if self._closing else None
        self._log(
            "node.down",
            peer.address or peer.claimed or peer.name,
            level,
            name=peer.name,
            reason=reason,
        )
        if peer.address is None:
            self._inbound.pop(peer.key, None)
        elif self._peers.get(peer.address) is peer:
            del self._peers[peer.address]  # kept in _known while a ref refers to it

    def _accept(self, conn: Connection) -> None:
        if self._closing:
            conn.close("this node is shutting down")
            return
        # A new connection pushes out the oldest handshake of its source past
        # that source's bound, else the oldest of all past the bound on all:
        # connections that never finish their handshake lock nobody out.
        same = [task for task, link in self._handshakes.items() if link.conn.source == conn.source]
        if len(same) >= MAX_HANDSHAKES_PER_SOURCE:
            self._push_out(same[0], f"too many handshakes at once from {conn.source}")
        elif len(self._handshakes) >= MAX_HANDSHAKES:
            self._push_out(next(iter(self._handshakes)), "too many handshakes at once")
        conn.limit_incoming(wire.HANDSHAKE_FRAME)
        link = Link(conn)
        link.arm(self.clock, self.handshake_timeout)
        conn.start(link)
        task = asyncio.get_running_loop().create_task(self._server_handshake(link))
        self._handshakes[task] = link
        task.add_done_callback(self._handshake_done)

    def _push_out(self, task: asyncio.Task[None], reason: str) -> None:
        link = self._handshakes.pop(task)
        self._refuse(link.conn, reason)
        link.disarm()
        task.cancel()

    def _refuse(self, conn: Connection, reason: str) -> None:
        """GOODBYE with the reason, then close (logged as `node.refused`)."""
        self._log("node.refused", conn.peer, reason=reason)
        if not conn.closed:
            try:
                conn.send(wire.Goodbye(reason).frame(), urgent=True)
            except TransportError:
                pass
            conn.close(reason)

    def _handshake_done(self, task: asyncio.Task[None]) -> None:
        self._handshakes.pop(task, None)
        if not task.cancelled():
            task.exception()  # logged inside; retrieved here

    async def _server_handshake(self, link: Link) -> None:
        conn = link.conn
        try:
            theirs = await server_handshake(
                link, self._hello, self.options.secret, self._check_hello
            )
        except VersionMismatch as exc:
            self._refuse(conn, str(exc))
            return
        except Exception as exc:  # garbage from a stranger: refuse it, keep serving
            self._refuse(conn, str(exc) or repr(exc))
            return
        finally:
            link.disarm()
        if self._closing:
            self._refuse(conn, "this node is shutting down")
            return
        # Not a route: the address it declares is its word only (see the module doc).
        peer = Peer(self, None, claimed=theirs.address)
        peer.key = f"{theirs.name}#{theirs.incarnation}#{next(self._serial)}"
        self._inbound[peer.key] = peer
        conn.send(wire.Welcome().frame(), urgent=True)
        self._attach(peer, link, theirs)

    @staticmethod
    def _check_hello(theirs: wire.Hello) -> None:
        """A listen address declared in HELLO must be a node URL we could dial."""
        address = theirs.address
        if address is None:
            return
        try:
            node_url, path = split_url(address)
            transport_for(node_url)
        except (ValueError, TransportError) as exc:
            raise wire.ProtocolError(f"a malformed HELLO: address {address!r}: {exc}") from None
        if path not in ("", "/"):
            raise wire.ProtocolError(f"a malformed HELLO: address {address!r} is not a node URL")

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
        for peer in [*self._peers.values(), *self._inbound.values()]:
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
                    peer.send(_PING, urgent=True)
                except TransportError:
                    continue
            peer.sent = False
        self._arm_heartbeat()

    # -- requests from peers: stop, queries --------------------------------------------

    def on_request(self, peer: Peer, kind: int, frame: bytes) -> None:
        if kind == wire.STOP:
            stop = wire.decode(wire.Stop, frame)
            self.system.run_in_background(self._stop(peer, stop.request, stop.path))
            return
        query = wire.decode(wire.Query, frame)
        request, op, argument = query.request, query.op, query.argument
        if op == "discover" and isinstance(argument, list) and len(argument) == 2:
            peer.reply_value(request, discover_here(self.system, *argument))
        elif op == "publish" and isinstance(argument, bytes):
            self.system.run_in_background(self._publish_here(peer, request, argument, None))
        elif op == "publish" and _traced_publish(argument):
            body, carrier = argument
            self.system.run_in_background(self._publish_here(peer, request, body, carrier))
        elif op == "tree":
            peer.reply_value(request, [tree_dict(node) for node in self.system.tree()])
        elif op in ("discover", "publish"):
            wanted = (
                "a [class, wire id] array"
                if op == "discover"
                else "a message body (bin) or [body, trace context]"
            )
            raise wire.ProtocolError(f"a malformed QUERY frame: argument: {op} takes {wanted}")
        else:
            raise wire.ProtocolError(f"a malformed QUERY frame: op: unknown query {op!r}")

    async def _stop(self, peer: Peer, request: int, path: str) -> None:
        ref = self.system.lookup(path)
        if ref is not None:
            await ref.stop()
        peer.reply_value(request, None)

    async def _publish_here(self, peer: Peer, request: int, body: bytes, carrier: Any) -> None:
        try:
            message = self.decode(body)
        except SerializationError as exc:
            peer.reply_value(request, 0)
            self._log("node.refused", peer.address or peer.name, reason=f"publish: {exc}")
            return
        tracing = self.system.tracing
        if tracing is None:
            peer.reply_value(request, await self.system.publish(message))
            return
        if not _is_trace_context(carrier):
            carrier = None  # absent, or not a map of str to str: a new trace
        with tracing.adopted(carrier):  # the publisher's span is the parent
            accepted = await self.system.publish(message)
        peer.reply_value(request, accepted)

    async def _ask_all(self, op: str, argument: Any, timeout: float) -> list[tuple[Peer, Any]]:
        """Query every connected node, and every node the listener's cluster
        presence knows of (connecting first)."""
        peers = [peer for peer in self._peers.values() if peer.up]
        seen = {(peer.name, peer.incarnation) for peer in peers}
        wanted = {peer.address for peer in peers}
        for peer in self._inbound.values():  # asked over a route of our own
            if peer.up and (peer.name, peer.incarnation) not in seen:
                seen.add((peer.name, peer.incarnation))
                if peer.claimed is None:
                    peers.append(peer)  # it does not listen: only its connection reaches it
                elif peer.claimed not in wanted:
                    wanted.add(peer.claimed)
                    peers.append(self.peer_for(peer.claimed))
        if self._listener is not None:  # nodes on the adapter's cluster (NATS presence)
            members = self._listener.members(self.options.heartbeat_timeout)
            for url in members:
                if url not in wanted:
                    wanted.add(url)
                    peers.append(self.peer_for(url))
        return await ask_all(peers, op, argument, timeout, self._log)

    # -- the codec and refs -------------------------------------------------------------

    def encode(self, message: Any) -> bytes:
        return self.codec.encode(message)

    def decode(self, body: bytes) -> Any:
        return self.codec.decode(body)

    def too_large(self, frame: bytes, message: Any, limit: int) -> None:
        raise SerializationError(
            f"{type(message).__qualname__} takes {len(frame)} bytes on the wire, "
            f"over the maximum frame of {limit}"
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
            return self._here(path)
        return self.peer_for(node_url).ref(path)

    def log(self, event: str, peer: Peer, **fields: Any) -> None:
        self._log(event, peer.address or peer.claimed or peer.name, **fields)

    # -- our actors that peers watch ------------------------------------------------

    def watch_here(self, peer: Peer, path: str) -> bool:
        """`peer` watches our actor at `path`; False if there is none. One watcher
        per watched actor serves every peer, so peers that come and go leave
        nothing behind on the actor."""
        ref = self.system.lookup(path)
        if ref is None or not ref.is_alive:
            return False
        watcher = self._watches.get(path)
        if watcher is None:
            watcher = self._watches[path] = RemoteWatcher(self, path)
            ref.add_watcher(watcher)
        watcher.peers.add(peer)
        return True

    def unwatch(self, peer: Peer, paths: set[str]) -> None:
        for path in paths:
            watcher = self._watches.get(path)
            if watcher is not None:
                watcher.peers.discard(peer)

    def watch_over(self, watcher: RemoteWatcher) -> None:
        if self._watches.get(watcher.path) is watcher:
            del self._watches[watcher.path]

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


_PING = wire.Ping().frame()


def _traced_publish(argument: Any) -> bool:
    """A publish query's `[body, trace context]` (protocol version 3)."""
    return isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], bytes)


def _is_trace_context(carrier: Any) -> bool:
    return isinstance(carrier, dict) and all(
        isinstance(key, str) and isinstance(value, str) for key, value in carrier.items()
    )


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
