"""One NATS client per server and event loop, shared by every connection and
listener of this process on that loop: the inbox subscription, the sender
task that publishes in order, and the client's options from the environment."""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ... import logs
from ...errors import TransportError
from .connection import TAG, NatsConnection, describe

#: Seconds between attempts to reach a lost server (nats-py retries forever).
RECONNECT_WAIT = 0.5
#: Attempts to reach the server when a client first connects, after the first:
#: a server that is not there is an error at once, not an endless wait.
CONNECT_RETRIES = 1
#: How long closing a client whose connect failed may take (see `close_failed`).
CLOSE_TIMEOUT = 2.0
CONN_SUBJECT = "mycelium.conn."
# What nats-py reports when the server goes away (the disconnect follows).
_LOSS = (OSError, nats.errors.UnexpectedEOF, nats.errors.StaleConnectionError)


class Hub:
    """One NATS client: the inbox subscription of its connections and their sender."""

    def __init__(
        self, server: str, forget: Callable[[Hub], None], closed: Callable[[Hub], None]
    ) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self._on_closed = closed
        self.nc = Client()
        self.prefix = CONN_SUBJECT + secrets.token_hex(8)
        self.users = 0
        self.gone = False
        self.lost = False  # between the disconnect and the reconnect: errors are expected
        self._forget = forget
        self._conns: dict[str, NatsConnection] = {}
        self._ids = itertools.count(1)
        self._sub: Subscription | None = None
        self._touched: dict[NatsConnection, None] = {}  # got frames since the last frames_done
        self._ready: deque[NatsConnection | Notice] = deque()  # have something to publish
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._pump: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self.max_payload = 0
        self._last_error: BaseException | None = None

    async def open(self, userinfo: str, extra: dict[str, Any]) -> None:
        options = options_from_environment(userinfo)
        options.update(extra)
        try:
            # A bounded first connect: with allow_reconnect=False nats-py still
            # tries one unreachable server forever unless max_reconnect_attempts
            # bounds it (2.16: `_select_next_server` loops on its own).
            await self.nc.connect(
                servers=[f"nats://{self.server}"],
                allow_reconnect=False,
                max_reconnect_attempts=CONNECT_RETRIES,
                reconnect_time_wait=RECONNECT_WAIT,  # type: ignore[arg-type]
                pending_size=0,  # no reconnect buffer: a lost server loses the frames
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
                error_cb=self._error,
                **options,
            )
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            await close_failed(self.nc)
            cause = self._last_error if isinstance(exc, nats.errors.NoServersError) else exc
            raise TransportError(
                f"cannot reach the NATS server {self.server}: {describe(cause or exc)}"
            ) from exc
        # Our bet on nats-py 2.x: `options` is read at each disconnect, so from
        # now on the client reconnects by itself, forever. Without the keys, a
        # lost client stays closed and the next connect or listen opens a new one.
        if "allow_reconnect" in self.nc.options:
            self.nc.options["allow_reconnect"] = True
        if "max_reconnect_attempts" in self.nc.options:
            self.nc.options["max_reconnect_attempts"] = -1
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

    def want_send(self, conn: NatsConnection | Notice) -> None:
        self._ready.append(conn)
        self._idle.clear()
        self._wake.set()

    def post(self, subject: str, data: bytes, reply: str = "") -> None:
        """Publish a message of our own (presence), in turn with the frames."""
        if not self.gone:
            self.want_send(Notice(self, subject, data, reply))

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
            await self.nc.close()
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
        if not self.lost and not self.gone and not self.nc.is_closed:
            # Once: nats-py retries every RECONNECT_WAIT, and each failure is expected now.
            self.lost = True
            logs.get_logger().warning(
                "transport.nats_lost",
                server=self.server,
                error=None if self._last_error is None else repr(self._last_error),
                retry_every=RECONNECT_WAIT,
            )
        for conn in list(self._conns.values()):
            conn.lost(f"lost the NATS server {self.server}")

    async def _reconnected(self) -> None:
        if self.lost:
            self.lost = False
            logs.get_logger().info("transport.nats_back", server=self.server)

    async def _error(self, exc: Exception) -> None:
        self._last_error = exc
        if isinstance(exc, _LOSS):  # said once by transport.nats_lost, which names it
            logs.get_logger().debug("transport.nats_error", error=repr(exc), server=self.server)
        else:
            self.log_error(exc, server=self.server)

    def log_error(self, exc: BaseException, **fields: Any) -> None:
        """A NATS error: at info, or at debug while the server is known to be lost."""
        log = logs.get_logger()
        (log.debug if self.lost else log.info)("transport.nats_error", error=repr(exc), **fields)

    @property
    def reachable(self) -> bool:
        """False while the client has lost its server (it reconnects by itself)."""
        return bool(self.nc.is_connected)

    def lost_server(self) -> str:
        return f"lost the NATS server {self.server} (reconnecting)"


class Notice:
    """One message to publish that belongs to no connection."""

    __slots__ = ("data", "hub", "reply", "subject")

    def __init__(self, hub: Hub, subject: str, data: bytes, reply: str) -> None:
        self.hub, self.subject, self.data, self.reply = hub, subject, data, reply

    async def publish(self, nc: Client) -> None:
        try:
            await nc.publish(self.subject, self.data, reply=self.reply)
        except (nats.errors.Error, OSError) as exc:  # lost: the next beat will do
            self.hub.log_error(exc, subject=self.subject)


def options_from_environment(userinfo: str) -> dict[str, Any]:
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


async def close_failed(nc: Client) -> None:
    """`nc.close()` after a failed connect, bounded: after a failed TLS
    handshake nats-py waits forever for a socket that asyncio already closed
    (start_tls swapped its protocol). A connected client closes unbounded:
    cancelling its close could leave its socket open."""
    try:
        await asyncio.wait_for(nc.close(), CLOSE_TIMEOUT)
    except TimeoutError:
        logs.get_logger().info("transport.nats_close_timeout", timeout=CLOSE_TIMEOUT)
