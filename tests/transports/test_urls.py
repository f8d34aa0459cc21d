"""Node URLs: how each scheme splits a full actor URL, and which URLs are refused."""

from __future__ import annotations

import sys

import pytest

from mycelium_actors.errors import TransportError
from mycelium_actors.transports import MemoryTransport, TcpTransport, UnixTransport, registry
from mycelium_actors.transports.nats import NatsTransport
from mycelium_actors.transports.registry import split_url, transport_for
from mycelium_actors.transports.urls import tcp_endpoint


@pytest.mark.parametrize(
    ("url", "node", "path"),
    [
        ("tcp://127.0.0.1:7001/root/alice", "tcp://127.0.0.1:7001", "/root/alice"),
        ("tcp://127.0.0.1:7001", "tcp://127.0.0.1:7001", "/"),
        ("tcp://[::1]:7001/a", "tcp://[::1]:7001", "/a"),
        ("unix:///run/app/node.sock/root/alice", "unix:///run/app/node.sock", "/root/alice"),
        ("unix:///run/app/node.sock", "unix:///run/app/node.sock", "/"),
        ("unix:///run/a.sock/b.sock/c", "unix:///run/a.sock", "/b.sock/c"),
        ("memory://test/x/y", "memory://test", "/x/y"),
    ],
)
def test_an_actor_url_splits_into_node_and_path(url: str, node: str, path: str) -> None:
    assert split_url(url) == (node, path)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("unix:///run/app/node/a", "no socket file"),
        ("tcp:///a", "names no tcp node"),
        ("tcp://host:7001/a?x=1", "no query"),
        ("memory://", "names no memory node"),
    ],
)
def test_a_bad_url_is_a_value_error_that_says_why(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        split_url(url)


@pytest.mark.parametrize(
    ("url", "listening", "expected"),
    [
        ("tcp://127.0.0.1:0", True, ("127.0.0.1", 0)),
        ("tcp://:7001", True, ("127.0.0.1", 7001)),  # servers bind to loopback unless told
        ("tcp://[::1]:7001", False, ("::1", 7001)),
    ],
)
def test_tcp_endpoints(url: str, listening: bool, expected: tuple[str, int]) -> None:
    assert tcp_endpoint(url, listening=listening) == expected


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("tcp://host", "needs a port"),
        ("tcp://host:99999", "needs a port"),
        ("tcp://:7001", "names no host"),
        ("tcp://host:0", "port 0"),
        ("tcp://::1:7001", "IPv6 host is written"),
        ("tcp://host:7001/actor", "not a node URL"),
    ],
)
def test_bad_tcp_endpoints_to_connect_to(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        tcp_endpoint(url, listening=False)


@pytest.mark.parametrize(
    ("scheme", "kind"),
    [("memory", MemoryTransport), ("unix", UnixTransport), ("tcp", TcpTransport)],
)
def test_the_package_registers_each_scheme(scheme: str, kind: type) -> None:
    assert isinstance(transport_for(f"{scheme}://x"), kind)


def test_nats_says_what_to_install_without_nats_py(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if nats-py were not installed: its import fails, nothing is registered yet.
    monkeypatch.setitem(sys.modules, "nats", None)
    monkeypatch.delitem(sys.modules, "mycelium_actors.transports.nats", raising=False)
    monkeypatch.delitem(registry._FACTORIES, "nats", raising=False)
    monkeypatch.delitem(registry._INSTANCES, "nats", raising=False)
    with pytest.raises(TransportError, match=r"pip install 'mycelium-actors\[nats\]'"):
        transport_for("nats://127.0.0.1:4222")


def test_nats_is_registered_when_nats_py_is_installed() -> None:
    assert isinstance(transport_for("nats://127.0.0.1:4222"), NatsTransport)


@pytest.mark.parametrize(
    ("url", "node", "path"),
    [
        ("nats://127.0.0.1:4222/b/root/counter", "nats://127.0.0.1:4222/b", "/root/counter"),
        ("nats://127.0.0.1:4222/b", "nats://127.0.0.1:4222/b", "/"),
        ("nats://nats.example/node-1/a", "nats://nats.example:4222/node-1", "/a"),
        ("nats://u:p@127.0.0.1:4222/b/x", "nats://u:p@127.0.0.1:4222/b", "/x"),
    ],
)
def test_nats_urls_split_after_the_node_name(url: str, node: str, path: str) -> None:
    assert split_url(url) == (node, path)


@pytest.mark.parametrize(
    "url",
    ["nats://127.0.0.1:4222", "nats://127.0.0.1:4222/a.b/x", "nats://h:99999/a", "nats://:1/a"],
)
def test_bad_nats_urls_are_value_errors(url: str) -> None:
    with pytest.raises(ValueError):
        split_url(url)
