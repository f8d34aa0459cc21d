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
- Presence (`nats_presence.py`): listening nodes announce themselves on
  `mycelium.presence`, so `members()` knows every node of the cluster.

Unique names: core NATS cannot claim a subject atomically. `listen` asks first
(anyone answering on `mycelium.node.N` holds the name), then subscribes and
announces itself for `CLAIM_WINDOW` seconds; two nodes claiming one name at
once hear each other (NATS orders each client's subscribe before its
publish) and the one with the larger claim id backs off.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import os
import re
import secrets
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

try:
    import nats
    import nats.errors
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription
except ImportError as exc:  # the registry turns this into what to pip install
    raise ImportError("nats-py is not installed") from exc

from .. import logs
from ..errors import TransportError
from ..transport import Connection, FrameSink, Listener, Transport, register
from .frames import check_max_frame, oversize
from .nats_presence import Presence

DEFAULT_PORT = 4222
#: How long a new listener waits to hear a rival claiming the same name.
CLAIM_WINDOW = 0.1
#: How long a connection request waits for the node's answer.
OPEN_TIMEOUT = 10.0
#: Seconds between attempts to reach a lost server (nats-py retries forever).
RECONNECT_WAIT = 0.5
#: How long closing a NATS client may take (see `_close_client`).
CLOSE_TIMEOUT = 2.0
NODE_SUBJECT = "mycelium.node."
CONN_SUBJECT = "mycelium.conn."
#: Bytes of the signature after each frame of a protected connection.
TAG = 16
_NAME = re.compile(r"[A-Za-z0-9_-]+\Z")  # one NATS subject token, no wildcards
_URGENT, _CLOSE = "u", "x"
_SIGNED_KIND = {"": b"", _URGENT: b"u", _CLOSE: b"x"}  # a message's kind, as signed
# Requests on a node subject and their answers: the first byte says which.
_OPEN, _PROBE, _ACCEPTED, _REFUSED, _HELD, _CLAIMING = b"o", b"p", b"a", b"r", b"h", b"c"

Accept = Callable[[Connection], None]


# -- URLs ----------------------------------------------------------------------------


def parse(url: str) -> tuple[str, str, str, str]:
    """(userinfo, host:port, node name, actor path) of a nats URL; ValueError when bad.

    A node URL has the path "/"; a URL naming only the server has the name "".
    """
    if not url.startswith("nats://"):
        raise ValueError(f"{url!r} is not a nats:// URL")
    rest = url[len("nats://") :]
    if "?" in rest or "#" in rest:
        raise ValueError(f"{url!r}: node URLs take no query or fragment")
    authority, _, path = rest.partition("/")
    userinfo, _, hostport = authority.rpartition("@")
    host, colon, port = hostport.rpartition(":")
    if not colon:
        host, port = hostport, str(DEFAULT_PORT)
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"{url!r} needs a NATS server as host or host:port")
    name, _, actor = path.partition("/")
    if name and not _NAME.match(name):
        raise ValueError(f"{url!r}: a node name is letters, digits, '-' and '_' only")
    return userinfo, f"{host}:{port}", name, "/" + actor


def is_node_url(url: str) -> bool:
    try:
        _, _, name, path = parse(url)
    except ValueError:
        return False
    return bool(name) and path == "/"


class NatsTransport(Transport):
    """`nats://` URLs; `connect_options` go to `nats.connect` as they are
    (e.g. `tls=ssl_context`, `user_credentials=path`), over the environment's."""

    def __init__(self, **connect_options: Any) -> None:
        self.connect_options = connect_options
        self._hubs: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future[_Hub]] = {}
        self._userinfo: dict[str, str] = {}  # per server, from a listen URL
        self._closing: set[_Hub] = set()

    def split(self, url: str) -> tuple[str, str]:
        userinfo, server, name, path = parse(url)
        if not name:
            raise ValueError(f"{url!r} names no node (nats://host:port/<node name>/...)")
        return f"nats://{userinfo + '@' if userinfo else ''}{server}/{name}", path

    async def connect(self, node_url: str, *, max_frame: int) -> Connection:
        check_max_frame(max_frame)
        userinfo, server, name = self._node(node_url)
        node = f"nats://{server}/{name}"
        hub = await self._hub(server, userinfo)
        conn = hub.new_connection(node, max_frame)
        try:
            answer = await hub.nc.request(
                NODE_SUBJECT + name, _OPEN + conn.inbox.encode(), OPEN_TIMEOUT
            )
            if answer.data[:1] != _ACCEPTED:
                raise TransportError(answer.data[1:].decode(errors="replace") or "refused")
        except BaseException as exc:
            conn.forget()
            await hub.closed()  # if this was its only use, the client closes now
            if isinstance(exc, nats.errors.NoRespondersError):
                exc = TransportError("no node of that name is on the NATS server")
            elif not isinstance(exc, (TransportError, nats.errors.Error, OSError, TimeoutError)):
                raise
            raise TransportError(f"cannot connect to {node}: {_describe(exc)}") from None
        conn.target = answer.data[1:].decode()
        return conn

    async def listen(self, node_url: str, accept: Accept, *, max_frame: int) -> Listener:
        check_max_frame(max_frame)
        userinfo, server, name = self._node(node_url)
        if userinfo:
            self._userinfo[server] = userinfo
        hub = await self._hub(server, userinfo)
        listener = NatsListener(hub, name, accept, max_frame)
        try:
            await listener.claim()
        except BaseException:
            await listener.aclose()
            raise
        return listener

    def _node(self, node_url: str) -> tuple[str, str, str]:
        userinfo, server, name, path = parse(node_url)
        if not name:
            raise ValueError(f"{node_url!r} names no node (nats://host:port/<node name>)")
        if path != "/":
            raise ValueError(f"{node_url!r} is an actor URL, not a node URL")
        return userinfo or self._userinfo.get(server, ""), server, name

    async def _hub(self, server: str, userinfo: str) -> _Hub:
        """The NATS client of this loop for `server`, connected on first use."""
        loop = asyncio.get_running_loop()
        key = (loop, server)
        pending = self._hubs.get(key)
        if pending is None or (pending.done() and (pending.exception() or pending.result().gone)):
            pending = self._hubs[key] = loop.create_future()
            hub = _Hub(server, self._forget_hub, self._closed_hub)
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

    def _forget_hub(self, hub: _Hub) -> None:
        """`hub` is closing: new users get a new client."""
        for key, pending in list(self._hubs.items()):
            if pending.done() and not pending.exception() and pending.result() is hub:
                del self._hubs[key]
        self._closing.add(hub)

    def _closed_hub(self, hub: _Hub) -> None:
        self._closing.discard(hub)


# -- one NATS client -------------------------------------------------------------------


class _Hub:
    """One NATS client: the inbox subscription of its connections and their sender."""

    def __init__(
        self, server: str, forget: Callable[[_Hub], None], closed: Callable[[_Hub], None]
    ) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self._on_closed = closed
        self.nc = Client()
        self.prefix = CONN_SUBJECT + secrets.token_hex(8)
        self.users = 0
        self.gone = False
        self._forget = forget
        self._conns: dict[str, NatsConnection] = {}
        self._ids = itertools.count(1)
        self._sub: Subscription | None = None
        self._touched: dict[NatsConnection, None] = {}  # got frames since the last frames_done
        self._ready: deque[NatsConnection | _Notice] = deque()  # have something to publish
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._pump: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self.max_payload = 0

    async def open(self, userinfo: str, extra: dict[str, Any]) -> None:
        options = _options_from_environment(userinfo)
        options.update(extra)
        try:
            # The first attempt fails at once (allow_reconnect=False): nats-py
            # would otherwise retry an unreachable server forever.
            await self.nc.connect(
                servers=[f"nats://{self.server}"],
                allow_reconnect=False,
                max_reconnect_attempts=-1,
                reconnect_time_wait=RECONNECT_WAIT,  # type: ignore[arg-type]
                pending_size=0,  # no reconnect buffer: a lost server loses the frames
                disconnected_cb=self._disconnected,
                error_cb=self._error,
                **options,
            )
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            await _close_client(self.nc)
            raise TransportError(
                f"cannot reach the NATS server {self.server}: {_describe(exc)}"
            ) from exc
        # Our bet on nats-py 2.x: `options` is read at each disconnect, so from
        # now on the client reconnects by itself. Without the key, a lost client
        # stays closed and the next connect or listen opens a new one.
        if "allow_reconnect" in self.nc.options:
            self.nc.options["allow_reconnect"] = True
        # Room for the signature of a protected connection's frames.
        self.max_payload = self.nc.max_payload - TAG
        self._sub = await self.nc.subscribe(
            self.prefix + ".*", cb=self._on_message, pending_msgs_limit=0, pending_bytes_limit=0
        )
        self._pump = asyncio.get_running_loop().create_task(self._send_loop())

    # -- connections --------------------------------------------------------------

    def new_connection(self, peer: str, max_frame: int, target: str = "") -> NatsConnection:
        key = str(next(self._ids))
        conn = NatsConnection(
            self, key, f"{self.prefix}.{key}", peer, min(max_frame, self.max_payload)
        )
        conn.target = target
        self._conns[key] = conn
        return conn

    def drop(self, conn: NatsConnection) -> None:
        """`conn` is done with this client."""
        if self._conns.pop(conn.key, None) is not None:
            self.release()

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0 and self._closing is None:
            self.gone = True
            self._forget(self)
            self._closing = asyncio.get_running_loop().create_task(self._close())

    async def closed(self) -> None:
        if self._closing is not None:
            await asyncio.shield(self._closing)

    def want_send(self, conn: NatsConnection | _Notice) -> None:
        self._ready.append(conn)
        self._idle.clear()
        self._wake.set()

    def post(self, subject: str, data: bytes, reply: str = "") -> None:
        """Publish a message of our own (presence), in turn with the frames."""
        if not self.gone:
            self.want_send(_Notice(subject, data, reply))

    async def _send_loop(self) -> None:
        # publish() is a coroutine but send() is not: frames wait here for one
        # task, in connection order, and publish() rarely suspends.
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._ready:
                await self._ready.popleft().publish(self.nc)
            self._idle.set()

    async def settle(self) -> None:
        """Wait until what closed connections still had to send is published."""
        if self._pump is not None and not self._pump.done():
            await self._idle.wait()

    async def _close(self) -> None:
        await self._idle.wait()  # the last frames and close messages go first
        try:
            await _close_client(self.nc)
        finally:
            if self._pump is not None:
                self._pump.cancel()
            self._on_closed(self)

    # -- from nats-py ---------------------------------------------------------------

    async def _on_message(self, msg: Msg) -> None:
        conn = self._conns.get(msg.subject[len(self.prefix) + 1 :])
        if conn is not None:
            conn.arrived(msg.data, msg.reply)
        sub = self._sub
        if sub is not None and sub.pending_msgs == 0 and self._touched:
            # What a socket read is to the stream adapters: nothing more is queued.
            touched, self._touched = self._touched, {}
            for got in touched:
                got.read_done()

    def touched(self, conn: NatsConnection) -> None:
        self._touched[conn] = None

    def untouch(self, conn: NatsConnection) -> bool:
        return self._touched.pop(conn, 0) is None

    async def _disconnected(self) -> None:
        for conn in list(self._conns.values()):
            conn.lost(f"lost the NATS server {self.server}")

    async def _error(self, exc: Exception) -> None:
        logs.get_logger().info("transport.nats_error", server=self.server, error=repr(exc))


class _Notice:
    """One message to publish that belongs to no connection."""

    __slots__ = ("data", "reply", "subject")

    def __init__(self, subject: str, data: bytes, reply: str) -> None:
        self.subject, self.data, self.reply = subject, data, reply

    async def publish(self, nc: Client) -> None:
        try:
            await nc.publish(self.subject, self.data, reply=self.reply)
        except (nats.errors.Error, OSError) as exc:  # lost: the next beat will do
            logs.get_logger().info("transport.nats_error", subject=self.subject, error=repr(exc))


def _options_from_environment(userinfo: str) -> dict[str, Any]:
    """Credentials and TLS for `nats.connect`: URL userinfo, then MYCELIUM_NATS_*."""
    env = os.environ
    options: dict[str, Any] = {}
    user, colon, password = userinfo.partition(":")
    if user and colon:
        options.update(user=user, password=password)
    elif user:
        options["token"] = user
    if "MYCELIUM_NATS_USER" in env:
        options.update(
            user=env["MYCELIUM_NATS_USER"], password=env.get("MYCELIUM_NATS_PASSWORD", "")
        )
    if "MYCELIUM_NATS_TOKEN" in env:
        options["token"] = env["MYCELIUM_NATS_TOKEN"]
    if "MYCELIUM_NATS_CREDS" in env:
        options["user_credentials"] = env["MYCELIUM_NATS_CREDS"]
    ca, cert, key = (env.get(f"MYCELIUM_NATS_TLS_{part}") for part in ("CA", "CERT", "KEY"))
    if ca or cert or env.get("MYCELIUM_NATS_TLS") == "1":
        context = ssl.create_default_context(cafile=ca)
        if cert:
            context.load_cert_chain(cert, key)
        options["tls"] = context
    return options


# -- connections ----------------------------------------------------------------------


class NatsConnection(Connection):
    """One end of a connection: our inbox subject and the peer's."""

    def __init__(self, hub: _Hub, key: str, inbox: str, peer: str, max_frame: int) -> None:
        self.peer = peer
        self.key = key
        self.inbox = inbox
        self.target = ""  # the peer's inbox
        self.max_frame = max_frame
        self._hub = hub
        self._loop = asyncio.get_running_loop()
        self._sink: FrameSink | None = None
        self._backlog: deque[bytes] = deque()  # received before start(), urgent first
        self._backlog_urgent = 0
        # Frames to publish, in send order (None: a frame; "u": urgent). NATS
        # takes each publish at once, so nothing waits here beyond one pass of
        # the loop and urgent frames have no backlog to overtake on this side;
        # the receiver's backlog (frames before start()) puts them first.
        self._out: list[tuple[bytes, str | None]] = []
        self._queued = False  # in the hub's send queue
        self._farewell: bytes | None = None  # the close message still to publish
        self._closed = False
        self._lost: tuple[str | None] | None = None  # the reason, until a sink takes it
        # Once protected: the keys, and how many frames each way were signed.
        self._send_key: bytes | None = None
        self._receive_key: bytes | None = None
        self._sent = self._received = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self, sink: FrameSink) -> None:
        self._sink = sink
        if self._backlog or self._lost is not None:
            self._loop.call_soon(self._deliver_backlog)

    def send(self, frame: bytes, urgent: bool = False) -> None:
        if self._closed:
            raise TransportError(f"connection to {self.peer} is closed")
        if len(frame) > self.max_frame:
            raise TransportError(oversize(len(frame), self.max_frame))
        kind = _URGENT if urgent else None
        if self._send_key is not None:
            frame = self._sign(frame, kind or "")
        self._out.append((frame, kind))
        self._queue()

    def close(self, reason: str | None = None) -> None:
        if self._closed:
            return
        self._closed = True
        self._say_farewell(reason or "")
        self._end(None)

    def protect(self, send_key: bytes, receive_key: bytes) -> None:
        """Anyone on the server may publish to our inbox: from now on each frame
        carries an HMAC of its sequence number, kind and bytes (a replayed,
        reordered or forged frame fails it), and one without is dropped."""
        self._send_key, self._receive_key = send_key, receive_key

    # -- from the hub -----------------------------------------------------------------

    def arrived(self, data: bytes, kind: str) -> None:
        if self._receive_key is not None:
            body = self._verified(data, kind)
            if body is None:
                return
            data = body
        if kind == _CLOSE:
            reason = data.decode(errors="replace")
            self.lost(f"closed by the peer: {reason}" if reason else "closed by the peer")
        elif self._closed:
            pass
        elif self._sink is None or self._backlog:
            if kind == _URGENT:
                self._backlog.insert(self._backlog_urgent, data)
                self._backlog_urgent += 1
            else:
                self._backlog.append(data)
        else:
            self._deliver(self._sink, data)

    def read_done(self) -> None:
        if self._sink is not None:
            self._sink.frames_done()

    def lost(self, reason: str) -> None:
        """The peer or the server went away: nothing more is sent."""
        if self._closed:
            return
        self._closed = True
        self._out.clear()
        self.forget()
        self._end(reason)

    def forget(self) -> None:
        self._hub.drop(self)

    async def publish(self, nc: Client) -> None:
        """Publish what is queued (the hub's sender calls this)."""
        self._queued = False
        out, farewell = self._out, self._farewell
        self._out, self._farewell = [], None
        try:
            for frame, kind in out:
                if kind is None:
                    await nc.publish(self.target, frame)
                else:
                    await nc.publish(self.target, frame, reply=kind)
            if farewell is not None:
                await nc.publish(self.target, farewell, reply=_CLOSE)
        except (nats.errors.Error, OSError) as exc:
            self.lost(f"cannot publish to the NATS server: {_describe(exc)}")
        if farewell is not None:
            self.forget()

    # -- inside ---------------------------------------------------------------------

    def _sign(self, frame: bytes, kind: str) -> bytes:
        assert self._send_key is not None
        n, self._sent = self._sent, self._sent + 1
        signed = n.to_bytes(8, "big") + _SIGNED_KIND[kind] + frame
        return frame + hmac.digest(self._send_key, signed, "sha256")[:TAG]

    def _verified(self, data: bytes, kind: str) -> bytes | None:
        """`data` without its signature, or None (dropped, logged) if it has none."""
        assert self._receive_key is not None
        body, tag, signed_kind = data[:-TAG], data[-TAG:], _SIGNED_KIND.get(kind)
        if signed_kind is not None and len(data) >= TAG:
            signed = self._received.to_bytes(8, "big") + signed_kind + body
            if hmac.compare_digest(hmac.digest(self._receive_key, signed, "sha256")[:TAG], tag):
                self._received += 1
                return body
        logs.get_logger().warning(
            "transport.frame_dropped", peer=self.peer, reason="not signed by the peer"
        )
        return None

    def _say_farewell(self, reason: str) -> None:
        """After what is queued, the close message goes out (signed if protected)."""
        farewell = reason.encode()
        if self._send_key is not None:
            farewell = self._sign(farewell, _CLOSE)
        self._farewell = farewell
        self._queue()

    def _queue(self) -> None:
        if not self._queued:
            self._queued = True
            self._hub.want_send(self)

    def _deliver(self, sink: FrameSink, data: bytes) -> bool:
        """Hand `data` to `sink`; False if it is too large (the connection closes)."""
        if len(data) > self.max_frame:
            reason = oversize(len(data), self.max_frame)
            logs.get_logger().warning("transport.frame_refused", peer=self.peer, reason=reason)
            self._closed = True
            self._say_farewell(reason)  # after what was queued: signed frames keep their order
            self._end(reason)
            return False
        sink.frame_received(data)
        self._hub.touched(self)
        return True

    def _deliver_backlog(self) -> None:
        sink = self._sink
        if sink is None:
            return
        delivered = False
        while self._backlog:
            self._backlog_urgent = max(0, self._backlog_urgent - 1)
            if not self._deliver(sink, self._backlog.popleft()):
                break
            delivered = True
        self._backlog.clear()
        self._backlog_urgent = 0
        if delivered and self._hub.untouch(self):
            sink.frames_done()
        self._take_lost()

    def _end(self, reason: str | None) -> None:
        """Closed: the sink hears of it once, after the frames it was given."""
        self._lost = (reason,)
        if self._sink is not None and not self._backlog:
            if self._hub.untouch(self):
                self._sink.frames_done()
            self._loop.call_soon(self._take_lost)

    def _take_lost(self) -> None:
        sink, lost = self._sink, self._lost
        if sink is not None and lost is not None:
            self._sink, self._lost = None, None
            sink.connection_lost(lost[0])


# -- listening ------------------------------------------------------------------------


class NatsListener(Listener):
    """A node name on the NATS server: answers opens and probes on its subject."""

    def __init__(self, hub: _Hub, name: str, accept: Accept, max_frame: int) -> None:
        self.address = f"nats://{hub.server}/{name}"
        self.frame_limit = hub.max_payload
        self.max_frame = min(max_frame, hub.max_payload)
        self.name = name
        self._hub = hub
        self._accept = accept
        self._subject = NODE_SUBJECT + name
        self._claim = secrets.token_hex(8)
        self._held = False  # the name is ours (the claim window is over)
        self._beaten = False  # a rival with a smaller claim id wants the name
        self._sub: Subscription | None = None
        self._closed = False
        self._presence = Presence(hub.nc, hub.post, self.address, is_node_url)

    async def claim(self) -> None:
        """Take the node name, or raise `TransportError` if someone holds it."""
        nc = self._hub.nc
        try:
            await nc.request(self._subject, _PROBE + self._claim.encode(), CLAIM_WINDOW)
        except nats.errors.NoRespondersError:
            pass  # nobody holds it
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            raise self._in_use() from exc  # someone is subscribed but silent: still taken
        else:
            raise self._in_use()
        self._sub = await nc.subscribe(self._subject, cb=self._on_request)
        rivals = await nc.subscribe(nc.new_inbox(), cb=self._on_rival)
        try:
            await nc.publish(self._subject, _PROBE + self._claim.encode(), reply=rivals.subject)
            await asyncio.sleep(CLAIM_WINDOW)  # a real-time window: rivals answer within it
        finally:
            await rivals.unsubscribe()
        if self._beaten:
            raise self._in_use()
        self._held = True
        await self._presence.join()

    def announce(self) -> None:
        if self._held and not self._closed:
            self._presence.beat()

    def members(self, max_age: float) -> list[str]:
        return self._presence.members(max_age)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._held:
            await self._presence.leave()
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except nats.errors.Error:
                pass  # the client is closed or reconnecting: the subject goes with it
        # The node closed its connections before this: their last frames go
        # out, and the client closes with the last of its users.
        await self._hub.settle()
        self._hub.release()
        await self._hub.closed()

    def _in_use(self) -> TransportError:
        return TransportError(
            f"cannot listen at {self.address}: node name {self.name} is already in use "
            "on this NATS cluster"
        )

    async def _on_rival(self, msg: Msg) -> None:
        kind, claim = msg.data[:1], msg.data[1:].decode(errors="replace")
        if kind == _HELD or (kind == _CLAIMING and claim < self._claim):
            self._beaten = True

    async def _on_request(self, msg: Msg) -> None:
        kind, body = msg.data[:1], msg.data[1:]
        if not msg.reply:
            return
        nc = self._hub.nc
        try:
            if kind == _PROBE:
                claim = body.decode(errors="replace")
                if claim == self._claim:
                    return  # our own announcement
                if not self._held and claim < self._claim:
                    self._beaten = True
                await nc.publish(
                    msg.reply, (_HELD if self._held else _CLAIMING) + self._claim.encode()
                )
            elif kind == _OPEN:
                await self._open(msg.reply, body.decode(errors="replace"))
        except (nats.errors.Error, OSError) as exc:
            logs.get_logger().info("transport.nats_error", node=self.address, error=repr(exc))

    async def _open(self, reply: str, their_inbox: str) -> None:
        nc = self._hub.nc
        if self._closed or not self._held or not their_inbox.startswith(CONN_SUBJECT):
            await nc.publish(reply, _REFUSED + b"not accepting connections")
            return
        hub = self._hub
        hub.users += 1
        conn = hub.new_connection(
            f"{self.address} client {their_inbox}", self.max_frame, their_inbox
        )
        await nc.publish(reply, _ACCEPTED + conn.inbox.encode())
        self._accept(conn)


async def _close_client(nc: Client) -> None:
    """`nc.close()`, bounded: after a failed TLS handshake nats-py waits forever
    for a socket asyncio already closed (start_tls swapped its protocol)."""
    try:
        await asyncio.wait_for(nc.close(), CLOSE_TIMEOUT)
    except TimeoutError:
        logs.get_logger().info("transport.nats_close_timeout", timeout=CLOSE_TIMEOUT)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


register("nats", NatsTransport)
