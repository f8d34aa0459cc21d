"""Rules of unix:// socket files beyond the conformance suite (API.md section 6)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from mycelium_actors.errors import TransportError
from mycelium_actors.transports.stream import UNIX_PATH_MAX, UnixTransport

from .conftest import MAX, Adapter, Server


@pytest.fixture
def unix(tmp_path: Path) -> Adapter:
    return Adapter("unix", UnixTransport(), f"unix://{tmp_path}/node.sock", True)


async def test_the_socket_file_is_private_and_removed_at_close(unix: Adapter) -> None:
    path = unix.url.removeprefix("unix://")
    server = await Server.open(unix)
    assert os.stat(path).st_mode & 0o777 == 0o600
    await server.aclose()
    assert not os.path.exists(path)


async def test_a_stale_socket_file_is_replaced(unix: Adapter) -> None:
    path = unix.url.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX) as dead:  # bound, then gone: nothing listens
        dead.bind(path)
    server = await Server.open(unix)
    client = await unix.transport.connect(unix.url, max_frame=MAX)
    client.close()
    (await server.accept()).close()
    await server.aclose()


async def test_a_file_that_is_not_a_socket_is_left_alone(unix: Adapter) -> None:
    path = Path(unix.url.removeprefix("unix://"))
    path.write_text("precious")
    with pytest.raises(TransportError, match="exists and is not a socket"):
        await Server.open(unix)
    assert path.read_text() == "precious"


@pytest.mark.parametrize("action", ["listen", "connect"])
async def test_a_path_too_long_for_the_os_names_the_limit_and_the_path(
    tmp_path: Path, action: str
) -> None:
    path = f"{tmp_path}/{'x' * UNIX_PATH_MAX}.sock"
    url = f"unix://{path}"
    transport = UnixTransport()
    with pytest.raises(TransportError, match=f"limit of {UNIX_PATH_MAX}") as caught:
        if action == "listen":
            await transport.listen(url, lambda _: None, max_frame=MAX)
        else:
            await transport.connect(url, max_frame=MAX)
    assert path in str(caught.value)
