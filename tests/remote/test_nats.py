"""Nodes joined through a real nats-server: other processes, kills, server restarts."""

from __future__ import annotations

import asyncio
import itertools
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import nats
import pytest
import trustme
from natsserver import NatsServer, free_port, shared

from contracts.probe import Add, Blob, Echo, GetTotal, Greet, Hold
from mycelium_actors import (
    ActorRef,
    ActorSystem,
    SerializationError,
    Terminated,
    TransportError,
)
from mycelium_actors.testing import capture_events, events_named, eventually
from mycelium_actors.transports import nats as nats_adapter
from mycelium_actors.transports import registry as transport
from mycelium_actors.transports.nats import NatsTransport
from mycelium_actors.wire import frames as wire

from .nodeapp import Counter, Watcher, tree
from .test_node_processes import NodeProcess, started_nodes

HEARTBEAT = 1.0
_runs = itertools.count()


def unique(name: str) -> str:
    """Node names are cluster-wide: one per test, even if an earlier one leaked."""
    return f"{name}-{next(_runs)}"


@pytest.fixture
def nats_url(tmp_path: Path) -> str:
    return shared(tmp_path).url


@pytest.fixture
def spawn(nats_url: str) -> Iterator[Callable[..., NodeProcess]]:
    def make(name: str) -> NodeProcess:
        return NodeProcess(nats_url, "--heartbeat", str(HEARTBEAT), name=name)

    with started_nodes(make) as spawn:
        yield spawn


@pytest.fixture
async def here(nats_url: str) -> AsyncIterator[ActorSystem]:
    async with ActorSystem(unique("here"), listen=nats_url, heartbeat_timeout=HEARTBEAT) as s:
        yield s


async def test_the_address_is_the_server_and_the_system_name(nats_url: str) -> None:
    name = unique("named")
    async with ActorSystem(name, listen=nats_url) as system:
        assert system.address == f"{nats_url}/{name}"
        await system.spawn(Counter, name="c")
        assert (await system.remote(f"{system.address}/c")).address == f"{system.address}/c"


async def test_a_listen_url_that_names_the_node_overrides_the_system_name(nats_url: str) -> None:
    name = unique("named-by-url")
    async with ActorSystem("root", listen=f"{nats_url}/{name}") as system:
        assert system.address == f"{nats_url}/{name}"


async def test_node_processes_talk_only_through_nats(spawn, here) -> None:
    """Three processes: this one asks `left`, whose actor asks `right` through a
    ref that crossed in the message."""
    left, right = spawn(unique("left")), spawn(unique("right"))
    assert left.address.startswith("nats://") and right.address.startswith("nats://")
    to_left = await here.remote(f"{left.address}/root/counter")
    to_right = await here.remote(f"{right.address}/root/counter")
    for _ in range(300):  # past one window of credit
        await to_left.tell(Add(1))
    assert await to_left.ask(GetTotal()) == 300
    assert await to_left.ask(Greet(to_right, "via right")) == "via right"
    assert sorted(n.name for n in here.nodes()) == sorted(
        a.rsplit("/", 1)[1] for a in (left.address, right.address)
    )


async def test_a_name_in_use_on_the_cluster_is_refused(spawn, nats_url: str) -> None:
    far = spawn(unique("taken"))
    name = far.address.rsplit("/", 1)[1]
    with pytest.raises(TransportError, match=f"node name {name} is already in use"):
        async with ActorSystem(name, listen=nats_url):
            pass


async def test_a_closed_listeners_name_is_free_at_once_for_another_client(nats_url: str) -> None:
    """aclose() returns once the server has dropped the subscription, so a new
    client claiming the name right after never finds it taken."""
    url = f"{nats_url}/{unique('reused')}"
    for _ in range(10):
        listener = await NatsTransport().listen(url, lambda conn: conn.close(), max_frame=1 << 16)
        await listener.aclose()


async def test_two_nodes_claiming_one_name_at_once_leave_one_holder(nats_url: str) -> None:
    nats = transport.transport_for(nats_url)
    url = f"{nats_url}/{unique('twin')}"
    got = await asyncio.gather(
        *(nats.listen(url, lambda conn: conn.close(), max_frame=1024) for _ in range(2)),
        return_exceptions=True,
    )
    errors = [g for g in got if isinstance(g, BaseException)]
    assert len(errors) == 1 and "already in use" in str(errors[0])
    for listener in got:
        if not isinstance(listener, BaseException):
            await listener.aclose()


async def test_nodes_on_two_servers_of_a_nats_cluster_meet_through_their_own_server(
    tmp_path: Path,
) -> None:
    """The far node joined server two; this one, server one: presence and
    connections cross the cluster's route, and no client to server two is opened."""
    route = free_port()
    one = NatsServer(tmp_path, "--cluster_name", "c", "--cluster", f"nats://127.0.0.1:{route}")
    two = NatsServer(
        tmp_path,
        "--cluster_name",
        "c",
        "--cluster",
        f"nats://127.0.0.1:{free_port()}",
        "--routes",
        f"nats://127.0.0.1:{route}",
    )
    far = NodeProcess(two.url, "--heartbeat", str(HEARTBEAT), name=unique("on-two"))
    try:
        async with ActorSystem(unique("on-one"), listen=one.url, heartbeat_timeout=HEARTBEAT) as a:
            found = await until_found(a, *counters(far), timeout=10)
            assert all(r.address.startswith(two.url) for r in found)
            assert await found[0].ask(Echo("across the route")) == "across the route"
            servers = {server for _, server in transport.transport_for(one.url)._hubs}
            assert servers == {one.url.removeprefix("nats://")}
    finally:
        far.stop()
        one.stop()
        two.stop()


async def test_a_missing_node_fails_at_once(here, nats_url: str) -> None:
    started = time.monotonic()
    with pytest.raises(TransportError, match="no node of that name"):
        await here.remote(f"{nats_url}/{unique('nobody')}/root/counter")
    assert time.monotonic() - started < 1.0  # NATS says "no responders" at once


async def test_a_node_killed_mid_ask_fails_the_ask_within_the_heartbeat_timeout(
    spawn, here
) -> None:
    far = spawn(unique("doomed"))
    ref = await here.remote(f"{far.address}/root/counter")
    assert await ref.ask(Echo("alive")) == "alive"
    held = asyncio.ensure_future(ref.ask(Hold(30.0), timeout=None))
    started = time.monotonic()
    far.proc.send_signal(signal.SIGKILL)
    with pytest.raises(TransportError):
        await asyncio.wait_for(held, HEARTBEAT * 5)
    assert time.monotonic() - started < HEARTBEAT * 5 and not ref.is_alive


async def test_a_full_mailbox_loses_nothing_and_keeps_the_node_connected(
    nats_url: str,
) -> None:
    """600 tells to a parked actor of capacity 2: senders wait on credit (the
    window is 256), nothing is dropped, nobody is disconnected."""
    async with (
        ActorSystem(unique("b"), listen=nats_url, heartbeat_timeout=HEARTBEAT) as b,
        ActorSystem(unique("a"), listen=nats_url, heartbeat_timeout=HEARTBEAT) as a,
    ):
        await b.start(tree)
        slow = await a.remote(f"{b.address}/root/slow")
        with capture_events() as events:
            await slow.tell(Hold(HEARTBEAT * 2))  # parked across heartbeats
            await asyncio.gather(*(slow.tell(Add(1)) for _ in range(600)))
            assert await slow.ask(GetTotal(), timeout=30) == 600
        assert not events_named(events, "node.down")
        assert a.dead_letters == 0 and b.dead_letters == 0


async def test_a_restarted_nats_server_fails_pending_asks_then_clients_reconnect(
    tmp_path: Path,
) -> None:
    server = NatsServer(tmp_path)
    try:
        async with (
            ActorSystem(unique("b"), listen=server.url, heartbeat_timeout=HEARTBEAT) as b,
            ActorSystem(unique("a"), listen=server.url, heartbeat_timeout=HEARTBEAT) as a,
        ):
            await b.start(tree)
            ref = await a.remote(f"{b.address}/root/counter")
            slow = await a.remote(f"{b.address}/root/slow")
            assert await ref.ask(Add(5)) == 5
            held = asyncio.ensure_future(slow.ask(Hold(30.0), timeout=None))
            await ref.ask(Echo("after the hold"))  # one connection, FIFO: the hold is there
            server.restart()
            with pytest.raises(TransportError, match="lost the NATS server"):
                await asyncio.wait_for(held, HEARTBEAT * 5)

            async def works() -> bool:
                try:
                    return bool(await ref.ask(Echo("back"), timeout=HEARTBEAT) == "back")
                except TransportError:
                    return False  # the client is still reconnecting

            await eventually(works, timeout=10)
            assert await ref.ask(GetTotal()) == 5  # the same node, reached again
    finally:
        server.stop()


async def test_a_message_over_the_servers_max_payload_is_refused_at_the_sender(
    tmp_path: Path,
) -> None:
    server = NatsServer(tmp_path, max_payload=64 * 1024)
    try:
        async with (
            ActorSystem(unique("b"), listen=server.url) as b,
            ActorSystem(unique("a"), listen=server.url) as a,  # asks for 16 MiB
        ):
            await b.spawn(Counter, name="c")
            ref = await a.remote(f"{b.address}/c")
            assert await ref.ask(Blob(b"x" * 1000)) == 1000
            limit = 64 * 1024 - nats_adapter.TAG  # room for a frame's signature
            with pytest.raises(
                SerializationError, match=rf"(over the limit|maximum frame) of {limit}"
            ):
                await ref.tell(Blob(b"x" * 100_000))
            assert await ref.ask(Blob(b"")) == 0
    finally:
        server.stop()


async def until_found(system: ActorSystem, *expected: str, timeout: float = 5.0) -> list[ActorRef]:
    """What discovery finds once it is exactly `expected` (presence news travels
    on its own: a join or a death reaches each node a little later)."""

    async def matches() -> list[ActorRef] | None:
        found = await system.discover_cluster(handles=GetTotal, timeout=HEARTBEAT / 2)
        return found if sorted(r.address or "" for r in found) == sorted(expected) else None

    found: list[ActorRef] = await eventually(matches, timeout=timeout)
    return found


def counters(node: NodeProcess) -> list[str]:
    return [f"{node.address}/root/counter", f"{node.address}/root/slow"]  # Slow is a Counter


async def test_discovery_covers_nodes_never_connected_to_and_follows_one_that_leaves(
    here, nats_url: str
) -> None:
    async with ActorSystem(unique("stays"), listen=nats_url) as stays:
        await stays.spawn(Counter, name="c")
        async with ActorSystem(unique("leaves"), listen=nats_url) as leaves:
            await leaves.spawn(Counter, name="c")
            await until_found(here, f"{stays.address}/c", f"{leaves.address}/c")
        await until_found(here, f"{stays.address}/c")
        started = time.monotonic()
        await here.discover_cluster(handles=GetTotal)
        assert time.monotonic() - started < 1.0  # nobody waits for the node that left


async def test_a_killed_node_leaves_discovery_within_the_heartbeat_timeout(spawn, here) -> None:
    """No goodbye: its beats stop. Watchers of its actors get Terminated."""
    doomed, survivor = spawn(unique("doomed")), spawn(unique("survivor"))
    found = await until_found(here, *counters(doomed), *counters(survivor))
    notices: list[Terminated] = []
    watched = next(r for r in found if r.address == counters(doomed)[0])
    await here.spawn(Watcher, watched, notices)
    started = time.monotonic()
    doomed.proc.send_signal(signal.SIGKILL)
    await until_found(here, *counters(survivor), timeout=HEARTBEAT * 5)
    await eventually(lambda: notices, timeout=HEARTBEAT * 5)
    assert time.monotonic() - started < HEARTBEAT * 5
    assert [n.reason for n in notices] == ["connection_lost"]


async def test_publish_cluster_reaches_nodes_never_connected_to(spawn, here) -> None:
    far = spawn(unique("far"))
    await until_found(here, *counters(far))
    assert await here.publish_cluster(Add(2)) == 2  # both of its counters took it
    counter = await here.remote(f"{far.address}/root/counter")
    assert await counter.ask(GetTotal()) == 2


@pytest.mark.parametrize("secret", [b"shared", None], ids=["with a secret", "without"])
async def test_frames_injected_by_another_nats_client_are_dropped_with_a_secret(
    nats_url: str, secret: bytes | None
) -> None:
    """An eavesdropper on the server replays a tell it saw (and forges one): with
    a secret neither lands (each is logged); without, the replayed tell is
    handled again (NATS's own authentication is the boundary)."""
    spy = await nats.connect(nats_url)
    seen: list[bytes] = []
    tell = bytes((wire.TELL,))

    async def keep(msg: nats.aio.msg.Msg) -> None:
        if msg.data.startswith(tell):
            seen.append(msg.subject.encode() + b" " + msg.data)

    sub = await spy.subscribe("mycelium.conn.>", cb=keep)
    await spy.flush()
    try:
        async with (
            ActorSystem(unique("b"), listen=nats_url, secret=secret) as b,
            ActorSystem(unique("a"), listen=nats_url, secret=secret) as a,
        ):
            await b.spawn(Counter, name="c")
            ref = await a.remote(f"{b.address}/c")
            await ref.tell(Add(1))
            assert await ref.ask(GetTotal()) == 1
            subject, data = (await eventually(lambda: seen))[0].split(b" ", 1)
            await sub.unsubscribe()
            with capture_events() as events:
                await spy.publish(subject.decode(), data)
                # NATS orders one publisher's messages, not the spy's against ours: wait.
                if secret:  # (without one, a malformed frame is a protocol error: tested elsewhere)
                    await spy.publish(subject.decode(), tell + b"forged")
                    await eventually(lambda: len(dropped(events)) == 2)
                    assert await ref.ask(GetTotal()) == 1
                else:
                    await eventually(lambda: total_is(ref, 2))
    finally:
        await spy.close()
    assert len(dropped(events)) == (2 if secret else 0)


def dropped(events: list[dict[str, object]]) -> list[dict[str, object]]:
    return events_named(events, "transport.frame_dropped")


async def total_is(ref: ActorRef, expected: int) -> bool:
    return bool(await ref.ask(GetTotal()) == expected)


async def test_without_nats_py_joining_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, nats_url: str
) -> None:
    monkeypatch.setitem(sys.modules, "nats", None)
    monkeypatch.delitem(sys.modules, "mycelium_actors.transports.nats", raising=False)
    monkeypatch.delitem(transport._FACTORIES, "nats", raising=False)
    monkeypatch.delitem(transport._INSTANCES, "nats", raising=False)
    with pytest.raises(TransportError, match=r"pip install 'mycelium-actors\[nats\]'"):
        async with ActorSystem(unique("x"), listen=nats_url):
            pass
    async with ActorSystem(unique("y")) as system:
        with pytest.raises(TransportError, match=r"pip install 'mycelium-actors\[nats\]'"):
            await system.remote(f"{nats_url}/b/root/counter")


@pytest.mark.parametrize(
    ("env", "userinfo", "joins"),
    [
        ({}, "", False),
        ({"MYCELIUM_NATS_USER": "node", "MYCELIUM_NATS_PASSWORD": "pw"}, "", True),
        ({"MYCELIUM_NATS_USER": "node", "MYCELIUM_NATS_PASSWORD": "bad"}, "", False),
        ({}, "node:pw@", True),
    ],
)
async def test_nats_credentials_come_from_the_environment_or_the_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], userinfo: str, joins: bool
) -> None:
    for key in ("USER", "PASSWORD", "TOKEN", "CREDS"):
        monkeypatch.delenv(f"MYCELIUM_NATS_{key}", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    server = NatsServer(tmp_path, "--user", "node", "--pass", "pw")
    url = server.url.replace("nats://", f"nats://{userinfo}")
    try:
        if not joins:
            with pytest.raises(TransportError, match="cannot reach the NATS server"):
                async with ActorSystem(unique("locked"), listen=url):
                    pass
            return
        async with ActorSystem(unique("b"), listen=url) as b:
            assert b.address == f"{server.url}/{b.name}"  # no credentials in it
            await b.spawn(Counter, name="c")
            async with ActorSystem(unique("a")) as a:  # the same client: same credentials
                assert await (await a.remote(f"{b.address}/c")).ask(Echo("in")) == "in"
    finally:
        server.stop()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[NatsServer, Path]]:
    """A server that requires TLS, with a certificate for 127.0.0.1; and its CA."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = (tmp_path / name for name in ("cert.pem", "key.pem", "ca.pem"))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    server = NatsServer(tmp_path, "--tlscert", str(cert), "--tlskey", str(key))
    yield server, ca_file
    server.stop()


@pytest.mark.parametrize(
    ("env", "joins"),
    [({"MYCELIUM_NATS_TLS_CA": "ca"}, True), ({"MYCELIUM_NATS_TLS": "1"}, False), ({}, False)],
    ids=["our CA", "system CAs only", "no TLS"],
)
async def test_tls_to_the_nats_server_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    tls_server: tuple[NatsServer, Path],
    env: dict[str, str],
    joins: bool,
) -> None:
    server, ca_file = tls_server
    for key in ("TLS", "TLS_CA", "TLS_CERT", "TLS_KEY"):
        monkeypatch.delenv(f"MYCELIUM_NATS_{key}", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, str(ca_file) if value == "ca" else value)
    if not joins:
        with pytest.raises(TransportError, match="cannot reach the NATS server"):
            async with ActorSystem(unique("plain"), listen=server.url):
                pass
        return
    async with (
        ActorSystem(unique("b"), listen=server.url) as b,
        ActorSystem(unique("a"), listen=server.url) as a,
    ):
        await b.spawn(Counter, name="c")
        assert await (await a.remote(f"{b.address}/c")).ask(Echo("sealed")) == "sealed"


@pytest.mark.parametrize("first_to_close", ["the listening node", "the connecting system"])
async def test_a_system_that_only_connects_closes_its_nats_client_at_shutdown(
    nats_url: str, first_to_close: str
) -> None:
    """No NATS socket outlives the systems (pytest fails a test on an unclosed one)."""
    async with ActorSystem(unique("listens"), listen=nats_url) as b:
        await b.spawn(Counter, name="c")
        a = ActorSystem(unique("connects"))
        await a.__aenter__()
        assert await (await a.remote(f"{b.address}/c")).ask(Echo("x")) == "x"
        if first_to_close == "the connecting system":
            await a.shutdown()
    if first_to_close == "the listening node":
        await eventually(lambda: not a.nodes())
        await a.shutdown()


# -- issue 19: what the red team and a newcomer found -------------------------------------


async def test_a_nats_server_that_is_not_there_is_an_error_at_once() -> None:
    """nats-py alone would retry forever: remote() and listen= raise instead."""
    url = f"nats://127.0.0.1:{free_port()}"
    async with ActorSystem("lonely") as system:
        with pytest.raises(TransportError, match="cannot reach the NATS server"):
            await asyncio.wait_for(system.remote(f"{url}/nobody/root/x"), 10)
    with pytest.raises(TransportError, match="cannot reach the NATS server"):
        await asyncio.wait_for(ActorSystem("lonely", listen=url).__aenter__(), 10)


async def test_unsigned_frames_are_logged_at_a_bounded_rate(nats_url: str) -> None:
    spy = await nats.connect(nats_url)
    inboxes: list[str] = []

    async def keep(msg: nats.aio.msg.Msg) -> None:
        inboxes.append(msg.subject)

    await spy.subscribe("mycelium.conn.>", cb=keep)
    await spy.flush()
    drops = nats_adapter.connection._DROPS
    try:
        async with (
            ActorSystem(unique("b"), listen=nats_url, secret=b"s") as b,
            ActorSystem(unique("a"), listen=nats_url, secret=b"s") as a,
        ):
            await b.spawn(Counter, name="c")
            ref = await a.remote(f"{b.address}/c")
            assert await ref.ask(Echo("signed")) == "signed"
            inbox = (await eventually(lambda: inboxes))[-1]
            before = drops.total
            with capture_events() as events:
                for _ in range(drops.limit * 5):
                    await spy.publish(inbox, bytes((wire.TELL,)) + b"forged")
                await eventually(lambda: drops.total - before == drops.limit * 5)
            assert len(dropped(events)) <= drops.limit
            assert await ref.ask(Echo("still up")) == "still up"
    finally:
        await spy.close()


async def test_nodes_names_each_node_by_its_name_on_the_cluster(nats_url: str) -> None:
    """Two nodes of one tree (one system name) on two node names are told apart."""
    one, two = unique("app-1"), unique("app-2")
    async with (
        ActorSystem("app", listen=f"{nats_url}/{one}") as first,
        ActorSystem("app", listen=f"{nats_url}/{two}") as second,
        ActorSystem(unique("asker")) as asker,
    ):
        for node in (first, second):
            await node.spawn(Counter, name="c")
            assert await (await asker.remote(f"{node.address}/c")).ask(Echo("hi")) == "hi"
        assert sorted(info.name for info in asker.nodes()) == sorted([one, two])


async def test_discovery_right_after_joining_covers_the_cluster(nats_url: str) -> None:
    async with ActorSystem(unique("old"), listen=nats_url) as old:
        await old.spawn(Counter, name="c")
        async with ActorSystem(unique("new"), listen=nats_url) as new:
            found = await new.discover_cluster(Counter)  # no wait: joining heard them
            assert [ref.address for ref in found] == [f"{old.address}/c"]


async def test_a_lost_nats_server_says_so_in_every_error(tmp_path: Path) -> None:
    server = NatsServer(tmp_path)
    try:
        async with (
            ActorSystem(unique("b"), listen=server.url, heartbeat_timeout=HEARTBEAT) as b,
            ActorSystem(unique("a"), listen=server.url, heartbeat_timeout=HEARTBEAT) as a,
        ):
            await b.spawn(Counter, name="c")
            ref = await a.remote(f"{b.address}/c")
            assert await ref.ask(Echo("up")) == "up"
            server.stop()
            await eventually(lambda: not ref.is_alive)
            for _ in range(2):  # the loss, then a reconnect while the server is away
                with pytest.raises(TransportError, match="lost the NATS server"):
                    await ref.ask(Echo("anyone?"), timeout=HEARTBEAT)
    finally:
        server.stop()
