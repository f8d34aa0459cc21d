"""The tcp adapter's TLS (`ssl=`): a handshake that does not finish is dropped in
time, on either side; what is refused is never handed to the node."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from certs import Certs

from mycelium_actors import TransportError
from mycelium_actors.transports import TcpTransport

from .conftest import WAIT, Adapter, Server

BOUND = 0.3  # the TLS handshake timeout under test; a silent peer takes no longer


@pytest.fixture(scope="module")
def certs() -> Certs:
    return Certs()


@pytest.fixture
def tcp() -> Adapter:
    return Adapter("tcp", TcpTransport(tls_handshake_timeout=BOUND), "tcp://127.0.0.1:0", True)


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[str, int]]:
    """A TCP server that accepts and never says a word."""
    writers: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda _, w: writers.append(w), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[:2]
    for writer in writers:
        writer.close()
    server.close()


async def test_a_client_that_never_starts_tls_is_dropped(tcp: Adapter, certs: Certs) -> None:
    server = Server()
    server.listener = await tcp.transport.listen(
        tcp.url, server.accepted.put_nowait, max_frame=1024, ssl=certs.server_context()
    )
    host, port = server.address.removeprefix("tcp://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(1), WAIT) == b""  # closed by the server
    assert time.monotonic() - started < 5 * BOUND + 1.0
    assert server.accepted.empty()  # the node never saw it
    writer.close()
    await server.aclose()


async def test_connecting_to_a_peer_that_never_answers_tls_fails_in_time(
    tcp: Adapter, certs: Certs, silent_server: tuple[str, int]
) -> None:
    host, port = silent_server
    started = time.monotonic()
    with pytest.raises(TransportError, match="TLS handshake failed"):
        await tcp.transport.connect(
            f"tcp://{host}:{port}", max_frame=1024, ssl=certs.client_context()
        )
    assert time.monotonic() - started < 5 * BOUND + 1.0
