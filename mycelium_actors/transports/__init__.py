"""Framed byte pipes between nodes, by URL scheme: the door for adapter writers.

An adapter implements `Transport`, `Listener` and `Connection` (`base.py`)
and calls `register` when imported; the built-in ones are registered below
(`nats://` lazily, since it needs an extra). This package knows nothing of
actors; the remote layer reaches adapters through the registry, by scheme.
"""

from .base import (
    LARGEST,
    PREFIX,
    Connection,
    FrameSink,
    Listener,
    Transport,
    check_max_frame,
    oversize,
)
from .memory import MemoryTransport
from .registry import register, register_lazy, split_url, transport_for
from .stream import TcpTransport, UnixTransport

__all__ = [
    "LARGEST",
    "PREFIX",
    "Connection",
    "FrameSink",
    "Listener",
    "MemoryTransport",
    "TcpTransport",
    "Transport",
    "UnixTransport",
    "check_max_frame",
    "oversize",
    "register",
    "register_lazy",
    "split_url",
    "transport_for",
]

register("memory", MemoryTransport)
register("unix", UnixTransport)
register("tcp", TcpTransport)
register_lazy("nats", "mycelium_actors.transports.nats", "pip install 'mycelium-actors[nats]'")
