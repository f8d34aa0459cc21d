"""Thespian's TCP base as a peer for the remote-ask figures: an echo actor in its
own process, asked from this one (Thespian's `ActorSystem.ask`, blocking)."""

from __future__ import annotations

import socket
from typing import Any

from thespian.actors import Actor, ActorSystem  # type: ignore[import-untyped]

from .meter import Meter

PING = b"x" * 100


class Echo(Actor):  # type: ignore[misc]
    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, bytes):
            self.send(sender, message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def rtps(n: int, timer: Meter) -> float:
    """Round trips per second of `n` sequential asks to a Thespian echo actor."""
    system = ActorSystem("multiprocTCPBase", {"Admin Port": _free_port()}, logDefs={"version": 1})
    try:
        echo = system.createActor(Echo)
        for _ in range(20):  # warm up outside the meter
            system.ask(echo, PING, 10)
        with timer:
            for _ in range(n):
                system.ask(echo, PING, 10)
    finally:
        system.shutdown()
    assert timer.delta is not None
    return n / timer.delta
