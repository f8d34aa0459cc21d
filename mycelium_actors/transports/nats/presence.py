"""Cluster presence over NATS: which nodes are on the cluster right now.

Every listening node subscribes to one subject, `mycelium.presence`, and
publishes three kinds of message there, each its own address behind a kind
byte: a *join* when it has claimed its name (every node that hears it answers
the joiner with a beat, so a newcomer learns the cluster at once), a *beat*
whenever its node's heartbeat timer fires (about four per heartbeat timeout),
and a *leave* when it closes. A node not heard from within the heartbeat
timeout is gone, whether it left, died or lost the server: `members()` forgets
it. Nothing here opens connections; the node does that when it needs one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ... import logs

SUBJECT = "mycelium.presence"
_JOIN, _BEAT, _LEAVE = b"j", b"b", b"l"

Post = Callable[[str, bytes, str], None]


class Presence:
    """One listening node's view of the cluster's nodes, and its own voice in it."""

    def __init__(
        self, nc: Client, post: Post, address: str, is_node: Callable[[str], bool]
    ) -> None:
        self._nc = nc
        self._is_node = is_node  # the adapter's rule for a node URL
        self._post = post  # publishes in turn with the node's frames
        self._address = address
        self._me = address.encode()
        self._heard: dict[str, float] = {}  # address -> loop time last heard
        self._subs: list[Subscription] = []
        self._loop = asyncio.get_running_loop()

    async def join(self) -> None:
        """Listen to the cluster, then say we are here (answers come to us alone)."""
        nc = self._nc
        self._subs.append(await nc.subscribe(SUBJECT, cb=self._on_message))
        answers = await nc.subscribe(nc.new_inbox(), cb=self._on_message)
        self._subs.append(answers)
        self._post(SUBJECT, _JOIN + self._me, answers.subject)

    def beat(self) -> None:
        self._post(SUBJECT, _BEAT + self._me, "")

    async def leave(self) -> None:
        self._post(SUBJECT, _LEAVE + self._me, "")
        subs, self._subs = self._subs, []
        for sub in subs:
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                pass  # the client is closed or reconnecting: the subscription goes with it

    def members(self, max_age: float) -> list[str]:
        """Addresses of the other nodes heard from within `max_age` seconds."""
        oldest = self._loop.time() - max_age
        for address in [a for a, heard in self._heard.items() if heard < oldest]:
            del self._heard[address]
        return list(self._heard)

    async def _on_message(self, msg: Msg) -> None:
        kind, address = msg.data[:1], msg.data[1:].decode(errors="replace")
        if address == self._address or not self._is_node(address):
            return  # our own voice, or not a node's
        if kind == _LEAVE:
            self._heard.pop(address, None)
            return
        if kind not in (_JOIN, _BEAT):
            logs.get_logger().info("transport.presence_ignored", kind=repr(kind))
            return
        self._heard[address] = self._loop.time()
        if kind == _JOIN and msg.reply:
            self._post(msg.reply, _BEAT + self._me, "")
