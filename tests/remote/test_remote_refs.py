"""Remote refs between two nodes in this process, over every adapter (API.md section 6)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from contracts.probe import Add, Blob, Echo, Fail, GetTotal, Greet, Hold
from mycelium_actors import (
    Actor,
    ActorRef,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    MailboxFull,
    MyceliumError,
    RemoteError,
    SerializationError,
    Terminated,
    TransportError,
    handler,
)
from mycelium_actors.remote.flow import WINDOW
from mycelium_actors.testing import capture_events, events_named, eventually
from mycelium_actors.transports import registry as transport

from . import raw
from .nodeapp import Counter, Watcher


async def counter_of(client: ActorSystem, server: ActorSystem, name: str = "counter") -> Any:
    assert server.address is not None
    return await client.remote(f"{server.address}/root/{name}")


async def test_tell_and_ask_cross_in_order(client, server) -> None:
    ref = await counter_of(client, server)
    for _ in range(300):  # past one window of credit
        await ref.tell(Add(1))
    assert await ref.ask(GetTotal()) == 300
    assert await ref.ask(Echo("hi"), timeout=None) == "hi"


class Strict(Counter):
    """Refuses what does not fit its one-message mailbox."""

    mailbox_capacity = 1
    mailbox_overflow = "fail"


async def test_a_full_fail_mailbox_refuses_a_remote_ask_as_the_framework(client, server) -> None:
    """A refusal is the framework's word: MailboxFull with no remote traceback (it
    went out as a handler's error, with the node's own traceback)."""
    await server.spawn(Strict, name="strict", shutdown=0.2)  # the hold is cancelled at the end
    ref = await client.remote(f"{server.address}/strict")
    held = asyncio.ensure_future(ref.ask(Hold(30.0), timeout=None))
    # Behind the Hold, at most one of these fits the mailbox: the rest are refused.
    echoes = [asyncio.ensure_future(ref.ask(Echo(str(i)), timeout=10.0)) for i in range(5)]
    await eventually(lambda: sum(echo.done() for echo in echoes) >= 4, timeout=10.0)
    outcomes = [echo.exception() for echo in echoes if echo.done()]
    refused = [o for o in outcomes if isinstance(o, MailboxFull)]
    assert len(refused) >= 4, outcomes
    assert not any(getattr(exc, "__notes__", None) for exc in refused)
    assert not held.done()
    for waiting in (held, *echoes):
        waiting.cancel()


async def test_ask_blocking_from_a_plain_thread(client, server) -> None:
    ref = await counter_of(client, server)
    assert await asyncio.to_thread(ref.ask_blocking, Echo("from a thread")) == "from a thread"


class Hogger(Actor):
    """Blocks its loop (the test's, which both nodes share) until `release` is set."""

    @handler
    def hog(self, msg: tuple) -> None:  # type: ignore[type-arg]
        entered, release = msg
        entered.set()
        release.wait(10)


async def test_ask_blocking_times_out_on_time_while_the_loop_is_busy(client, server) -> None:
    """Issue 18, defect 6: `run_blocking` waited 1 s past the timeout, then raised a
    bare TimeoutError."""
    ref = await counter_of(client, server)
    hogger = await client.spawn(Hogger)
    entered, release = threading.Event(), threading.Event()

    def one_thread() -> tuple[BaseException | None, float]:
        assert entered.wait(5)
        started = time.monotonic()
        try:
            ref.ask_blocking(Echo("late"), timeout=0.2)
        except BaseException as exc:
            return exc, time.monotonic() - started
        finally:
            release.set()
        return None, time.monotonic() - started

    await hogger.tell((entered, release))
    error, waited = await asyncio.to_thread(one_thread)
    assert isinstance(error, AskTimeout)
    assert waited < 5 * 0.2


async def test_a_ref_names_its_actor_and_equals_any_other_ref_to_it(client, server) -> None:
    ref = await counter_of(client, server)
    again = await client.remote(server.address, "/root/counter")
    assert ref == again and hash(ref) == hash(again) and isinstance(ref, ActorRef)
    assert (ref.path, ref.name, ref.address) == (
        "/root/counter",
        "counter",
        f"{server.address}/root/counter",
    )
    assert ref.is_alive
    with pytest.raises(MyceliumError, match="local refs only"):
        ref.proxy()


async def test_no_actor_at_the_path(client, server) -> None:
    """An ask fails with ActorStopped; a tell is a dead letter on that node."""
    ghost = await client.remote(server.address, "/nobody")
    with pytest.raises(ActorStopped):
        await ghost.ask(Echo("anyone?"))
    before = server.dead_letters
    await ghost.tell(Echo("lost"))
    await eventually(lambda: server.dead_letters == before + 1)


async def test_only_contract_types_cross_and_nothing_is_sent_otherwise(client, server) -> None:
    ref = await counter_of(client, server)
    with pytest.raises(SerializationError, match="not a contract type"):
        await ref.tell({"plain": "dict"})
    with pytest.raises(SerializationError):
        await ref.ask(Add("1"))  # type: ignore[arg-type]  # a wrongly typed field
    assert await ref.ask(GetTotal()) == 0


@pytest.mark.parametrize(
    ("kind", "arrives_as"),
    [
        ("ValueError", ValueError),
        ("KeyError", KeyError),
        ("MailboxFull", MailboxFull),
        ("Oops", RemoteError),  # a subclass of ValueError: only exact builtins are rebuilt
        ("ActorStopped", RemoteError),  # raised inside the handler: not about this ref
        ("TransportError", RemoteError),
    ],
)
async def test_errors_are_rebuilt_from_a_fixed_table(client, server, kind, arrives_as) -> None:
    ref = await counter_of(client, server)
    with pytest.raises(arrives_as) as info:
        await ref.ask(Fail(kind, "it went wrong"))
    assert type(info.value) is arrives_as
    assert "it went wrong" in str(info.value)
    if arrives_as is RemoteError:
        assert info.value.type_name == kind and "Traceback" in info.value.traceback_text


class Replier(Actor):
    """Echoes with a prefix; for `Greet`, says whether `reply_to` is this node's own ref."""

    @handler
    def echo(self, msg: Echo) -> str:
        return f"back: {msg.text}"

    @handler
    def greet(self, msg: Greet) -> bool:
        return msg.reply_to is self.context.system.lookup(msg.reply_to.path)


async def test_a_ref_inside_a_message_crosses_as_its_address(client, server) -> None:
    """Reply-to across processes: b receives a's ref and asks a back."""
    replier = await client.spawn(Replier, name="replier")
    ref = await counter_of(client, server)
    assert await ref.ask(Greet(replier, "hello")) == "back: hello"


async def test_a_ref_to_an_actor_of_the_receiving_node_arrives_as_its_local_ref(
    client, server
) -> None:
    local = await server.spawn(Replier, name="replier")
    there = await client.remote(server.address, "/replier")
    assert there.address == local.address == f"{server.address}/replier"
    assert await there.ask(Greet(there, "am I yours?")) is True


async def watch_remote(client: ActorSystem, target: ActorRef[Any]) -> list[Terminated]:
    seen: list[Terminated] = []
    await client.spawn(Watcher, target, seen)
    return seen


async def test_watch_reports_a_remote_actor_that_stops(client, server) -> None:
    ref = await counter_of(client, server)
    seen = await watch_remote(client, ref)
    await ref.stop()
    await eventually(lambda: seen)
    assert seen[0].ref == ref and seen[0].reason in ("normal", "shutdown")


async def test_a_node_that_shuts_down_reports_its_actors_stopped(client, url_for) -> None:
    """Its actors stop for good before it says goodbye: watchers hear "shutdown"."""
    async with ActorSystem("gone", listen=url_for("gone")) as gone:
        await gone.spawn(Counter, name="c")
        ref = await client.remote(gone.address, "/c")
        seen = await watch_remote(client, ref)
        # The watch travels ahead of this ask on the one connection: once it is
        # answered, the watch is in place (over NATS it takes more loop passes).
        assert await ref.ask(Echo("watched?")) == "watched?"
    await eventually(lambda: seen and not client.nodes())
    assert [t.reason for t in seen] == ["shutdown"] and not ref.is_alive
    with pytest.raises(TransportError):
        await ref.ask(Echo("anyone?"))


async def test_nodes_lists_the_peer_and_shutdown_says_goodbye(client, url_for) -> None:
    with capture_events() as events:
        async with ActorSystem("short", listen=url_for("short")) as short:
            await short.spawn(Counter, name="c")
            ref = await client.remote(short.address, "/c")
            assert await ref.ask(Echo("x")) == "x"
            (info,) = client.nodes()
            assert (info.name, info.address) == ("short", short.address)
        started = time.monotonic()
        await eventually(lambda: not client.nodes())
        assert time.monotonic() - started < 1.0  # a goodbye, not a heartbeat timeout
    assert events_named(events, "node.up") and events_named(events, "node.down")


async def test_discover_and_publish_cover_connected_nodes(client, server) -> None:
    await client.spawn(Counter, name="here")
    await counter_of(client, server)  # connected
    found = await client.discover_cluster(Counter)
    assert sorted(ref.path for ref in found) == ["/here", "/root/counter", "/root/slow"]
    handlers = await client.discover_cluster(handles=Add)
    assert len(handlers) == 3
    assert await client.publish_cluster(Add(5)) == 3
    assert await (await counter_of(client, server)).ask(GetTotal()) == 5
    with pytest.raises(SerializationError):
        await client.publish_cluster("not a contract")


async def test_a_message_over_the_maximum_frame_is_refused_at_the_sender(url_for) -> None:
    async with (
        ActorSystem("small-b", listen=url_for("sb"), max_frame=64 * 1024) as b,
        ActorSystem("small-a", listen=url_for("sa"), max_frame=64 * 1024) as a,
    ):
        await b.spawn(Counter, name="c")
        ref = await a.remote(b.address, "/c")
        assert await ref.ask(Blob(b"x" * 1000)) == 1000
        with pytest.raises(SerializationError, match=r"maximum frame|over the limit"):
            await ref.tell(Blob(b"x" * 100_000))
        assert await ref.ask(Blob(b"")) == 0


async def test_tell_nowait_refuses_once_the_window_in_flight_is_full(client, server) -> None:
    slow = await counter_of(client, server, "slow")
    await slow.tell(Hold(30.0))  # 2 fit behind it; the rest wait on b without credit
    with pytest.raises(MailboxFull, match="in flight"):
        for _ in range(WINDOW + 10):
            slow.tell_nowait(Add(1))


async def test_a_full_mailbox_makes_only_its_own_senders_wait(client, server) -> None:
    """The slow actor (capacity 2) is parked; its remote senders wait at the window;
    another actor on the same node still answers at once."""
    slow = await counter_of(client, server, "slow")
    counter = await counter_of(client, server)
    await slow.tell(Hold(30.0))

    async def flood() -> None:
        await asyncio.gather(*(slow.tell(Add(1)) for _ in range(400)))

    senders = asyncio.create_task(flood())
    await asyncio.sleep(0.05)  # let the window fill (real time: nothing to wait on)
    assert not senders.done()
    started = time.monotonic()
    assert await counter.ask(Echo("still here")) == "still here"
    assert time.monotonic() - started < 0.5  # 100 ms is the goal; 5x margin on a loaded box
    senders.cancel()


@pytest.mark.parametrize(
    ("server_secret", "client_secret", "refusal"),
    [
        ("s3cret", None, "secret is required"),
        ("s3cret", "wrong", "did not prove"),
        (None, "s3cret", "did not prove"),
    ],
)
async def test_a_node_refuses_a_peer_that_cannot_prove_the_secret(
    url_for, server_secret, client_secret, refusal
) -> None:
    async with (
        ActorSystem("guarded", listen=url_for("g"), secret=server_secret) as b,
        ActorSystem("caller", secret=client_secret) as a,
    ):
        await b.spawn(Counter, name="c")
        with pytest.raises(TransportError, match=refusal):
            await a.remote(b.address, "/c")


class _Stranger:
    """A frame sink for a hand-driven connection: what arrived, and whether it closed."""

    def __init__(self) -> None:
        self.heard = asyncio.Event()
        self.closed = asyncio.Event()

    def frame_received(self, frame: bytes) -> None:
        self.heard.set()

    def frames_done(self) -> None:
        pass

    def connection_lost(self, reason: str | None) -> None:
        self.closed.set()


async def test_shutdown_closes_connections_still_in_their_handshake(url_for) -> None:
    """A peer that says HELLO, gets the node's, and never proves anything is cut
    off when the node stops, not left open until its handshake would time out
    (an hour here)."""
    system = ActorSystem("quiet", listen=url_for("quiet"), heartbeat_timeout=3600)
    await system.__aenter__()
    address = system.address
    assert address is not None
    conn = await transport.transport_for(address).connect(address, max_frame=1 << 16)
    stranger = _Stranger()
    conn.start(stranger)
    conn.send(raw.hello(name="stranger"))
    await asyncio.wait_for(stranger.heard.wait(), 5)  # the node's HELLO: it waits for AUTH
    await system.shutdown()
    await asyncio.wait_for(stranger.closed.wait(), 5)
    await transport.transport_for(address).settle()


async def test_a_shared_secret_lets_peers_in(url_for) -> None:
    async with (
        ActorSystem("guarded", listen=url_for("g"), secret=b"s3cret") as b,
        ActorSystem("caller", secret="s3cret") as a,
    ):
        await b.spawn(Counter, name="c")
        ref = await a.remote(b.address, "/c")
        assert await ref.ask(Echo("in")) == "in"


async def test_serialize_local_runs_local_messages_through_the_codec() -> None:
    async with ActorSystem("local", serialize_local=True) as system:
        ref = await system.spawn(Counter)
        assert await ref.ask(Add(2)) == 2
        with pytest.raises(SerializationError):
            await ref.tell("not a contract")
        with pytest.raises(SerializationError):
            await ref.ask(Add(True))  # type: ignore[arg-type]  # a bool is not an int


async def test_the_next_use_reconnects_to_a_node_restarted_at_the_same_address(
    client, tmp_path
) -> None:
    url = f"unix://{tmp_path}/again.sock"
    for round_ in range(2):
        async with ActorSystem("again", listen=url) as again:
            await again.spawn(Counter, name="c")
            ref = await client.remote(url, "/c")
            assert await ref.ask(Add(round_ + 1)) == round_ + 1  # a fresh actor each time
        await eventually(lambda ref=ref: not ref.is_alive)
