"""One end of a node connection over NATS: our inbox subject and the peer's."""

from __future__ import annotations

import asyncio
import hmac
from collections import deque
from typing import TYPE_CHECKING

import nats.errors
from nats.aio.client import Client

from ... import logs
from ...errors import TransportError
from ..base import Connection, FrameSink, oversize

if TYPE_CHECKING:
    from .hub import Hub

#: Bytes of the signature after each frame of a protected connection.
TAG = 16
URGENT, CLOSE = "u", "x"
_SIGNED_KIND = {"": b"", URGENT: b"u", CLOSE: b"x"}  # a message's kind, as signed


class NatsConnection(Connection):
    """One end of a connection: our inbox subject and the peer's."""

    def __init__(self, hub: Hub, key: str, inbox: str, peer: str, max_frame: int) -> None:
        self.peer = peer
        self.key = key
        self.inbox = inbox
        self.target = ""  # the peer's inbox
        self.max_frame = max_frame
        self._max_in = max_frame
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
        kind = URGENT if urgent else None
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

    def limit_incoming(self, max_frame: int) -> None:
        self._max_in = min(max_frame, self.max_frame)

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
        if kind == CLOSE:
            reason = data.decode(errors="replace")
            self.lost(f"closed by the peer: {reason}" if reason else "closed by the peer")
        elif self._closed:
            pass
        elif self._sink is None or self._backlog:
            if kind == URGENT:
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
                await nc.publish(self.target, farewell, reply=CLOSE)
        except (nats.errors.Error, OSError) as exc:
            if not self._hub.reachable:  # nats-py says "outbound buffer limit exceeded"
                self.lost(self._hub.lost_server())
            else:
                self.lost(f"cannot publish to the NATS server: {describe(exc)}")
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
        _DROPS.dropped(self.peer, self._loop.time())
        return None

    def _say_farewell(self, reason: str) -> None:
        """After what is queued, the close message goes out (signed if protected)."""
        farewell = reason.encode()
        if self._send_key is not None:
            farewell = self._sign(farewell, CLOSE)
        self._farewell = farewell
        self._queue()

    def _queue(self) -> None:
        if not self._queued:
            self._queued = True
            self._hub.want_send(self)

    def _deliver(self, sink: FrameSink, data: bytes) -> bool:
        """Hand `data` to `sink`; False if it is too large (the connection closes)."""
        if len(data) > self._max_in:
            reason = oversize(len(data), self._max_in)
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


class DropLog:
    """Unsigned frames are logged at a bounded rate (anyone on the server can
    publish them): at most `limit` warnings per `interval` seconds, then one
    `transport.frames_dropped` line with how many went unlogged."""

    def __init__(self, limit: int = 10, interval: float = 10.0) -> None:
        self.limit, self.interval = limit, interval
        self.total = 0  # every frame dropped, logged or not
        self._window = float("-inf")
        self._logged = self._quiet = 0

    def dropped(self, peer: str, now: float) -> None:
        self.total += 1
        log = logs.get_logger()
        if now - self._window >= self.interval:
            if self._quiet:
                log.warning("transport.frames_dropped", count=self._quiet, seconds=self.interval)
            self._window, self._logged, self._quiet = now, 0, 0
        if self._logged < self.limit:
            self._logged += 1
            log.warning("transport.frame_dropped", peer=peer, reason="not signed by the peer")
        else:
            self._quiet += 1


_DROPS = DropLog()


def describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
