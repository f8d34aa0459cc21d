"""Trace context across nodes (API.md 11): a message sent to another node is
handled there in a span whose parent is the sender's span. Two nodes in this
process over every adapter (`url_for`, tests/remote/conftest.py; they share
this process's tracer provider, so every span is in one exporter), then nodes
and workers in other processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext
from spans import SPANS_FILE, TRACER, hex_id, named, parent_of, reported

from contracts.probe import Add, Echo, GetTotal, Greet
from mycelium_actors import ActorRef, ActorSystem, Pool, Subprocess
from mycelium_actors.remote.peer import Peer
from mycelium_actors.testing import capture_events, events_named, eventually
from mycelium_actors.wire import frames as wire
from mycelium_actors.wire.codec import Codec
from mycelium_actors.wire.frames import untraced

from . import raw
from .nodeapp import Counter, tree

CODEC = Codec()


@pytest.fixture
async def far(url_for: Callable[[str], str]) -> AsyncIterator[ActorSystem]:
    """Node "far", tracing, running the probe tree (/root/counter, /root/slow)."""
    async with ActorSystem("far", listen=url_for("far"), tracing=True) as system:
        await system.start(tree)
        yield system


@pytest.fixture
async def near(url_for: Callable[[str], str]) -> AsyncIterator[ActorSystem]:
    """Node "near", tracing, which sends to "far"."""
    async with ActorSystem("near", listen=url_for("near"), tracing=True) as system:
        yield system


async def _counter(near: ActorSystem, far: ActorSystem) -> ActorRef[Any]:
    assert far.address is not None
    return await near.remote(far.address, "/root/counter")


async def _tell(near: ActorSystem, far: ActorSystem) -> None:
    counter = await _counter(near, far)
    await counter.tell(Add(1))
    await eventually(lambda: any(s.name == "handle Add" for s in _finished()))


async def _tell_nowait(near: ActorSystem, far: ActorSystem) -> None:
    counter = await _counter(near, far)
    counter.tell_nowait(Add(1))
    await eventually(lambda: any(s.name == "handle Add" for s in _finished()))


async def _ask(near: ActorSystem, far: ActorSystem) -> None:
    assert await (await _counter(near, far)).ask(Add(1)) == 1


async def _ask_discovered(near: ActorSystem, far: ActorSystem) -> None:
    await _counter(near, far)  # connected: discover_cluster covers "far"
    [counter] = [r for r in await near.discover_cluster(Counter) if r.path == "/root/counter"]
    assert await counter.ask(Add(1)) == 1


async def _publish(near: ActorSystem, far: ActorSystem) -> None:
    await _counter(near, far)
    assert await near.publish_cluster(Add(1)) == 2  # /root/counter and /root/slow


def _finished() -> tuple[ReadableSpan, ...]:
    from spans import EXPORTER

    return EXPORTER.get_finished_spans()  # type: ignore[attr-defined, no-any-return]


SENDS: dict[str, Callable[[ActorSystem, ActorSystem], Awaitable[None]]] = {
    "tell": _tell,
    "tell_nowait": _tell_nowait,
    "ask": _ask,
    "ask_discovered": _ask_discovered,
    "publish_cluster": _publish,
}


@pytest.mark.parametrize("send", SENDS.values(), ids=SENDS.keys())
async def test_a_message_to_another_node_is_handled_in_a_child_of_the_senders_span(
    near: ActorSystem, far: ActorSystem, spans: InMemorySpanExporter, send: Any
) -> None:
    with TRACER.start_as_current_span("sender") as sender:
        await send(near, far)
    handled = [s for s in spans.get_finished_spans() if s.name == "handle Add"]
    assert handled
    for span in handled:
        assert parent_of(span) == sender.get_span_context().span_id
        assert span.context.trace_id == sender.get_span_context().trace_id
        assert span.parent is not None and span.parent.is_remote
        assert span.attributes is not None
        assert span.attributes["actor.path"] in ("/root/counter", "/root/slow")


async def test_an_ask_blocking_from_a_thread_carries_that_threads_span(
    near: ActorSystem, far: ActorSystem, spans: InMemorySpanExporter
) -> None:
    counter = await _counter(near, far)

    def ask_in_a_span() -> int:
        with TRACER.start_as_current_span("thread") as thread:
            assert counter.ask_blocking(Add(1)) == 1
            return thread.get_span_context().span_id

    thread_span = await asyncio.to_thread(ask_in_a_span)
    assert parent_of(named(spans, "handle Add")) == thread_span


async def test_a_ref_inside_a_message_carries_the_far_handlers_span_back(
    near: ActorSystem, far: ActorSystem, spans: InMemorySpanExporter
) -> None:
    """near asks far's counter to ask near's echo: one trace across both nodes."""
    echo = await near.spawn(Counter, name="echo")
    counter = await _counter(near, far)
    with TRACER.start_as_current_span("root") as root:
        assert await counter.ask(Greet(echo, "hi")) == "hi"
    greet = named(spans, "handle Greet")
    back = named(spans, "handle Echo")
    assert parent_of(greet) == root.get_span_context().span_id
    assert parent_of(back) == greet.context.span_id
    assert back.context.trace_id == root.get_span_context().trace_id
    assert back.attributes is not None and back.attributes["actor.path"] == echo.path


async def test_a_message_sent_outside_any_span_goes_untraced_and_starts_a_trace_there(
    near: ActorSystem, far: ActorSystem, spans: InMemorySpanExporter
) -> None:
    assert await (await _counter(near, far)).ask(Add(1)) == 1
    assert named(spans, "handle Add").parent is None


async def test_a_node_that_does_not_trace_handles_traced_messages_plainly(
    near: ActorSystem, url_for: Callable[[str], str], spans: InMemorySpanExporter
) -> None:
    async with ActorSystem("plain", listen=url_for("plain")) as plain:
        await plain.start(tree)
        counter = await _counter(near, plain)
        with TRACER.start_as_current_span("sender"):
            await counter.tell(Add(2))
            assert await counter.ask(Add(1)) == 3
            assert await near.publish_cluster(Add(1)) == 2
        assert await counter.ask(GetTotal()) == 4
    assert [s.name for s in spans.get_finished_spans()] == ["sender"]


@pytest.mark.parametrize("tracing", [False, True], ids=["off", "on-outside-any-span"])
async def test_an_untraced_message_is_the_version_2_frame_byte_for_byte(
    far: ActorSystem,
    url_for: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
    tracing: bool,
) -> None:
    frames: list[bytes] = []
    receive = Peer.frame_received

    def record(peer: Peer, frame: bytes) -> None:
        frames.append(bytes(frame))
        receive(peer, frame)

    monkeypatch.setattr(Peer, "frame_received", record)
    async with ActorSystem("sender", listen=url_for("sender"), tracing=tracing) as sender:
        counter = await _counter(sender, far)
        await counter.tell(Add(1))
        assert await counter.ask(Add(1)) == 2
    tail = b"\x00\x0d/root/counter" + CODEC.encode(Add(1))  # u16 path length, path, body
    data = [frame for frame in frames if frame[:1] in (b"T", b"A", b"t")]
    assert data == [b"T" + tail, b"A" + data[1][1:5] + tail]


async def test_a_traced_message_is_its_frame_behind_the_trace_context(
    near: ActorSystem, far: ActorSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames: list[bytes] = []

    def record(frame: bytes) -> tuple[bytes, bytes]:
        frames.append(frame)
        return untraced(frame)

    monkeypatch.setattr(wire, "untraced", record)
    counter = await _counter(near, far)
    with TRACER.start_as_current_span("sender") as sender:
        await counter.tell(Add(1))
        context = sender.get_span_context()
    await eventually(lambda: frames)
    size = int.from_bytes(frames[0][1:3], "big")
    assert CODEC.decode_value(b"\0\0\0\0" + frames[0][3 : 3 + size]) == {
        "traceparent": f"00-{hex_id(context.trace_id, 32)}-{hex_id(context.span_id)}"
        f"-{context.trace_flags:02x}"
    }
    assert frames[0][3 + size :] == b"T\x00\x0d/root/counter" + CODEC.encode(Add(1))


# -- raw TRACED frames from a peer ----------------------------------------------------------


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ActorSystem]:
    async with ActorSystem("s", listen=f"unix://{tmp_path}/s.sock", tracing=True) as system:
        await system.start(tree)
        yield system


def _traced_ask(context: bytes, request: int, message: Any) -> bytes:
    inner = raw.ask_frame(request, b"/root/counter", CODEC.encode(message))
    return bytes((wire.TRACED,)) + len(context).to_bytes(2, "big") + context + inner


def _ask_raw(node: ActorSystem, frame: bytes) -> tuple[int, int, bytes]:
    assert node.address is not None
    with raw.connect(node.address) as sock:
        raw.handshake(sock)
        sock.sendall(raw.frame(frame))
        return raw.reply(sock)


BAD_CONTEXTS = {  # the context bytes, and whether the node logs it (once per connection)
    "not_msgpack": (b"\xc1", True),
    "not_a_map": (CODEC.encode_value(["00-ab"])[4:], True),
    "int_values": (CODEC.encode_value({"traceparent": 1})[4:], True),
    "bad_traceparent": (CODEC.encode_value({"traceparent": "00-zz-zz-01"})[4:], False),
}


@pytest.mark.parametrize(("context", "logged"), BAD_CONTEXTS.values(), ids=BAD_CONTEXTS.keys())
async def test_a_trace_context_that_does_not_parse_is_ignored(
    node: ActorSystem, spans: InMemorySpanExporter, context: bytes, logged: bool
) -> None:
    """W3C's rule: a context that does not parse starts a new trace; the message
    is handled as any other (a malformed map is logged, a bad value is not)."""
    with capture_events() as events:
        request, status, payload = await asyncio.to_thread(
            _ask_raw, node, _traced_ask(context, 7, Echo("hi"))
        )
    assert (request, status, CODEC.decode_value(payload)) == (7, wire.OK, "hi")
    assert named(spans, "handle Echo").parent is None
    assert len(events_named(events, "node.trace_context_ignored")) == int(logged)


@pytest.mark.parametrize(
    "frame",
    [b"t\x00", b"t\x00\x05ab", b"t\x00\x00", b"t\x00\x00" + wire.Ping().frame()],
    ids=["no_length", "context_past_the_end", "nothing_inside", "not_a_tell_or_ask"],
)
async def test_a_truncated_traced_frame_closes_that_connection_only(
    node: ActorSystem, frame: bytes
) -> None:
    def send_it() -> None:
        assert node.address is not None
        with raw.connect(node.address) as sock:
            raw.handshake(sock)
            sock.sendall(raw.frame(frame))
            with pytest.raises(ConnectionError):
                while True:
                    raw.read_frame(sock)

    with capture_events() as events:
        await asyncio.to_thread(send_it)
    [refused] = events_named(events, "node.refused")
    assert "TRACED" in refused["reason"]
    request, status, _ = await asyncio.to_thread(
        _ask_raw, node, _traced_ask(CODEC.encode_value({})[4:], 1, Echo("still"))
    )
    assert (request, status) == (1, wire.OK)


# -- across OS processes: their spans come back through a file (tests/spans.py) ------------


@pytest.fixture
def span_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the processes this test starts record their spans."""
    path = tmp_path / "spans.jsonl"
    monkeypatch.setenv(SPANS_FILE, str(path))
    return path


def _handled_there(span_file: Path, *names: str) -> list[list[Any]] | None:
    """The spans called `names` that the other process reported, in that order, once all are."""
    found = {span[0]: span for span in reported(span_file)}
    return [found[name] for name in names] if all(name in found for name in names) else None


async def _echo_then_add(ref: ActorRef[Any]) -> tuple[SpanContext, int]:
    """Ask an echo in this thread's span, then an add from another thread in a span of
    its own (a worker's parent sends that one through the mailbox and the relay)."""
    with TRACER.start_as_current_span("sender") as sender:
        assert await ref.ask(Echo("hi")) == "hi"

    def add_in_a_span() -> int:
        with TRACER.start_as_current_span("thread") as thread:
            ref.ask_blocking(Add(1))
            return thread.get_span_context().span_id

    thread = await asyncio.to_thread(add_in_a_span)
    return sender.get_span_context(), thread


def _check_parents(
    handled: list[list[Any]], path: str, sender: SpanContext, thread: int, spans: Any
) -> None:
    [echo, add] = handled
    assert echo[1:] == [hex_id(sender.trace_id, 32), hex_id(sender.span_id), path]
    assert add[1:] == [hex_id(named(spans, "thread").context.trace_id, 32), hex_id(thread), path]


async def test_a_node_in_another_process_continues_the_senders_trace(
    tmp_path: Path, span_file: Path, spans: InMemorySpanExporter
) -> None:
    from .test_node_processes import NodeProcess

    node = NodeProcess(f"unix://{tmp_path}/far.sock", "--tracing")
    try:
        async with ActorSystem("near", tracing=True) as near:
            counter = await near.remote(node.address, "/root/counter")
            sender, thread = await _echo_then_add(counter)
    finally:
        node.stop()
    handled = await eventually(lambda: _handled_there(span_file, "handle Echo", "handle Add"))
    _check_parents(handled, counter.path, sender, thread, spans)


async def _worker(system: ActorSystem) -> tuple[ActorRef[Any], str]:
    return await system.spawn(Counter, name="counter", executor=Subprocess()), "/counter"


async def _pool(system: ActorSystem) -> tuple[ActorRef[Any], str]:
    pool = Pool(Counter, size=1, name="counter", executor=Subprocess())
    return await system.start(pool), "/counter/0"


@pytest.mark.parametrize("start", [_worker, _pool], ids=["subprocess", "pool"])
async def test_a_worker_process_continues_the_senders_trace(
    span_file: Path, spans: InMemorySpanExporter, start: Any
) -> None:
    async with ActorSystem("parent", tracing=True) as parent:
        counter, path = await start(parent)
        sender, thread = await _echo_then_add(counter)
        handled = await eventually(lambda: _handled_there(span_file, "handle Echo", "handle Add"))
    _check_parents(handled, path, sender, thread, spans)
    # The worker link's own messages (start, stop, the exit poll) are handled without a span.
    assert {span[3] for span in reported(span_file)} == {path}
