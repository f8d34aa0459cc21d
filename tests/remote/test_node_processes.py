"""A node in another OS process: killed, frozen, restarted, fed garbage."""

from __future__ import annotations

import asyncio
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.probe import Add, Echo, GetTotal, Hold
from mycelium_actors import ActorSystem, SerializationError, Terminated, TransportError
from mycelium_actors.testing import eventually

from . import raw
from .nodeapp import Watcher

ROOT = Path(__file__).resolve().parents[2]


class NodeProcess:
    """`python -m tests.remote.nodeapp` listening at a unix socket in a temp dir."""

    def __init__(self, url: str, *extra: str, name: str = "far") -> None:
        self.url = url
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.remote.nodeapp", name, url, *extra],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()  # bounded by the pytest timeout
        assert line.startswith(url.split("://")[0]), f"the node did not start: {line!r}"
        self.address = line

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()


@contextmanager
def started_nodes(make: Callable[..., NodeProcess]) -> Iterator[Callable[..., NodeProcess]]:
    """`make`, remembering every node it starts; all of them stopped on exit."""
    started: list[NodeProcess] = []

    def spawn(*args: str, **kwargs: str) -> NodeProcess:
        node = make(*args, **kwargs)
        started.append(node)
        return node

    try:
        yield spawn
    finally:
        for node in started:
            node.stop()


@pytest.fixture
def spawn_node(tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    def make(*extra: str, name: str = "far") -> NodeProcess:
        return NodeProcess(f"unix://{tmp_path}/{name}.sock", *extra)

    with started_nodes(make) as spawn:
        yield spawn


@pytest.fixture
async def here() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("here", heartbeat_timeout=1.0) as system:
        yield system


async def test_a_node_killed_mid_ask_fails_the_ask_and_its_tells_in_flight(
    spawn_node, here
) -> None:
    """The ask fails with TransportError at once; tells not yet taken in by the
    full mailbox (no credit back) are dead letters here (at most once)."""
    far = spawn_node()
    ref = await here.remote(far.address, "/root/slow")  # mailbox capacity 2
    assert await ref.ask(Echo("alive")) == "alive"
    notices: list[Terminated] = []
    await here.spawn(Watcher, ref, notices)
    await ref.tell(Hold(30.0))  # parks the handler: 2 more fit, the rest wait there
    for n in range(10):
        await ref.tell(Add(n))
    held = asyncio.ensure_future(ref.ask(Echo("never answered"), timeout=None))
    counter = await here.remote(far.address, "/root/counter")
    assert await counter.ask(Echo("x")) == "x"  # sent after them: they have all arrived
    before = here.dead_letters
    started = time.monotonic()
    far.proc.send_signal(signal.SIGKILL)
    with pytest.raises(TransportError):
        await asyncio.wait_for(held, 5)
    assert time.monotonic() - started < 5 and not ref.is_alive
    assert here.dead_letters - before >= 8  # 2 fit in the mailbox, the rest were in flight
    await eventually(lambda: notices)
    assert [n.reason for n in notices] == ["connection_lost"]


async def test_a_silent_node_is_down_within_the_heartbeat_timeout(spawn_node, here) -> None:
    """SIGSTOP keeps its socket open but it never answers: heartbeats find it."""
    far = spawn_node()
    ref = await here.remote(far.address, "/root/counter")
    assert await ref.ask(Echo("alive")) == "alive"
    held = asyncio.ensure_future(ref.ask(Echo("frozen"), timeout=None))
    far.proc.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(TransportError, match="heartbeat"):
            await asyncio.wait_for(held, 1.0 * 5)  # heartbeat_timeout 1 s, 5x margin
        assert here.nodes() == []
    finally:
        far.proc.send_signal(signal.SIGCONT)


async def test_the_next_use_reconnects_to_a_restarted_node(spawn_node, here) -> None:
    first = spawn_node()
    ref = await here.remote(first.address, "/root/counter")
    assert await ref.ask(Add(5)) == 5
    first.stop()
    await eventually(lambda: not ref.is_alive)
    second = spawn_node()  # the same socket path, a new incarnation
    assert second.address == first.address
    assert await ref.ask(GetTotal()) == 0  # a new process: a fresh counter
    (info,) = here.nodes()
    assert info.name == "far"


async def test_two_nodes_connecting_to_each_other_at_once_list_each_other_once(
    tmp_path: Path,
) -> None:
    async with (
        ActorSystem("left", listen=f"unix://{tmp_path}/left.sock") as left,
        ActorSystem("right", listen=f"unix://{tmp_path}/right.sock") as right,
    ):
        await left.spawn(_counter(), name="c")
        await right.spawn(_counter(), name="c")
        to_right, to_left = await asyncio.gather(
            left.remote(right.address, "/c"), right.remote(left.address, "/c")
        )
        assert await to_right.ask(Add(1)) == 1 and await to_left.ask(Add(2)) == 2
        assert [n.name for n in left.nodes()] == ["right"]
        assert [n.name for n in right.nodes()] == ["left"]


def _counter() -> type:
    from .nodeapp import Counter

    return Counter


# -- garbage on the socket ------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    node = NodeProcess(f"unix://{tmp_path_factory.mktemp('fuzz')}/fuzz.sock")
    yield node
    node.stop()


def _connect(node: NodeProcess) -> socket.socket:
    return raw.connect(node.address)


def _kind_then(kind: int, rest: bytes) -> bytes:
    return bytes([kind]) + rest


def _tell(path: bytes, wire_id: int, body: bytes) -> bytes:
    return raw.tell_frame(path, struct.pack(">I", wire_id) + body)


frames = st.one_of(
    st.binary(max_size=200),  # anything at all
    st.builds(_kind_then, st.sampled_from(b"TARCSWXQPGHVK"), st.binary(max_size=120)),
    st.builds(  # well-formed TELL framing around bodies that are not what they claim
        _tell,
        st.sampled_from([b"/root/counter", b"/nobody", b"/"]),
        st.sampled_from([0, 301, 302, 303, 999, 2**31 - 1]),
        st.binary(max_size=60),
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(frame=frames)
def test_garbage_after_the_handshake_never_stops_the_node(fuzz_target, frame) -> None:
    with _connect(fuzz_target) as sock:
        raw.handshake(sock)
        sock.sendall(raw.frame(frame))
    _still_serving(fuzz_target)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=300))
def test_garbage_before_the_handshake_never_stops_the_node(fuzz_target, data) -> None:
    with _connect(fuzz_target) as sock:
        sock.sendall(data)
    _still_serving(fuzz_target)


def _still_serving(node: NodeProcess) -> None:
    assert node.proc.poll() is None, "the node died"


async def test_the_fuzzed_node_still_answers_and_did_not_grow(fuzz_target) -> None:
    """Runs after the fuzz tests (same module): the node answers, RSS grew < 10 MiB."""
    process = psutil.Process(fuzz_target.proc.pid)
    async with ActorSystem("checker") as checker:
        ref = await checker.remote(fuzz_target.address, "/root/counter")
        assert await ref.ask(Echo("still here")) == "still here"
        before = process.memory_info().rss
        for _ in range(300):
            with _connect(fuzz_target) as sock:
                raw.handshake(sock)
                sock.sendall(raw.frame(b"T\x00\x0d/root/counter\x00\x00\x01\x2d\xc1"))
        assert await ref.ask(Echo("and now")) == "and now"
        assert process.memory_info().rss - before < 10 * 1024 * 1024


def test_a_frame_that_fails_to_decode_is_refused_and_the_connection_stays(fuzz_target) -> None:
    """An unknown wire id and a wrongly typed field get SerializationError replies;
    the next good ask on the same connection is answered."""
    from mycelium_actors.wire import frames as wire
    from mycelium_actors.wire.codec import Codec
    from mycelium_actors.wire.exceptions import decode_error

    good = Codec().encode(Echo("fine"))
    wrong_type = struct.pack(">I", 301) + b"\x81\xa4text\x05"  # {"text": 5}
    with _connect(fuzz_target) as sock:
        raw.handshake(sock)
        for request, body in ((1, struct.pack(">I", 999) + b"\x80"), (2, wrong_type)):
            sock.sendall(raw.frame(raw.ask_frame(request, b"/root/counter", body)))
            got, status, payload = raw.reply(sock)
            assert (got, status) == (request, wire.FAILED)
            assert isinstance(decode_error(payload), SerializationError)
        sock.sendall(raw.frame(raw.ask_frame(3, b"/root/counter", good)))
        assert raw.reply(sock)[:2] == (3, wire.OK)


def test_a_frame_over_the_maximum_closes_only_that_connection(fuzz_target) -> None:
    with _connect(fuzz_target) as sock:
        raw.handshake(sock)
        sock.sendall(struct.pack(">I", 64 * 1024 * 1024))  # announces 64 MiB: over 16 MiB
        while sock.recv(4096):  # a ping may still come before the close
            pass  # recv raises on the 5 s socket timeout if it never closes
    _still_serving(fuzz_target)
