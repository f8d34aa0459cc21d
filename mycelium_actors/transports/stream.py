"""`unix://` and `tcp://`: frames over stream sockets, on asyncio Protocols.

A frame is a 4-byte big-endian length, then that many bytes. Protocols, not
asyncio streams or anyio: they cost one callback per read and no task or
future per frame (measured in docs/wire.md).

Receiving: a read is parsed from the bytes the loop gives (the common case:
whole frames per read): each length is unpacked in place and each frame is
one slice of those bytes; only a partial frame's bytes are kept, in one
bytearray, joined with the next read. A declared length above `max_frame`
closes the connection before its body is buffered.

Sending: the first frame after a read (or after the queue was last written)
goes to `transport.write` at once. Frames sent after it before the next read,
or while the transport has paused us (its buffer is over its high-water mark),
wait in a user-space queue and go out as one joined write, scheduled once
(`call_soon`): so a burst costs one write per pass of the loop, a request
answered by a reply costs no extra loop pass, and a frame waits at most one
pass. Urgent frames are joined before the others. That queue is not bounded
here: the node layer bounds what it sends with credits.

TLS (`tcp://` with `ssl=`): asyncio's own TLS layer under the same Protocol;
a connection reaches the node only once its TLS handshake has succeeded
within `tls_handshake_timeout`. A plaintext peer of a TLS listener is closed
by the TLS layer before it sent a byte of ours, so a plaintext client that
sees its connection closed before anything arrived says that this may be why;
a plaintext listener that reads a TLS record where a frame length was due
says so too. `unix://` refuses `ssl=` to listen and ignores it to connect (a
socket file of mode 0600 is its boundary).
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl as _ssl
import stat
import struct
import sys
from collections.abc import Callable
from typing import cast

from .. import logs
from ..errors import TransportError
from .base import (
    PREFIX,
    Connection,
    FrameSink,
    Listener,
    Transport,
    check_max_frame,
    no_tls,
    oversize,
)
from .urls import split_simple, split_unix, tcp_endpoint, tcp_url, unix_path

_LENGTH = struct.Struct(">I").unpack_from  # a frame's length prefix (PREFIX bytes)

# sun_path holds 108 bytes on Linux, 104 on the BSDs and macOS, with a final NUL.
UNIX_PATH_MAX = 107 if sys.platform.startswith("linux") else 103
Accept = Callable[[Connection], None]

#: How long a TLS handshake may take, on either side, before the connection is
#: dropped (asyncio's default is 60 s).
TLS_HANDSHAKE_TIMEOUT = 5.0
#: The first byte of a TLS handshake record, where a plaintext frame's length was due.
TLS_RECORD = 0x16
#: A tcp client's reason when the peer closed before sending anything: without
#: TLS, and with it (TLS 1.3 finishes the client's handshake before the server
#: checks the client's certificate: a refusal arrives as a close).
SILENT_CLOSE = (
    "closed by the peer before it sent anything (a node that listens with TLS "
    "closes a plaintext connection so: connect with ssl=)"
)
SILENT_TLS_CLOSE = (
    "closed by the peer before it sent anything (a node with mutual TLS closes a "
    "connection so when it does not accept the client certificate, or gets none)"
)


class StreamConnection(asyncio.Protocol, Connection):
    """One socket connection: an asyncio Protocol that is also our Connection."""

    def __init__(
        self,
        max_frame: int,
        coalesce: bool,
        accept: Accept | None = None,
        silent_close: str = "closed by the peer",
    ) -> None:
        self._max_frame = max_frame
        self._max_in = max_frame  # what we read; lower during a handshake
        self._coalesce = coalesce
        self._accept = accept
        self._silent_close = silent_close  # the reason when the peer closed before a byte
        self._heard = False  # a byte has arrived
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._sink: FrameSink | None = None
        self._buffer = bytearray()  # the start of a frame not fully read yet
        self._urgent: list[bytes] = []  # prefixes and frames, waiting for the next write
        self._normal: list[bytes] = []
        self._queued = 0  # bytes in _urgent and _normal
        self._flush_scheduled = False
        self._fresh = True  # nothing written since the last read or flush: write at once
        self._paused = False
        self._closed = False
        self._why: tuple[str | None] | None = None  # set when this side closes
        self._lost: tuple[str | None] | None = None  # the reason, until a sink takes it

    # -- Connection ---------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self, sink: FrameSink) -> None:
        self._sink = sink
        if self._lost is not None:
            self._loop.call_soon(sink.connection_lost, self._lost[0])
        elif self._transport is not None:
            self._transport.resume_reading()
            if self._buffer:  # bytes that came before start(): see data_received
                self._loop.call_soon(self._replay)

    def send(self, frame: bytes, urgent: bool = False) -> None:
        if self._closed:
            raise TransportError(f"connection to {self.peer} is closed")
        size = len(frame)
        if size > self._max_frame:
            raise TransportError(oversize(size, self._max_frame))
        header = size.to_bytes(PREFIX, "big")
        if self._fresh and not self._paused:
            assert self._transport is not None
            self._transport.write(header + frame)
            self._fresh = not self._coalesce
            return
        queue = self._urgent if urgent else self._normal
        queue.append(header)
        queue.append(frame)
        self._queued += size
        if not self._flush_scheduled and not self._paused:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def close(self, reason: str | None = None) -> None:
        self._shut((None,))

    def abort(self, reason: str | None = None) -> None:
        self._urgent.clear()
        self._normal.clear()
        self._queued = 0
        self._shut((None,))
        if self._transport is not None:
            self._transport.abort()  # what the transport buffered goes too

    def limit_incoming(self, max_frame: int) -> None:
        self._max_in = min(max_frame, self._max_frame)

    @property
    def backlog(self) -> int:
        transport = self._transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return self._queued + buffered

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not isinstance(asyncio.Transport): uvloop's transports have its methods
        # without deriving from it.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peername = transport.get_extra_info("peername")
        self.source = peername[0] if isinstance(peername, tuple) else "unix"
        if not self.peer:
            self.peer = str(peername or "a unix socket client")
        transport.pause_reading()  # frames wait until start()
        # uvloop starts reading once connection_made returns, whatever it did
        # (asyncio honours the pause): pause again then, unless start() came first.
        self._loop.call_soon(self._hold)
        if self._accept is not None:
            self._accept(self)

    def data_received(self, data: bytes) -> None:
        sink = self._sink
        if self._closed:
            return
        if sink is None:
            # Before start(): on uvloop, what it read before _hold() paused it
            # (asyncio reads nothing): keep it for start() to replay.
            self._buffer += data
            return
        # The loop has moved on since our last write: a reply to what we just
        # read goes out at once, a burst of them is queued behind it.
        self._fresh = not self._flush_scheduled
        buffer = self._buffer
        if buffer:  # a frame's start came in an earlier read: parse the bytes joined
            buffer += data
            source = bytes(buffer)
            buffer.clear()
        else:
            source = bytes(data)  # (a no-op for bytes, what the loops give)
        # Frames are sliced from the bytes read (one copy each), lengths read in place.
        end = len(source)
        pos = 0
        delivered = False
        while end - pos >= PREFIX and not self._closed:
            (size,) = _LENGTH(source, pos)
            if size > self._max_in:  # read each time: a handshake frame may raise it
                self._refuse(self._oversize(size, pos))
                break
            stop = pos + PREFIX + size
            if stop > end:
                break
            sink.frame_received(source[pos + PREFIX : stop])
            delivered = True
            pos = stop
        if pos < end and not self._closed:
            with memoryview(source) as view:
                buffer += view[pos:]
        self._heard = True
        if delivered:
            sink.frames_done()

    def eof_received(self) -> bool:
        return False  # no half-open connections: the transport closes itself

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._urgent or self._normal:
            self._write_queued()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._urgent.clear()
        self._normal.clear()
        self._queued = 0
        self._buffer.clear()
        if self._why is not None:
            reason = self._why[0]
        elif exc is not None:
            reason = f"connection lost: {exc}"
        else:
            reason = "closed by the peer" if self._heard else self._silent_close
        self._lost = (reason,)
        if self._sink is not None:
            self._sink.connection_lost(reason)

    # -- inside -------------------------------------------------------------------

    def _flush(self) -> None:
        """Write what was queued since the last write, in one call."""
        self._flush_scheduled = False
        if (self._urgent or self._normal) and not self._paused and not self._closed:
            self._write_queued()
            self._fresh = True

    def _write_queued(self) -> None:
        assert self._transport is not None
        parts = self._urgent
        parts += self._normal
        self._transport.write(b"".join(parts))
        self._urgent = []
        self._normal = []
        self._queued = 0

    def _hold(self) -> None:
        if self._sink is None and self._transport is not None:
            self._transport.pause_reading()  # a no-op if it is not reading or closing

    def _replay(self) -> None:
        if self._buffer and not self._closed:
            self.data_received(b"")

    def _oversize(self, size: int, pos: int) -> str:
        if not self._heard and pos == 0 and size >> 24 == TLS_RECORD:
            return "the peer speaks TLS: this node listens without ssl= (or it is not a node)"
        return oversize(size, self._max_in)

    def _refuse(self, reason: str) -> None:
        logs.get_logger().warning("transport.frame_refused", peer=self.peer, reason=reason)
        self._shut((reason,))

    def _shut(self, why: tuple[str | None]) -> None:
        """Close from this side; what is queued is written first, then the socket closes."""
        if self._closed:
            return
        self._closed = True
        self._why = why
        if self._transport is not None:
            if self._urgent or self._normal:
                self._write_queued()  # the transport writes out its buffer before closing
            self._transport.close()


class StreamListener(Listener):
    """An asyncio server; for a unix socket, the socket file it created."""

    def __init__(
        self, address: str, server: asyncio.Server, socket_file: tuple[str, int, int] | None
    ) -> None:
        self.address = address
        self._server = server
        self._socket_file = socket_file  # (path, st_dev, st_ino)

    async def aclose(self) -> None:
        # Server.wait_closed() would wait for every accepted connection (3.12+):
        # those belong to the node, which closes them itself.
        self._server.close()
        if self._socket_file is not None:
            path, dev, ino = self._socket_file
            try:
                found = os.stat(path)
                if (found.st_dev, found.st_ino) == (dev, ino):  # not a later listener's
                    os.unlink(path)
            except FileNotFoundError:
                pass


class StreamTransport(Transport):
    """What the unix and tcp adapters share; `coalesce=False` writes every frame
    at once (for measuring what coalescing buys)."""

    def __init__(self, *, coalesce: bool = True) -> None:
        self.coalesce = coalesce

    def _connection(self, max_frame: int, accept: Accept | None = None) -> StreamConnection:
        return StreamConnection(max_frame, self.coalesce, accept)

    @staticmethod
    def _result(connection: asyncio.BaseProtocol, node: str) -> Connection:
        assert isinstance(connection, StreamConnection)
        connection.peer = node
        return connection


class TcpTransport(StreamTransport):
    """`tcp://host:port`, TCP_NODELAY on; a server without a host binds to loopback.

    With `ssl=`, TLS: a connection whose TLS handshake does not finish within
    `tls_handshake_timeout` seconds is dropped (`connect` raises).
    """

    def __init__(
        self, *, coalesce: bool = True, tls_handshake_timeout: float = TLS_HANDSHAKE_TIMEOUT
    ) -> None:
        super().__init__(coalesce=coalesce)
        self.tls_handshake_timeout = tls_handshake_timeout

    async def connect(
        self, node_url: str, *, max_frame: int, ssl: _ssl.SSLContext | None = None
    ) -> Connection:
        check_max_frame(max_frame)
        host, port = tcp_endpoint(node_url, listening=False)
        node = tcp_url(host, port)
        loop = asyncio.get_running_loop()
        silent = SILENT_CLOSE if ssl is None else SILENT_TLS_CLOSE
        try:
            _, connection = await loop.create_connection(
                lambda: StreamConnection(max_frame, self.coalesce, None, silent),
                host,
                port,
                ssl=ssl,
                ssl_handshake_timeout=self._tls_timeout(ssl),
            )
        except OSError as exc:
            what = _describe_tls(exc) if ssl is not None else _describe(exc)
            raise TransportError(f"cannot connect to {node}: {what}") from exc
        return self._result(connection, node)

    async def listen(
        self, node_url: str, accept: Accept, *, max_frame: int, ssl: _ssl.SSLContext | None = None
    ) -> Listener:
        check_max_frame(max_frame)
        host, port = tcp_endpoint(node_url, listening=True)
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                lambda: self._connection(max_frame, accept),
                host,
                port,
                ssl=ssl,
                ssl_handshake_timeout=self._tls_timeout(ssl),
            )
        except OSError as exc:
            raise TransportError(
                f"cannot listen at {tcp_url(host, port)}: {_describe(exc)}"
            ) from exc
        bound = server.sockets[0].getsockname()[1]
        return StreamListener(tcp_url(host, bound), server, None)

    def split(self, url: str) -> tuple[str, str]:
        return split_simple("tcp", url)

    def _tls_timeout(self, ssl: _ssl.SSLContext | None) -> float | None:
        return None if ssl is None else self.tls_handshake_timeout  # asyncio: only with ssl


class UnixTransport(StreamTransport):
    """`unix:///path/node.sock`: socket files of mode 0600, stale ones replaced."""

    async def connect(
        self, node_url: str, *, max_frame: int, ssl: _ssl.SSLContext | None = None
    ) -> Connection:
        """`ssl` is ignored: a unix node never listens with TLS (see `listen`)."""
        check_max_frame(max_frame)
        path = _checked_path(node_url)
        loop = asyncio.get_running_loop()
        try:
            _, connection = await loop.create_unix_connection(
                lambda: self._connection(max_frame), path
            )
        except OSError as exc:
            raise TransportError(f"cannot connect to {node_url}: {_describe(exc)}") from exc
        return self._result(connection, node_url)

    async def listen(
        self, node_url: str, accept: Accept, *, max_frame: int, ssl: _ssl.SSLContext | None = None
    ) -> Listener:
        """`ssl` is refused (`TransportError`): the socket file's mode 0600 keeps
        other users out, and nothing crosses a machine."""
        check_max_frame(max_frame)
        if ssl is not None:
            raise TransportError(no_tls(node_url, "a unix socket file of mode 0600 is private"))
        path = _checked_path(node_url)
        sock, ident = _bind_private(path, node_url)
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_unix_server(
                lambda: self._connection(max_frame, accept), sock=sock
            )
        except OSError as exc:
            sock.close()
            raise TransportError(f"cannot listen at {node_url}: {_describe(exc)}") from exc
        return StreamListener(node_url, server, (path, *ident))

    def split(self, url: str) -> tuple[str, str]:
        return split_unix(url)


def _checked_path(node_url: str) -> str:
    path = unix_path(node_url)
    if len(os.fsencode(path)) > UNIX_PATH_MAX:
        raise TransportError(
            f"unix socket path of {len(os.fsencode(path))} bytes is longer than this "
            f"system's limit of {UNIX_PATH_MAX}: {path}"
        )
    return path


def _bind_private(path: str, node_url: str) -> tuple[socket.socket, tuple[int, int]]:
    """A unix socket bound at `path` with mode 0600, not listening yet; a stale
    socket file is replaced, a live one is an error."""
    _clear_stale(path, node_url)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        # Nobody can connect before listen(), so chmod here leaves no window,
        # and unlike a umask it touches no other thread's files.
        os.chmod(path, 0o600)
        found = os.stat(path)
    except OSError as exc:
        sock.close()
        raise TransportError(f"cannot listen at {node_url}: {_describe(exc)}") from exc
    return sock, (found.st_dev, found.st_ino)


def _clear_stale(path: str, node_url: str) -> None:
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise TransportError(f"cannot listen at {node_url}: {_describe(exc)}") from exc
    if not stat.S_ISSOCK(found.st_mode):
        raise TransportError(f"cannot listen at {node_url}: {path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)  # a full backlog must not block us: it means live too
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)  # stale: its process is gone
            return
        except BlockingIOError:
            pass
        except OSError as exc:
            raise TransportError(f"cannot listen at {node_url}: {_describe(exc)}") from exc
    raise TransportError(f"cannot listen at {node_url}: address in use")


def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _describe_tls(exc: OSError) -> str:
    """A failed TLS connect, said plainly (ssl's errors carry their reason in
    `verify_message`/`reason`; a node without TLS resets or closes)."""
    if isinstance(exc, _ssl.SSLCertVerificationError):
        return f"TLS: the node's certificate was refused: {exc.verify_message or exc.reason}"
    if isinstance(exc, _ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "TLS handshake failed: the node closed the connection (does it listen with TLS?)"
    if isinstance(exc, ConnectionAbortedError | TimeoutError):  # the handshake timeout
        return f"TLS handshake failed: {exc}"
    return _describe(exc)
