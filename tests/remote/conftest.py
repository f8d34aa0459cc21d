"""Two nodes in this process, over every adapter, for the remote-ref tests."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from natsserver import shared

from mycelium_actors import ActorSystem

from .nodeapp import tree

_names = itertools.count()


@pytest.fixture(params=["memory", "unix", "tcp", "nats"])
def url_for(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """A listen URL for a node called `name`, on the adapter of this run."""
    scheme = request.param

    def url(name: str) -> str:
        if scheme == "memory":
            return f"memory://{name}-{next(_names)}"
        if scheme == "unix":
            return f"unix://{tmp_path}/{name}.sock"
        if scheme == "nats":  # the node name is the system's: nats://host:port/<name>
            return shared(tmp_path).url
        return "tcp://127.0.0.1:0"

    return url


@pytest.fixture
async def server(url_for: Callable[[str], str]) -> AsyncIterator[ActorSystem]:
    """Node "b", running the probe tree (/root/counter, /root/slow)."""
    async with ActorSystem("b", listen=url_for("b"), heartbeat_timeout=2.0) as system:
        await system.start(tree)
        yield system


@pytest.fixture
async def client(url_for: Callable[[str], str]) -> AsyncIterator[ActorSystem]:
    """Node "a", which talks to "b"."""
    async with ActorSystem("a", listen=url_for("a"), heartbeat_timeout=2.0) as system:
        yield system
