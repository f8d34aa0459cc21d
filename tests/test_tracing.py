"""OpenTelemetry traces (API.md 11): `ActorSystem(tracing=True)` handles each
message in a span `handle <MessageType>` whose parent is the sender's span."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from spans import TRACER, named, parent_of

from mycelium_actors import (
    Actor,
    ActorRef,
    ActorSystem,
    MyceliumError,
    PinnedThread,
    UnhandledMessage,
    handler,
    logs,
    tracing,
)
from mycelium_actors.kernel.ref import LocalActorRef
from mycelium_actors.testing import Probe, capture_events, events_named, eventually


@attrs.frozen
class Ping:
    n: int


@attrs.frozen
class Slow:
    n: int


@attrs.frozen
class Relay:
    to: ActorRef[Any]


@attrs.frozen
class Log:
    pass


@attrs.frozen
class Nobody:
    pass


@attrs.frozen
class Boom:
    pass


@attrs.frozen
class Later:
    n: int


@attrs.frozen
class Done:
    n: int


class Echo(Actor):
    @handler
    def ping(self, msg: Ping) -> int:
        return msg.n + 1

    @handler
    async def slow(self, msg: Slow) -> int:
        return msg.n + 2

    @handler
    async def relay(self, msg: Relay) -> None:
        await msg.to.tell(Ping(0))

    @handler
    def boom(self, msg: Boom) -> None:
        raise RuntimeError("boom")

    @handler
    def log(self, msg: Log) -> None:
        logs.get_logger(path=self.context.path).info("test.inside")

    @handler
    def later(self, msg: Later) -> None:
        self.context.pipe_to_self(asyncio.sleep(0, msg.n), wrap=Done)

    @handler
    def done(self, msg: Done) -> None:
        self.done_with = msg.n


@pytest.fixture
async def traced() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("traced", tracing=True, kill_grace=0.5) as system:
        yield system


@pytest.mark.parametrize(("message", "answer"), [(Ping(1), 2), (Slow(1), 3)], ids=["sync", "async"])
async def test_an_ask_is_handled_in_a_child_of_the_askers_span(
    traced: ActorSystem, spans: InMemorySpanExporter, message: Any, answer: int
) -> None:
    echo = await traced.spawn(Echo, name="echo")
    with TRACER.start_as_current_span("asker") as asker:
        assert await echo.ask(message) == answer
    handled = named(spans, f"handle {type(message).__qualname__}")
    assert parent_of(handled) == asker.get_span_context().span_id
    assert handled.context.trace_id == asker.get_span_context().trace_id
    assert handled.attributes is not None and handled.attributes["actor.path"] == echo.path


async def test_a_tell_is_handled_in_a_child_of_the_tellers_span(
    traced: ActorSystem, spans: InMemorySpanExporter
) -> None:
    probe = await Probe.spawn(traced)
    with TRACER.start_as_current_span("teller") as teller:
        await probe.ref.tell(Ping(5))
    assert await probe.expect(Ping) == Ping(5)  # the handler sees the message, not an envelope
    handled = named(spans, "handle Ping")
    assert parent_of(handled) == teller.get_span_context().span_id


async def test_a_tell_from_a_handler_is_a_child_of_that_handlers_span(
    traced: ActorSystem, spans: InMemorySpanExporter
) -> None:
    first = await traced.spawn(Echo, name="first")
    probe = await Probe.spawn(traced)
    with TRACER.start_as_current_span("root") as root:
        await first.ask(Relay(probe.ref))
    await probe.expect(Ping)
    relay = named(spans, "handle Relay")
    ping = named(spans, "handle Ping")
    assert parent_of(relay) == root.get_span_context().span_id
    assert parent_of(ping) == relay.context.span_id
    assert ping.attributes is not None and ping.attributes["actor.path"] == probe.ref.path


async def test_a_published_message_is_handled_in_a_child_of_the_publishers_span(
    traced: ActorSystem, spans: InMemorySpanExporter
) -> None:
    echo = await traced.spawn(Echo, name="subscriber")
    with TRACER.start_as_current_span("publisher") as publisher:
        assert await traced.publish(Log()) == 1
    await echo.ask(Ping(0))  # handled after the published one
    handled = named(spans, "handle Log")
    assert parent_of(handled) == publisher.get_span_context().span_id


async def test_a_message_sent_outside_any_span_starts_a_trace(
    traced: ActorSystem, spans: InMemorySpanExporter
) -> None:
    echo = await traced.spawn(Echo)
    assert await echo.ask(Ping(1)) == 2
    assert named(spans, "handle Ping").parent is None


async def test_log_events_inside_the_span_carry_its_trace_id(
    traced: ActorSystem, spans: InMemorySpanExporter
) -> None:
    echo = await traced.spawn(Echo, name="logger")
    with capture_events() as events:
        await echo.ask(Log())
        await echo.ask(Ping(0))
    [inside] = events_named(events, "test.inside")
    assert inside["trace_id"] == format(named(spans, "handle Log").context.trace_id, "032x")
    assert all("trace_id" not in e for e in events if e["event"] != "test.inside")


async def test_a_crash_is_recorded_on_the_handlers_span(
    traced: ActorSystem, spans: InMemorySpanExporter
) -> None:
    echo = await traced.spawn(Echo)
    with pytest.raises(RuntimeError, match="boom"):
        await echo.ask(Boom())
    handled = named(spans, "handle Boom")
    assert handled.status.status_code is StatusCode.ERROR
    assert [e.name for e in handled.events] == ["exception"]


async def test_an_unhandled_message_is_named_as_sent(traced: ActorSystem) -> None:
    echo = await traced.spawn(Echo)
    with pytest.raises(UnhandledMessage, match="no handler for Nobody"):
        await echo.ask(Nobody())


async def test_tracing_is_off_by_default(system: ActorSystem, spans: InMemorySpanExporter) -> None:
    echo = await system.spawn(Echo)
    assert type(echo) is LocalActorRef
    with TRACER.start_as_current_span("asker"):
        assert await echo.ask(Ping(1)) == 2
    assert [s.name for s in spans.get_finished_spans()] == ["asker"]


def test_tracing_without_opentelemetry_is_an_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As if opentelemetry were not installed: its import fails (None in
    # sys.modules makes `import` raise ImportError), and nothing is loaded yet.
    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setattr(tracing, "_otel", None)
    with pytest.raises(MyceliumError, match=r"mycelium-actors\[otel\]"):
        ActorSystem("no-otel", tracing=True)


async def test_a_piped_result_is_handled_in_a_child_of_the_piping_handlers_span(
    traced: ActorSystem, spans: InMemorySpanExporter
) -> None:
    echo = await traced.spawn(Echo)
    await echo.tell(Later(3))
    await eventually(lambda: any(s.name == "handle Done" for s in spans.get_finished_spans()))
    assert parent_of(named(spans, "handle Done")) == named(spans, "handle Later").context.span_id


@pytest.mark.parametrize("executor", [None, PinnedThread()], ids=["system_loop", "pinned"])
async def test_an_ask_blocking_from_a_thread_is_handled_in_a_child_of_that_threads_span(
    traced: ActorSystem, spans: InMemorySpanExporter, executor: PinnedThread | None
) -> None:
    echo = await traced.spawn(Echo, executor=executor)

    def ask_in_a_span() -> int:
        with TRACER.start_as_current_span("thread") as thread:
            assert echo.ask_blocking(Ping(1)) == 2
            return thread.get_span_context().span_id

    thread = await asyncio.to_thread(ask_in_a_span)
    assert parent_of(named(spans, "handle Ping")) == thread


async def test_a_pinned_actors_tell_is_a_child_of_its_handlers_span(
    traced: ActorSystem, spans: InMemorySpanExporter
) -> None:
    pinned = await traced.spawn(Echo, executor=PinnedThread())
    probe = await Probe.spawn(traced)
    with TRACER.start_as_current_span("root"):
        await pinned.ask(Relay(probe.ref))
    await probe.expect(Ping)
    assert parent_of(named(spans, "handle Ping")) == named(spans, "handle Relay").context.span_id
