"""The red-team defects of issue 19, one test each, over unix sockets in this
process (the node under attack runs in the test's loop; raw clients speak for
a peer from a thread)."""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from contracts.probe import Add, Blob, Echo, GetTotal, Hold
from mycelium_actors import (
    Actor,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    Child,
    MailboxFull,
    SerializationError,
    Supervisor,
    handler,
)
from mycelium_actors.remote.flow import WINDOW
from mycelium_actors.remote.peer import Peer
from mycelium_actors.testing import FakeClock, capture_events, events_named, eventually, settle
from mycelium_actors.wire import frames as wire
from mycelium_actors.wire.codec import Codec

from . import raw
from .nodeapp import Counter, tree

CODEC = Codec()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ActorSystem]:
    """Node "s" with the probe tree (/root/counter; /root/slow holds 2)."""
    async with ActorSystem("s", listen=f"unix://{tmp_path}/s.sock", kill_grace=0.5) as system:
        await system.start(tree)
        yield system


@pytest.fixture
async def caller() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("caller", kill_grace=0.5) as system:
        yield system


def _client(node: ActorSystem) -> socket.socket:
    assert node.address is not None
    return raw.connect(node.address)


# -- 1: tells then a connection loss in one read ---------------------------------------


async def test_tells_followed_by_a_goodbye_in_one_read_are_still_served(node, caller) -> None:
    """The actor that got them wakes: its full "block" mailbox drains for others."""

    def tells_then_goodbye() -> None:
        with _client(node) as sock:
            raw.handshake(sock)
            tell = raw.frame(raw.tell_frame(b"/root/slow", CODEC.encode(Add(1))))
            sock.sendall(tell * 2 + raw.frame(b"G\x91\xa3bye"))  # one write, one read

    await asyncio.to_thread(tells_then_goodbye)
    slow = await caller.remote(node.address, "/root/slow")
    assert await slow.ask(GetTotal(), timeout=3.0) == 2


# -- 2: a reply or error that cannot cross ----------------------------------------------


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


class Replies(Actor):
    """Replies `n` bytes for `Add(n)`; raises what `Echo.text` names."""

    @handler
    def add(self, msg: Add) -> bytes:
        return b"x" * msg.n

    @handler
    def echo(self, msg: Echo) -> str:
        if msg.text == "long":
            raise ValueError("y" * 200_000)
        if msg.text == "unprintable":
            raise Unprintable()
        return msg.text


@pytest.mark.parametrize(
    ("message", "raises", "says"),
    [
        (Add(65_529), SerializationError, "65536"),  # a payload that fits, a frame that does not
        (Echo("long"), ValueError, "[...]"),
        (Echo("unprintable"), Exception, "str() raised"),
    ],
)
async def test_a_reply_that_cannot_cross_is_an_error_and_the_actor_serves_on(
    tmp_path, caller, message, raises, says
) -> None:
    async with ActorSystem("s", listen=f"unix://{tmp_path}/r.sock", max_frame=64 * 1024) as s:
        await s.start(Supervisor("root", children=[Child(Replies, name="r")]))
        ref = await caller.remote(s.address, "/root/r")
        with pytest.raises(raises) as info:
            await ref.ask(message, timeout=3.0)
        assert says in str(info.value) + str(getattr(info.value, "__notes__", "")), info.value
        assert await ref.ask(Echo("still serving"), timeout=3.0) == "still serving"


# -- 4: several senders, one window -----------------------------------------------------


async def test_several_senders_to_one_actor_stay_within_the_window(node, caller) -> None:
    """A woken sender checks again: one that did not wait may have taken the room
    (the receiver cuts a peer with more than the window in flight)."""
    slow = await caller.remote(node.address, "/root/slow")
    in_flight = slow._peer._inflight_to(slow.path)  # what the window counts
    most = 0
    await slow.tell(Hold(0.2))  # the window fills behind it

    async def sender() -> None:
        nonlocal most
        for _ in range(300):
            await slow.tell(Add(1))
            most = max(most, len(in_flight))

    await asyncio.wait_for(asyncio.gather(*(sender() for _ in range(4))), 30)
    assert await slow.ask(GetTotal(), timeout=10.0) == 1200
    assert most <= WINDOW


# -- 5, 6, 14: the handshake --------------------------------------------------------------


async def test_a_handshake_frame_over_a_few_kib_is_cut_off_at_its_length(node) -> None:
    def announce_a_large_hello() -> bytes:
        with _client(node) as sock:
            sock.sendall(struct.pack(">I", 1 << 20) + b"H")
            return sock.recv(1)  # b"": closed at once, not waiting for 1 MiB

    assert await asyncio.to_thread(announce_a_large_hello) == b""


async def test_silent_connections_lock_no_peer_out_and_the_pushed_out_hear_why(
    node, caller
) -> None:
    silent = [await asyncio.to_thread(_client, node) for _ in range(64)]
    try:
        ref = await caller.remote(node.address, "/root/counter")
        assert await ref.ask(Echo("in"), timeout=3.0) == "in"
        reason = await asyncio.to_thread(raw.goodbye, silent[0])
        assert "too many handshakes at once" in reason
    finally:
        for sock in silent:
            sock.close()


async def test_a_dribbling_handshake_has_one_deadline(tmp_path) -> None:
    """Heartbeat timeout 2.5 s: a HELLO after 2 s and nothing after it is refused at
    2.5 s, not 2.5 s after the HELLO (the fake clock moves; real time barely does)."""
    clock = FakeClock()
    url = f"unix://{tmp_path}/d.sock"
    async with ActorSystem("d", listen=url, heartbeat_timeout=2.5, clock=clock) as node:
        sock = await asyncio.to_thread(_client, node)
        with sock:
            await eventually(lambda: node._node._handshakes)  # accepted at 0 s
            await clock.advance(2.0)
            await asyncio.to_thread(sock.sendall, raw.frame(raw.hello()))
            await asyncio.to_thread(raw.read_frame, sock)  # its HELLO: it waits for AUTH
            await clock.advance(1.0)
            sock.settimeout(2.0)
            reason = await asyncio.to_thread(raw.goodbye, sock)
    assert "no handshake within 2.5s" in reason


async def test_a_peer_of_another_protocol_version_is_told_both_versions(node) -> None:
    def old_hello() -> str:
        with _client(node) as sock:
            sock.sendall(raw.frame(raw.hello(version=1)))
            return raw.goodbye(sock)

    reason = await asyncio.to_thread(old_hello)
    assert "version 1" in reason and f"version {wire.VERSION}" in reason


# -- 7: asks never read ----------------------------------------------------------------------


async def test_a_peer_that_asks_and_never_reads_is_cut_off(tmp_path) -> None:
    url = f"unix://{tmp_path}/u.sock"
    async with ActorSystem("u", listen=url, max_frame=64 * 1024) as node:
        await node.spawn(Counter, name="c")
        ask = raw.ask_frame(1, b"/c", CODEC.encode(Echo("x" * 30_000)))

        def ask_and_never_read() -> str:
            with _client(node) as sock:
                raw.handshake(sock)
                for _ in range(40):  # 40 x 20 asks of 30 KB replies: 24 MB unread
                    try:
                        sock.sendall(raw.frame(ask) * 20)
                    except TimeoutError:  # 5 s: the node no longer reads, but holds on
                        return "left hanging"
                    except OSError:
                        return "cut off"
            return "never cut off"

        with capture_events() as events:
            ended = await asyncio.wait_for(asyncio.to_thread(ask_and_never_read), 30)
            refused = await eventually(
                lambda: [e for e in events_named(events, "node.refused") if "unread" in str(e)]
            )
    assert refused
    # Aborted, not closed: a close first writes the replies out, to a peer that never
    # reads them, so the node kept them (and the socket) for as long as the peer stayed.
    assert ended == "cut off"


# -- 8: an address declared in HELLO is not a route -----------------------------------


async def test_an_impostor_claiming_a_nodes_address_does_not_become_the_route_to_it(
    node, tmp_path
) -> None:
    async with ActorSystem("c", listen=f"unix://{tmp_path}/c.sock") as real:
        await real.spawn(Counter, name="c")
        sock = await asyncio.to_thread(_client, node)
        with sock:
            await asyncio.to_thread(raw.handshake, sock, name="c", address=real.address)
            ref = await node.remote(real.address, "/c")
            assert await ref.ask(Echo("the real one?"), timeout=3.0) == "the real one?"


# -- 9: an address that does not parse --------------------------------------------------------


async def test_an_unparseable_address_in_hello_is_refused_and_shutdown_is_clean(tmp_path) -> None:
    node = ActorSystem("p", listen=f"unix://{tmp_path}/p.sock")
    await node.__aenter__()
    try:

        def bad_address() -> str:
            with _client(node) as sock:
                sock.sendall(raw.frame(raw.hello(address="bogus:/nowhere")))
                return raw.goodbye(sock)

        assert "address" in await asyncio.to_thread(bad_address)
    finally:
        await node.shutdown()  # raised before: it tried to settle a transport for it


# -- 10: nothing kept per address or per watching connection ---------------------------


async def test_a_peer_per_address_is_not_kept_forever(caller, tmp_path) -> None:
    for n in range(20):
        with pytest.raises(Exception):  # noqa: B017 (nobody listens there)
            await caller.remote(f"unix://{tmp_path}/gone-{n}.sock", "/x")
    # Until this step of the test's task ends, the loop holds the handle that woke it:
    # on uvloop its args are the failed connect's future, whose error's traceback
    # reaches the frames that held the last peer. Released is "after that pass".
    await settle(1)
    gc.collect()
    node = caller._node
    assert [o for o in gc.get_objects() if isinstance(o, Peer) and o.node is node] == []


async def test_watchers_that_went_away_leave_nothing_on_the_actor(node) -> None:
    counter = node.lookup("/root/counter")
    for _ in range(10):
        async with ActorSystem("w") as watcher_node:
            ref = await watcher_node.remote(node.address, "/root/counter")
            seen: list[Any] = []
            from .nodeapp import Watcher

            await watcher_node.spawn(Watcher, ref, seen)
            assert await ref.ask(Echo("watched"), timeout=3.0) == "watched"
    assert counter is not None
    assert len(counter._slot.watchers) <= 1  # type: ignore[attr-defined]


# -- 11: a ref to this node's own missing path ---------------------------------------------


async def test_a_ref_to_a_missing_path_on_this_node_stays_here(node) -> None:
    ghost = await node.remote(node.address, "/nobody")
    with pytest.raises(ActorStopped):
        await ghost.ask(Echo("anyone?"), timeout=3.0)
    assert node.nodes() == [] and ghost.address == f"{node.address}/nobody"


# -- 12: max_frame exchanged ----------------------------------------------------------------


async def test_a_frame_over_the_peers_maximum_is_refused_at_the_sender(node, tmp_path) -> None:
    async with ActorSystem("small", listen=f"unix://{tmp_path}/m.sock", max_frame=64 * 1024) as b:
        await b.spawn(Counter, name="c")
        ref = await node.remote(b.address, "/c")  # node's own maximum is 16 MiB
        with pytest.raises(SerializationError, match="maximum frame of 65536"):
            await ref.tell(Blob(b"x" * 100_000))
        assert await ref.ask(Blob(b"x" * 1000), timeout=3.0) == 1000


# -- 13: one deadline for an ask ----------------------------------------------------------------


class Parked(Actor):
    """Holds `Add`s until `go` is set; never answers `Echo` (it sets `asked`)."""

    mailbox_capacity = 1

    def __init__(self, go: asyncio.Event, asked: asyncio.Event, never: asyncio.Event) -> None:
        super().__init__()
        self.go, self.asked, self.never = go, asked, never

    @handler
    async def add(self, msg: Add) -> None:
        await self.go.wait()

    @handler
    async def echo(self, msg: Echo) -> None:
        self.asked.set()
        await self.never.wait()


async def test_an_asks_timeout_counts_its_wait_for_room_in_the_window(node) -> None:
    go, asked, never = asyncio.Event(), asyncio.Event(), asyncio.Event()
    await node.spawn(Parked, go, asked, never, name="parked")
    clock = FakeClock()
    try:
        async with ActorSystem("a", clock=clock) as a:
            ref = await a.remote(node.address, "/parked")
            with pytest.raises(MailboxFull):
                for _ in range(WINDOW + 10):
                    ref.tell_nowait(Add(1))
            pending = asyncio.ensure_future(ref.ask(Echo("late"), timeout=1.0))
            await settle()  # it starts at 0 s and waits for room
            await clock.advance(0.7)
            assert not pending.done()  # still waiting for room
            go.set()  # room comes; the ask goes out and is never answered
            await asyncio.wait_for(asked.wait(), 10)
            await clock.advance(0.4)  # 1.1 s since the ask began
            with pytest.raises(AskTimeout):
                await asyncio.wait_for(pending, 5)
    finally:
        never.set()


# -- control frames: one typed decoder per kind ---------------------------------------------


@pytest.mark.parametrize(
    ("kind", "items", "says"),
    [
        (wire.Credit, ("/a", "3"), "a malformed CREDIT frame: n: Expected `int`, got `str`"),
        (wire.Credit, ("/a", 0), "a malformed CREDIT frame: n: Expected `int` >= 1"),
        (wire.Stop, (-1, "/a"), "a malformed STOP frame: request: Expected `int` >= 0"),
        (wire.Terminated, ("/a",), "a malformed TERMINATED frame: Expected `array` of at least"),
        (wire.Hello, (*raw.HELLO_HEAD, "n", "i", None, b"short", b"", 1), "HELLO frame: nonce"),
    ],
)
def test_a_malformed_control_frame_is_one_protocol_error_naming_the_field(
    kind, items, says
) -> None:
    with pytest.raises(wire.ProtocolError) as info:
        wire.decode(kind, wire.control(kind.KIND, *items))
    assert says in str(info.value)


def test_control_frames_round_trip_and_ignore_items_a_later_version_adds() -> None:
    credit = wire.Credit("/root/c", 64)
    assert wire.decode(wire.Credit, credit.frame()) == credit
    assert wire.decode(wire.Credit, wire.control(wire.CREDIT, "/root/c", 64, "new")) == credit
