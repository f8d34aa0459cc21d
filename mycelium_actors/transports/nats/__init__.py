"""`nats://host:port/<node>`: node connections carried by a NATS server.

The seam speaks of point-to-point connections; NATS of subjects. The mapping
(docs/cluster.md has the user's side of it):

- A node named N that listens subscribes to `mycelium.node.N`. A client opens a
  connection with a request there carrying its own inbox subject; the node
  answers with its inbox. Inboxes are `mycelium.conn.<client>.<connection>`,
  where `<client>` is one NATS connection of this process.
- Frames are the node protocol's frames, unchanged, one per NATS message,
  published to the other side's inbox. NATS keeps the order of one
  publisher's messages on one subject, so everything of one direction of one
  connection goes to one subject; the message's reply field says what it is
  (none: a frame, `u`: an urgent frame, `x`: the sender closed, reason inside).
- One NATS client per server and event loop carries every listener and
  connection of this process; it lives while one of them does. Its reconnect
  buffer is off (`pending_size=0`): when it loses the server, every
  connection on it is lost at once, and it reconnects by itself (listeners
  keep their subjects).
- Anyone on the server may publish to an inbox. With a secret, the node
  `protect()`s each connection after its handshake: every frame then ends in
  an HMAC (`TAG` bytes) of its sequence number, kind and bytes, under a key
  per connection and direction; a frame that fails it is dropped and logged.
  Frames are therefore capped at the server's max_payload less `TAG`.
- Presence (`presence.py`): listening nodes announce themselves on
  `mycelium.presence`, so `members()` knows every node of the cluster.

Unique names: core NATS cannot claim a subject atomically. `listen` asks first
(anyone answering on `mycelium.node.N` holds the name), then subscribes and
announces itself for `CLAIM_WINDOW` seconds; two nodes claiming one name at
once hear each other (NATS orders each client's subscribe before its
publish) and the one with the larger claim id backs off.

Modules: `urls` (parsing), `hub` (the shared NATS client and its sender),
`connection` (one end of a connection, frame signing), `listener` (names,
opens), `presence` (who is on the cluster); this one is the transport.
"""

from __future__ import annotations

import asyncio
import weakref
from ssl import SSLContext
from typing import Any

try:
    import nats
    import nats.errors
except ImportError as exc:  # the registry turns this into what to pip install
    raise ImportError("nats-py is not installed") from exc

from ...errors import TransportError
from ..base import Connection, Listener, Transport, check_max_frame, no_tls
from ..registry import register
from .connection import TAG, NatsConnection, describe
from .hub import Hub
from .listener import ACCEPTED, NODE_SUBJECT, OPEN, Accept, NatsListener
from .urls import DEFAULT_PORT, parse

__all__ = ["DEFAULT_PORT", "TAG", "NatsConnection", "NatsListener", "NatsTransport", "parse"]

#: How long a connection request waits for the node's answer.
OPEN_TIMEOUT = 10.0


class NatsTransport(Transport):
    """`nats://` URLs; `connect_options` go to `nats.connect` as they are
    (e.g. `tls=ssl_context`, `user_credentials=path`), over the environment's."""

    def __init__(self, **connect_options: Any) -> None:
        self.connect_options = connect_options
        self._hubs: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future[Hub]] = {}
        self._userinfo: dict[str, str] = {}  # per server, from a listen URL
        self._closing: set[Hub] = set()
        # The server a node of each loop joined (listens on).
        self._joined: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, str] = (
            weakref.WeakKeyDictionary()
        )

    def split(self, url: str) -> tuple[str, str]:
        userinfo, server, name, path = parse(url)
        if not name:
            raise ValueError(f"{url!r} names no node (nats://host:port/<node name>/...)")
        return f"nats://{userinfo + '@' if userinfo else ''}{server}/{name}", path

    async def connect(
        self, node_url: str, *, max_frame: int, ssl: SSLContext | None = None
    ) -> Connection:
        """`ssl` is ignored: the link to the NATS server has its own TLS
        (`connect_options`' `tls`, or MYCELIUM_NATS_TLS_*; docs/cluster.md)."""
        check_max_frame(max_frame)
        userinfo, server, name = self._node(node_url)
        node = f"nats://{server}/{name}"
        hub = await self._hub(self._route(server), userinfo)
        if not hub.reachable:  # its client is reconnecting: say so, not what nats-py says
            hub.release()
            await hub.closed()
            raise TransportError(f"cannot connect to {node}: {hub.lost_server()}")
        conn = hub.new_connection(node, max_frame)
        try:
            answer = await hub.nc.request(
                NODE_SUBJECT + name, OPEN + conn.inbox.encode(), OPEN_TIMEOUT
            )
            if answer.data[:1] != ACCEPTED:
                raise TransportError(answer.data[1:].decode(errors="replace") or "refused")
        except BaseException as exc:
            conn.forget()
            await hub.closed()  # if this was its only use, the client closes now
            if isinstance(exc, nats.errors.NoRespondersError):
                exc = TransportError("no node of that name is on the NATS server")
            elif not isinstance(exc, (TransportError, nats.errors.Error, OSError, TimeoutError)):
                raise
            raise TransportError(f"cannot connect to {node}: {describe(exc)}") from None
        conn.target = answer.data[1:].decode()
        return conn

    async def listen(
        self, node_url: str, accept: Accept, *, max_frame: int, ssl: SSLContext | None = None
    ) -> Listener:
        """`ssl` is refused (`TransportError`): see `connect` for NATS's TLS."""
        check_max_frame(max_frame)
        userinfo, server, name = self._node(node_url)
        if ssl is not None:  # the URL without its credentials
            raise TransportError(
                no_tls(f"nats://{server}/{name}", "NATS links use the server's TLS")
            )
        if userinfo:
            self._userinfo[server] = userinfo
        hub = await self._hub(server, userinfo)
        self._joined[asyncio.get_running_loop()] = server
        listener = NatsListener(hub, name, accept, max_frame)
        try:
            await listener.claim()
        except BaseException:
            await listener.aclose()
            raise
        return listener

    def _route(self, server: str) -> str:
        """Which server to reach a node through: the one its URL names if this
        loop has a client there, else the one a node of this loop joined (the
        NATS cluster routes by subject, so a node's name is enough), else the
        one its URL names."""
        loop = asyncio.get_running_loop()
        joined = self._joined.get(loop)
        if (loop, server) in self._hubs or joined is None or (loop, joined) not in self._hubs:
            return server
        return joined

    def _node(self, node_url: str) -> tuple[str, str, str]:
        userinfo, server, name, path = parse(node_url)
        if not name:
            raise ValueError(f"{node_url!r} names no node (nats://host:port/<node name>)")
        if path != "/":
            raise ValueError(f"{node_url!r} is an actor URL, not a node URL")
        return userinfo or self._userinfo.get(server, ""), server, name

    async def _hub(self, server: str, userinfo: str) -> Hub:
        """The NATS client of this loop for `server`, connected on first use."""
        loop = asyncio.get_running_loop()
        key = (loop, server)
        pending = self._hubs.get(key)
        if pending is None or (pending.done() and (pending.exception() or pending.result().gone)):
            pending = self._hubs[key] = loop.create_future()
            hub = Hub(server, self._forget_hub, self._closed_hub)
            try:
                await hub.open(userinfo, self.connect_options)
            except BaseException as exc:
                if self._hubs.get(key) is pending:
                    del self._hubs[key]
                pending.set_exception(exc)
                pending.exception()  # retrieved: each waiter raises its own copy
                raise
            pending.set_result(hub)
        hub = await asyncio.shield(pending)
        hub.users += 1  # released by the connection or listener built on it
        return hub

    async def settle(self) -> None:
        loop = asyncio.get_running_loop()
        hubs = [p.result() for (on, _), p in self._hubs.items() if on is loop and p.done()]
        hubs += [hub for hub in self._closing if hub.loop is loop]
        for hub in hubs:
            await hub.settle()  # a connection's last publish may be its client's last use
        for hub in [hub for hub in self._closing if hub.loop is loop]:
            await hub.closed()

    def _forget_hub(self, hub: Hub) -> None:
        """`hub` is closing: new users get a new client."""
        for key, pending in list(self._hubs.items()):
            if pending.done() and not pending.exception() and pending.result() is hub:
                del self._hubs[key]
        self._closing.add(hub)

    def _closed_hub(self, hub: Hub) -> None:
        self._closing.discard(hub)


register("nats", NatsTransport)
