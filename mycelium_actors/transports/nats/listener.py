"""A node name on the NATS cluster: claiming it, answering opens, presence."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ...errors import TransportError
from ..base import Connection, Listener
from .hub import CONN_SUBJECT, Hub
from .presence import Presence
from .urls import is_node_url

#: How long a new listener waits to hear a rival claiming the same name.
CLAIM_WINDOW = 0.1
#: How long closing a listener waits for the server to confirm its name is free.
RELEASE_TIMEOUT = 2  # seconds (nats-py takes an int)
NODE_SUBJECT = "mycelium.node."
# Requests on a node subject and their answers: the first byte says which.
OPEN, PROBE, ACCEPTED, REFUSED = b"o", b"p", b"a", b"r"
_HELD, _CLAIMING = b"h", b"c"

Accept = Callable[[Connection], None]


class NatsListener(Listener):
    """A node name on the NATS server: answers opens and probes on its subject."""

    def __init__(self, hub: Hub, name: str, accept: Accept, max_frame: int) -> None:
        self.address = f"nats://{hub.server}/{name}"
        self.frame_limit = hub.max_payload
        self.max_frame = min(max_frame, hub.max_payload)
        self.name = name
        self.node_name = name
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
            await nc.request(self._subject, PROBE + self._claim.encode(), CLAIM_WINDOW)
        except nats.errors.NoRespondersError:
            pass  # nobody holds it
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            raise self._in_use() from exc  # someone is subscribed but silent: still taken
        else:
            raise self._in_use()
        self._sub = await nc.subscribe(self._subject, cb=self._on_request)
        rivals = await nc.subscribe(nc.new_inbox(), cb=self._on_rival)
        try:
            await nc.publish(self._subject, PROBE + self._claim.encode(), reply=rivals.subject)
            # Say we join now: the other nodes answer within the window, so
            # discovery covers them as soon as `listen` returns.
            await self._presence.join()
            await asyncio.sleep(CLAIM_WINDOW)  # a real-time window: rivals answer within it
        finally:
            await rivals.unsubscribe()
        if self._beaten:
            await self._presence.leave()
            raise self._in_use()
        self._held = True

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
                # The name is free once this returns: the server has dropped the
                # subscription (a probe from another client finds no one).
                await self._hub.nc.flush(RELEASE_TIMEOUT)
            except (nats.errors.Error, TimeoutError):
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
            if kind == PROBE:
                claim = body.decode(errors="replace")
                if claim == self._claim:
                    return  # our own announcement
                if not self._held and claim < self._claim:
                    self._beaten = True
                await nc.publish(
                    msg.reply, (_HELD if self._held else _CLAIMING) + self._claim.encode()
                )
            elif kind == OPEN:
                await self._open(msg.reply, body.decode(errors="replace"))
        except (nats.errors.Error, OSError) as exc:
            self._hub.log_error(exc, node=self.address)

    async def _open(self, reply: str, their_inbox: str) -> None:
        nc = self._hub.nc
        if self._closed or not self._held or not their_inbox.startswith(CONN_SUBJECT):
            await nc.publish(reply, REFUSED + b"not accepting connections")
            return
        hub = self._hub
        hub.users += 1
        conn = hub.new_connection(
            f"{self.address} client {their_inbox}", self.max_frame, their_inbox
        )
        await nc.publish(reply, ACCEPTED + conn.inbox.encode())
        self._accept(conn)
