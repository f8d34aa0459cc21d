"""The per-peer state behind remote refs.

A `Peer` is this node's side of the conversation with one other node: its
connection (made again on the next use after a loss), the asks waiting for a
reply, and flow control in both directions (`flow.py`). Replies, credits,
stops, heartbeats and watch notices are urgent frames that never queue behind
data. What a `Peer` needs of its node is `PeerHost`, declared here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ..errors import (
    ActorStopped,
    AskTimeout,
    MailboxFull,
    SerializationError,
    TransportError,
)
from ..kernel.clock import Clock
from ..kernel.messages import Terminated
from ..kernel.ref import LocalActorRef, Watcher
from ..kernel.replies import resume
from ..kernel.system import ActorSystem
from ..transports.base import Connection
from ..wire import exceptions
from ..wire import frames as wire
from ..wire.codec import Codec, body_wire_id
from .flow import CREDIT_BATCH, MAX_OPEN_ASKS, MAX_UNREAD, WINDOW
from .refs import RemoteActorRef, TracedRemoteRef


class PeerHost(Protocol):
    """What a `Peer` uses of its node (the remote layer's `NetworkNode`)."""

    system: ActorSystem
    codec: Codec
    clock: Clock
    loop: asyncio.AbstractEventLoop
    max_frame: int

    @property
    def address(self) -> str | None:
        """Where this node listens, if it does."""

    async def connect(self, peer: Peer) -> None:
        """Open a connection to `peer` and run the handshake; `TransportError`."""

    def peer_down(self, peer: Peer, reason: str) -> None:
        """`peer`'s connection is gone (after its waiters failed)."""

    def on_request(self, peer: Peer, kind: int, frame: bytes) -> None:
        """A STOP or QUERY frame from `peer`."""

    def decode(self, body: bytes) -> Any:
        """A message body from the wire; `SerializationError`."""

    def too_large(self, frame: bytes, message: Any, limit: int) -> None:
        """Raise `SerializationError`: `frame` is over the maximum frame `limit`."""

    def log(self, event: str, peer: Peer, **fields: Any) -> None:
        """A lifecycle event about `peer`."""

    def watch_here(self, peer: Peer, path: str) -> bool:
        """`peer` watches our actor at `path`; False if none lives there."""

    def unwatch(self, peer: Peer, paths: set[str]) -> None:
        """`peer` is gone: it watches none of `paths` any more."""

    def watch_over(self, watcher: RemoteWatcher) -> None:
        """`watcher`'s actor stopped: its notices are sent."""

    def run_blocking(self, coro: Coroutine[Any, Any, Any], timeout: float | None) -> Any:
        """Run `coro` on the node's loop from another thread; its result."""


class Peer:
    """One other node, as this node sees it; the `FrameSink` of its connection."""

    def __init__(self, node: PeerHost, address: str | None, claimed: str | None = None) -> None:
        self.node = node
        self.address = address  # the route's URL (None: a connection the peer opened)
        self.claimed = claimed  # the address an inbound peer declared (its word only)
        self.key = ""  # an inbound peer's key in the node's table
        self.name = ""
        self.incarnation = ""
        self.max_frame = node.max_frame  # the largest frame we send it: the smaller limit
        self.conn: Connection | None = None
        self.link: Any = None  # the node's frame sink for `conn`
        self.heard = True  # a frame arrived since the last heartbeat tick
        self.sent = True
        self.quiet_since = 0.0
        self._connecting: asyncio.Future[None] | None = None
        self._next_request = 0
        self._asks: dict[int, asyncio.Future[Any]] = {}
        self._inflight: dict[str, deque[Any]] = {}  # sent, not yet credited (None: an ask)
        self._credit_waiters: dict[str, deque[asyncio.Future[None]]] = {}
        self._owed: dict[str, int] = {}  # credit to return, per local path
        self._inbound: dict[str, deque[tuple[Any, asyncio.Future[Any] | None]]] = {}
        self._watchers: dict[str, list[Watcher]] = {}
        self._watched: set[str] = set()  # our paths this peer watches (RemoteWatcher sent)
        self._open_asks = 0  # asks from this peer not answered yet
        self._paths: dict[bytes, str] = {}  # path bytes seen in frames, decoded once
        # path -> (the mailbox's offer, the ref, whether its wake-up waits for the read's end)
        self._targets: dict[str, tuple[Any, LocalActorRef[Any], bool]] = {}
        self._decode = node.codec.decode
        self._tracing = node.system.tracing  # None unless the system traces (tracing.py)
        self._encode = node.codec.encode
        self._encode_value = node.codec.encode_value
        self._decode_value = node.codec.decode_value
        self._wake: list[LocalActorRef[Any]] = []  # to serve at the end of this read
        self._refs: dict[str, RemoteActorRef] = {}
        self._settled: asyncio.Future[None] | None = None  # while closing: no tell in flight
        self._asked = False  # asks arrived in this read: check what it leaves unread
        self._ignored_context = False  # a trace context that did not parse was logged
        # Traffic since the handshake, for `system.metrics().nodes` (handshake frames aside).
        self.frames_in = self.frames_out = self.bytes_in = self.bytes_out = 0

    def __repr__(self) -> str:
        return f"<Peer {self.name or '?'} {self.address} {'up' if self.up else 'down'}>"

    @property
    def label(self) -> str:
        """The peer as errors name it: its address, else its name."""
        where = self.address or self.claimed
        if where and self.name:
            return f"{self.name} at {where}"
        return where or self.name or "?"

    @property
    def up(self) -> bool:
        return self.conn is not None and not self.conn.closed

    def ref(self, path: str) -> RemoteActorRef:
        """The one ref object for `path` on this peer."""
        ref = self._refs.get(path)
        if ref is None:
            tracing = self._tracing
            ref = (
                RemoteActorRef(self, path)
                if tracing is None
                else TracedRemoteRef(self, path, tracing)
            )
            self._refs[path] = ref
        return ref

    # -- the connection -----------------------------------------------------------

    async def ensure_up(self) -> None:
        """Connect if not connected (at most one attempt at a time); `TransportError`."""
        if self.up:
            return
        if self.address is None:
            raise TransportError(
                f"{self.name} does not listen: it is reachable only while connected"
            )
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.get_running_loop().create_future()
            connecting = self._connecting
            try:
                await self.node.connect(self)
            except BaseException as exc:
                connecting.set_exception(exc)
                connecting.exception()  # retrieved: the waiters below get their own copy
                raise
            connecting.set_result(None)
            return
        await asyncio.shield(self._connecting)

    def attach(self, conn: Connection, name: str, incarnation: str, max_frame: int) -> None:
        """A handshake finished: `conn` is now the way to this peer."""
        if self.conn is not None and self.conn is not conn and not self.conn.closed:
            self.lost("replaced by a new connection", close=True)
        self.conn = conn
        self.name = name
        self.incarnation = incarnation
        self.max_frame = min(self.node.max_frame, max_frame)
        self.heard = True

    def send(self, frame: bytes, urgent: bool = False) -> None:
        conn = self.conn
        if conn is None or conn.closed:
            raise TransportError(f"not connected to {self.label}")
        conn.send(frame, urgent)
        self.sent = True
        self.frames_out += 1
        self.bytes_out += len(frame)

    def lost(self, reason: str, close: bool = False) -> None:
        """The connection is gone: fail what waits on it, tell the watchers."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if self._settled is not None and not self._settled.done():
            self._settled.set_result(None)
        if close:
            conn.close(reason)
        # Actors given messages in this read serve them: nothing else would wake them.
        wake, self._wake = self._wake, []
        for ref in wake:
            ref.wake_now()
        error = TransportError(f"connection to {self.label} lost: {reason}")
        asks, self._asks = self._asks, {}
        for fut in asks.values():
            if not fut.done():
                fut.set_exception(error)
        inflight, self._inflight = self._inflight, {}
        system = self.node.system
        for path, messages in inflight.items():
            for message in messages:
                if message is not None:  # a tell in flight: at most once, so it is lost
                    system.dead_letter(self._url(path), message, "connection_lost")
        waiters, self._credit_waiters = self._credit_waiters, {}
        for queue in waiters.values():
            for fut in queue:
                if not fut.done():
                    fut.set_exception(error)
        watchers, self._watchers = self._watchers, {}
        for path, watching in watchers.items():
            for watcher in watching:
                watcher.deliver(Terminated(self.ref(path), "connection_lost"))
        self._owed.clear()
        self._inbound.clear()
        self._open_asks = 0
        watched, self._watched = self._watched, set()
        self.node.unwatch(self, watched)
        self.node.peer_down(self, reason)

    def _url(self, path: str) -> str:
        return f"{self.address or self.name}{path}"

    def tells_in_flight(self) -> bool:
        return any(message is not None for sent in self._inflight.values() for message in sent)

    async def settle(self, timeout: float) -> None:
        """Before this node closes: ask for the credit of tells in flight (a PING
        makes the peer return what it owes) and wait up to `timeout` for it, so
        tells that were delivered are not counted as lost."""
        if not self.up or not self.tells_in_flight():
            return
        self._settled = self.node.loop.create_future()
        try:
            self.send(wire.Ping().frame(), urgent=True)
            await asyncio.wait_for(asyncio.shield(self._settled), timeout)
        except (TimeoutError, TransportError):
            pass  # what is still in flight is lost, as for any closed connection
        finally:
            self._settled = None

    # -- sending -------------------------------------------------------------------

    def _room(self, path: str) -> bool:
        return len(self._inflight.get(path) or ()) < WINDOW and path not in self._credit_waiters

    async def _take_room(self, path: str, until: asyncio.Future[Any] | None = None) -> deque[Any]:
        """Wait until one more message to `path` may go (FIFO among senders);
        the window's deque to append it to. A woken sender checks again: a
        sender that did not wait may have taken the room meanwhile."""
        await self._wait_for_room(path, until, first=False)
        while True:
            inflight = self._inflight_to(path)
            if len(inflight) < WINDOW:
                return inflight
            await self._wait_for_room(path, until, first=True)

    async def _wait_for_room(
        self, path: str, until: asyncio.Future[Any] | None, first: bool
    ) -> None:
        """Until woken by credit; `until` done first (the ask's deadline) ends it."""
        fut = asyncio.get_running_loop().create_future()
        queue = self._credit_waiters.setdefault(path, deque())
        if first:
            queue.appendleft(fut)
        else:
            queue.append(fut)

        def give_up(_: object) -> None:
            fut.cancel()

        if until is not None:
            until.add_done_callback(give_up)
        try:
            await fut
        except asyncio.CancelledError:
            self._forget_waiter(path, fut)
            task = asyncio.current_task()
            if until is not None and until.done() and task is not None and not task.cancelling():
                if not until.cancelled():
                    until.exception()  # the deadline's AskTimeout: ours says more
                raise AskTimeout(f"ask to {self._url(path)} found no room in flight") from None
            raise
        except BaseException:
            self._forget_waiter(path, fut)
            raise
        finally:
            if until is not None:
                until.remove_done_callback(give_up)

    def _forget_waiter(self, path: str, fut: asyncio.Future[None]) -> None:
        queue = self._credit_waiters.get(path)
        if queue is not None and fut in queue:
            queue.remove(fut)
            if not queue:
                del self._credit_waiters[path]
        elif fut.done() and not fut.cancelled() and fut.exception() is None:
            self._pass_room(path)  # we were given the room: hand it on

    def _pass_room(self, path: str, n: int = 1) -> None:
        """Wake up to `n` senders waiting for room to `path`, oldest first."""
        queue = self._credit_waiters.get(path)
        inflight = self._inflight.get(path)
        while n and queue and len(inflight or ()) < WINDOW:
            fut = queue.popleft()
            if not fut.done():
                fut.set_result(None)
                n -= 1
        if queue is not None and not queue:
            del self._credit_waiters[path]

    def _inflight_to(self, path: str) -> deque[Any]:
        inflight = self._inflight.get(path)
        if inflight is None:  # kept when empty: a sender may hold it across an await
            inflight = self._inflight[path] = deque()
        return inflight

    async def tell(self, path: str, head: bytes, message: Any) -> None:
        """The hot path of a remote tell: encode, take a credit, write."""
        frame = head + self._encode(message)
        if len(frame) > self.max_frame:
            self.node.too_large(frame, message, self.max_frame)
        conn = self.conn
        if conn is None or conn.closed:
            await self.ensure_up()
            if len(frame) > self.max_frame:  # the peer's limit, learnt in the handshake
                self.node.too_large(frame, message, self.max_frame)
        inflight = self._inflight.get(path)
        if inflight is None:
            inflight = self._inflight_to(path)
        if len(inflight) >= WINDOW or path in self._credit_waiters:
            inflight = await self._take_room(path)
        conn = self.conn
        if conn is None:
            raise TransportError(f"not connected to {self.label}")
        conn.send(frame)
        self.sent = True
        self.frames_out += 1
        self.bytes_out += len(frame)
        inflight.append(message)

    def tell_nowait(self, path: str, head: bytes, message: Any) -> None:
        frame = head + self.node.codec.encode(message)
        if len(frame) > self.max_frame:
            self.node.too_large(frame, message, self.max_frame)
        if not self.up:
            raise TransportError(f"not connected to {self.label}: use await tell() to connect")
        if not self._room(path):
            raise MailboxFull(f"{WINDOW} messages to {self._url(path)} are already in flight")
        self.send(frame)
        self._inflight_to(path).append(message)

    async def ask(
        self,
        path: str,
        tail: bytes,
        what: str,
        message: Any,
        timeout: float | None,
        head: Callable[[int], bytes] = wire.ask_head,
    ) -> Any:
        """The hot path of a remote ask; `tail` is the frame's path part, `head`
        makes the frame's start from its request id (a traced ask's differs)."""
        node = self.node
        node.system.counters.asks += 1
        body = node.codec.encode(message)
        conn = self.conn
        if conn is None or conn.closed:
            await self.ensure_up()
            conn = self.conn
            assert conn is not None
        fut = node.loop.create_future()
        self._next_request = request = (self._next_request + 1) & 0xFFFFFFFF
        frame = head(request) + tail + body
        size = len(frame)
        if size > self.max_frame:
            node.too_large(frame, message, self.max_frame)
        deadline = None
        asks = self._asks
        try:
            inflight = self._inflight.get(path)
            if inflight is None:
                inflight = self._inflight_to(path)
            if len(inflight) >= WINDOW or path in self._credit_waiters:
                # One deadline from here: waiting for room in the window spends it too.
                if timeout is not None:
                    deadline = node.clock.expire(fut, timeout, what)
                inflight = await self._take_room(path, fut)
                if conn is not self.conn:
                    raise TransportError(f"connection to {self.label} lost")
            conn.send(frame)  # first: the bookkeeping below overlaps the peer's work
            self.sent = True
            self.frames_out += 1
            self.bytes_out += size
            asks[request] = fut
            inflight.append(None)
            if deadline is None and timeout is not None:
                deadline = node.clock.expire(fut, timeout, what)
            return await fut
        except AskTimeout:
            if deadline is not None and deadline.fut is None:  # ours fired (not the handler's)
                node.system.counters.ask_timeouts += 1
            raise
        finally:
            asks.pop(request, None)  # a late reply finds nothing and is dropped
            if deadline is not None:
                deadline.cancel()

    def ask_nowait(
        self,
        path: str,
        tail: bytes,
        message: Any,
        reply: Any,
        head: Callable[[int], bytes] = wire.ask_head,
    ) -> None:
        """Send an ask now without waiting for its reply: `reply` (a future-like
        object: `done`, `set_result`, `set_exception`) gets it, or the loss of
        the connection. `MailboxFull` when the window to `path` is full (then
        `await room(path)`), `TransportError` when not connected,
        `SerializationError` (nothing sent) for a message that cannot cross."""
        frame_body = self._encode(message)
        if not self.up:
            raise TransportError(f"not connected to {self.label}")
        if not self._room(path):
            raise MailboxFull(f"{WINDOW} messages to {self._url(path)} are already in flight")
        request = (self._next_request + 1) & 0xFFFFFFFF
        frame = head(request) + tail + frame_body
        if len(frame) > self.max_frame:
            self.node.too_large(frame, message, self.max_frame)
        self._next_request = request
        self.send(frame)
        self._asks[request] = reply
        self._inflight_to(path).append(None)

    async def room(self, path: str) -> None:
        """Until one more message to `path` fits in the window."""
        if not self._room(path):
            await self._take_room(path)

    async def request(self, kind: type[wire.Stop | wire.Query], *args: Any, timeout: float) -> Any:
        """A control request answered by a REPLY (stop, queries)."""
        await self.ensure_up()
        fut = asyncio.get_running_loop().create_future()
        self._next_request = request = (self._next_request + 1) & 0xFFFFFFFF
        self._asks[request] = fut
        try:
            self.send(kind(request, *args).frame(), urgent=True)
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._asks.pop(request, None)

    def watch(self, path: str, watcher: Watcher) -> None:
        if not self.up:
            watcher.deliver(Terminated(self.ref(path), "connection_lost"))
            return
        watching = self._watchers.setdefault(path, [])
        if watcher not in watching:
            watching.append(watcher)
        if len(watching) == 1:
            self.send(wire.Watch(path).frame(), urgent=True)

    # -- receiving -----------------------------------------------------------------

    def frame_received(self, frame: bytes) -> None:
        self.heard = True
        self.frames_in += 1
        self.bytes_in += len(frame)
        try:
            kind = frame[0]
            if kind == wire.TELL:
                self._on_tell(frame)
            elif kind == wire.ASK:
                self._on_ask(frame)
            elif kind == wire.REPLY:
                self._on_reply(frame)
            elif kind == wire.CREDIT:
                credit = _decode_credit(frame)
                self._on_credit(credit.path, credit.n)
            elif kind == wire.PING:
                self.flush_credit()  # a closing sender asks this way what was delivered
            elif kind == wire.WATCH:
                self._on_watch(wire.decode(wire.Watch, frame).path)
            elif kind == wire.TERMINATED:
                notice = wire.decode(wire.Terminated, frame)
                self._on_terminated(notice.path, notice.reason)
            elif kind == wire.STOP or kind == wire.QUERY:
                self.node.on_request(self, kind, frame)
            elif kind == wire.GOODBYE:
                reason = wire.decode(wire.Goodbye, frame).reason
                self.lost(f"the peer said goodbye ({reason})", close=True)
            elif kind == wire.TRACED:
                self._on_traced(frame)
            else:
                raise wire.ProtocolError(f"unknown frame kind 0x{kind:02x}")
        except Exception as exc:  # whatever a peer sends, it never reaches this node's loop
            reason = str(exc) if isinstance(exc, wire.ProtocolError) else repr(exc)
            self.node.log("node.refused", self, reason=reason)
            self.lost(f"protocol error: {reason}", close=True)

    def frames_done(self) -> None:
        """After a read: credit goes back where a batch of it is due, then the
        actors that got messages serve now, in this loop pass (credit first, so
        the sender's next batch is on its way while they serve)."""
        owed = self._owed
        if owed and self.up:
            due = [path for path, n in owed.items() if n >= CREDIT_BATCH]
            for path in due:
                self.send(wire.Credit(path, owed.pop(path)).frame(), urgent=True)
        wake = self._wake
        if wake:
            for ref in wake:
                ref.wake_now()
            wake.clear()
        if self._asked:
            self._asked = False
            self.check_unread()

    def check_unread(self) -> None:
        """Cut off a peer that asks and does not read its replies: what it leaves
        unread would otherwise grow this node without bound."""
        conn = self.conn
        if conn is not None and conn.backlog > max(MAX_UNREAD, 2 * self.max_frame):
            reason = f"it leaves over {max(MAX_UNREAD, 2 * self.max_frame)} bytes of replies unread"
            self.node.log("node.refused", self, reason=reason)
            self.lost(reason)
            conn.abort(reason)  # a close would first write out what it never reads

    def flush_credit(self) -> None:
        """Return all credit owed (the heartbeat does, so none is held back long)."""
        owed = self._owed
        if owed and self.up:
            for path, n in owed.items():
                self.send(wire.Credit(path, n).frame(), urgent=True)
            owed.clear()

    def connection_lost(self, reason: str | None) -> None:
        self.lost(reason or "closed")

    def _remember_path(self, raw: bytes, path: str) -> None:
        if len(self._paths) > 1024:
            self._paths.clear()  # a bound on what a peer can make us remember
        self._paths[raw] = path

    def _owe(self, path: str) -> None:
        self._owed[path] = self._owed.get(path, 0) + 1

    def _on_traced(self, frame: bytes) -> None:
        """A TELL or ASK with its sender's trace context: its span's parent when
        this system traces; ignored (not even decoded) when it does not."""
        context, inner = wire.untraced(frame)
        carrier = None
        if self._tracing is not None:
            carrier = wire.trace_context(context)
            if carrier is None:
                self._context_ignored(context)
        if inner[0] == wire.TELL:
            self._on_tell(inner, carrier)
        else:
            self._on_ask(inner, carrier)

    def _context_ignored(self, context: bytes) -> None:
        """A trace context that is not a map of str: the message is handled in a
        span that starts a trace (W3C's rule for a context that does not parse);
        logged once per connection."""
        if not self._ignored_context:
            self._ignored_context = True
            self.node.log(
                "node.trace_context_ignored",
                self,
                reason=f"not a MessagePack map of str to str: {context[:64]!r}",
            )

    def _on_tell(self, frame: bytes, carrier: dict[str, str] | None = None) -> None:
        size = int.from_bytes(frame[1:3], "big")
        path = self._paths.get(frame[3 : 3 + size])
        if path is None:
            path, body = wire.parse_tell(frame)
            self._remember_path(frame[3 : 3 + size], path)
        else:
            body = frame[3 + size :]
        try:
            message = self._decode(body)
        except SerializationError as exc:
            self._owe(path)
            self._undecodable(path, body, exc, tell=True)
            return
        if self._tracing is not None:
            message = self._tracing.incoming(message, carrier)
        self._deliver(path, message, None)

    def _undecodable(self, path: str, body: bytes, exc: SerializationError, tell: bool) -> None:
        """A message body that does not decode: a warning, and a dead letter for a tell
        (an ask's sender gets the error instead)."""
        system = self.node.system
        wire = body_wire_id(body)
        system.log_event(
            "message.undecodable",
            path,
            peer=self.address or self.name,
            wire_id=wire,
            error=str(exc),
            kind="tell" if tell else "ask",
        )
        if tell:
            system.dead_letter(path, body, "undecodable", message_type=f"wire id {wire}")

    def _on_ask(self, frame: bytes, carrier: dict[str, str] | None = None) -> None:
        size = int.from_bytes(frame[5:7], "big")
        path = self._paths.get(frame[7 : 7 + size])
        if path is None:
            request, path, body = wire.parse_ask(frame)
            self._remember_path(frame[7 : 7 + size], path)
        else:
            request = int.from_bytes(frame[1:5], "big")
            body = frame[7 + size :]
        self._asked = True
        try:
            message = self.node.decode(body)
        except SerializationError as exc:
            self._owe(path)
            self._undecodable(path, body, exc, tell=False)
            self._reply_error(request, exc)
            return
        if self._open_asks >= MAX_OPEN_ASKS:
            self._owe(path)
            self._reply_error(request, MailboxFull(f"{MAX_OPEN_ASKS} asks are already open"))
            return
        self._open_asks += 1
        if self._tracing is not None:
            message = self._tracing.incoming(message, carrier)
        self._deliver(path, message, _RemoteReply(self, request))  # type: ignore[arg-type]

    def _deliver(self, path: str, message: Any, reply: asyncio.Future[Any] | None) -> None:
        pending = self._inbound.get(path)
        if pending:  # others from this peer wait for room: keep their order
            if len(pending) >= WINDOW:
                raise wire.ProtocolError(f"more than {WINDOW} messages to {path} without credit")
            pending.append((message, reply))
            return
        target = self._targets.get(path)
        if target is not None:  # the fast path: a known actor with room
            offer, ref, quiet = target
            if offer((message, reply)):
                owed = self._owed
                owed[path] = owed.get(path, 0) + 1
                if quiet:
                    wake = self._wake
                    if not wake or wake[-1] is not ref:
                        wake.append(ref)
                return
        self._deliver_slowly(path, message, reply)

    def _deliver_slowly(self, path: str, message: Any, reply: asyncio.Future[Any] | None) -> None:
        """Find the actor again (it may be new at that path), then offer, else queue."""
        ref = self.node.system.lookup(path)
        if not isinstance(ref, LocalActorRef) or not ref.is_alive:
            self._targets.pop(path, None)
            self._owe(path)
            if reply is None:
                self.node.system.dead_letter(path, message, "stopped")
            else:
                reply.set_exception(ActorStopped(f"no actor at {self.node.address or ''}{path}"))
            return
        if len(self._targets) > 1024:
            self._targets.clear()  # a bound on what a peer can make us remember
        quiet = ref.on_own_loop()  # then its wake-up can wait for the end of the read
        offer = ref.mailbox.offer_quietly if quiet else ref.mailbox.offer
        self._targets[path] = (offer, ref, quiet)
        if offer((message, reply)):
            self._owe(path)
            if quiet:
                self._wake.append(ref)
            return
        self._inbound[path] = deque([(message, reply)])
        asyncio.get_running_loop().create_task(self._admit(path, ref))

    async def _admit(self, path: str, ref: LocalActorRef[Any]) -> None:
        """Put what waits for room into `ref`'s mailbox, in order, returning credit."""
        pending = self._inbound.get(path)
        while pending:
            message, reply = pending[0]
            await ref.put(message, reply)
            if self._inbound.get(path) is not pending:
                return  # the connection was lost meanwhile
            pending.popleft()
            self._owe(path)
            self.frames_done()
        self._inbound.pop(path, None)

    def answer(self, request: int, value: Any) -> None:
        """The handler of an ask from this peer returned `value`."""
        if self._open_asks > 0:
            self._open_asks -= 1
        self.reply_value(request, value)

    def answer_error(self, request: int, exc: BaseException) -> None:
        """The ask failed: raised by its handler (it has a traceback) or refused here."""
        self._open_asks = max(0, self._open_asks - 1)
        self._reply_error(request, exc, raised=exc.__traceback__ is not None)

    def reply_value(self, request: int, value: Any) -> None:
        """A REPLY with `value`; a value that cannot cross (not plain data, or
        over the peer's maximum frame) is a `SerializationError` reply instead."""
        conn = self.conn
        if conn is None or conn.closed:
            return
        try:
            frame = wire.reply(request, wire.OK, self._encode_value(value))
            if len(frame) > self.max_frame:
                raise SerializationError(
                    f"a reply of {type(value).__qualname__} takes {len(frame)} bytes on the "
                    f"wire, over the maximum frame of {self.max_frame}"
                )
        except SerializationError as error:
            self._reply_error(request, error)
            return
        conn.send(frame, True)
        self.sent = True
        self.frames_out += 1
        self.bytes_out += len(frame)

    def _reply_error(self, request: int, exc: BaseException, raised: bool = False) -> None:
        if not self.up:
            return
        # Room for the request id and status; encode_error never raises.
        room = self.max_frame - wire.REPLY_HEAD
        self.send(
            wire.reply(request, wire.FAILED, exceptions.encode_error(exc, raised, room)),
            urgent=True,
        )

    def _on_reply(self, frame: bytes) -> None:
        request, status, payload = wire.parse_reply(frame)
        fut = self._asks.pop(request, None)
        if fut is None or fut.done():
            return  # it timed out or was cancelled: the reply is dropped
        # resume: we run in a transport callback, so the asker's step can run now.
        if status == wire.OK:
            try:
                value = self._decode_value(payload)
            except SerializationError as exc:
                resume(fut, exc=exc)
            else:
                resume(fut, value)
        else:
            resume(fut, exc=exceptions.decode_error(payload))

    def _on_credit(self, path: str, n: int) -> None:
        inflight = self._inflight.get(path)
        if inflight is None:
            return
        for _ in range(min(n, len(inflight))):
            inflight.popleft()
        if self._credit_waiters.get(path):
            self._pass_room(path, n)
        settled = self._settled
        if settled is not None and not settled.done() and not self.tells_in_flight():
            settled.set_result(None)

    def _on_watch(self, path: str) -> None:
        if path in self._watched:
            return
        if self.node.watch_here(self, path):
            self._watched.add(path)
        else:
            self.send(wire.Terminated(path, "stopped").frame(), urgent=True)

    def unwatched(self, path: str) -> None:
        """Our actor at `path` stopped: the peer's watch on it is over."""
        self._watched.discard(path)

    def _on_terminated(self, path: str, reason: str) -> None:
        for watcher in self._watchers.pop(path, ()):
            watcher.deliver(Terminated(self.ref(path), reason))


class _RemoteReply:
    """Where the handler's outcome of an ask from a peer goes: straight onto the
    wire as a REPLY (the serving loop completes it as it would a future, with
    no extra loop pass for a done-callback)."""

    __slots__ = ("_done", "_loop", "_peer", "_request")

    def __init__(self, peer: Peer, request: int) -> None:
        self._peer = peer
        self._request = request
        self._loop = peer.node.loop
        self._done = False

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def done(self) -> bool:
        return self._done

    def cancelled(self) -> bool:
        return False

    # Called from the actor's serving loop: whatever goes wrong here must not
    # reach it (the actor would never serve again), so it closes the connection.

    def set_result(self, value: Any) -> None:
        if not self._done:
            self._done = True
            try:
                self._peer.answer(self._request, value)
            except Exception as exc:
                self._failed(exc)

    def set_exception(self, exc: BaseException) -> None:
        if not self._done:
            self._done = True
            try:
                self._peer.answer_error(self._request, exc)
            except Exception as error:
                self._failed(error)

    def _failed(self, exc: Exception) -> None:
        peer = self._peer
        peer.node.log("node.refused", peer, reason=f"cannot send a reply: {exc!r}")
        peer.lost(f"cannot send a reply: {exc!r}", close=True)

    def cancel(self) -> bool:
        self.set_exception(ActorStopped("the ask was cancelled on the remote node"))
        return True


class RemoteWatcher:
    """Watches one local actor for every peer that watches it: its death notice
    goes over the wire to each. One per watched actor (kept by the node), so
    peers that come and go leave nothing behind on the actor."""

    __slots__ = ("node", "path", "peers")

    def __init__(self, node: PeerHost, path: str) -> None:
        self.node = node
        self.path = path
        self.peers: set[Peer] = set()

    def deliver(self, message: Any) -> None:
        self.node.watch_over(self)
        peers, self.peers = self.peers, set()
        reason = message.reason if isinstance(message, Terminated) else "stopped"
        for peer in peers:
            peer.unwatched(self.path)
            if peer.up:
                peer.send(wire.Terminated(self.path, reason).frame(), urgent=True)


_decode_credit = wire.decoder(wire.Credit)
