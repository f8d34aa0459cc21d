"""OpenTelemetry traces: `ActorSystem(..., tracing=True)` (API.md 11).

With tracing on, the system's local refs (`TracedRef`) put what they send
(tell, tell_nowait, ask, ask_blocking) and what the system publishes into an
envelope, `Traced`, that carries the sender's OpenTelemetry context. An
actor's dispatch table resolves each envelope type once (`entry_for`), to a
handler that runs the real one inside a span `handle <MessageType>` whose
parent is the sender's span, with the attribute `actor.path`. Log events
emitted through `mycelium_actors.logs` inside the span carry `trace_id` (32
hex digits).

Across nodes and worker processes the context travels as W3C Trace Context
(`traceparent`, `tracestate`) through the kernel's `Tracing` seam: the remote
layer's `TracedRemoteRef` asks `outgoing` for the map to put in a TRACED
frame (docs/wire.md), and a tracing node's peer wraps what arrives with
`incoming`, so the far handler's span is a child of the sender's.
`pipe_to_self` results are wrapped with the context of the handler that
piped them (the piping task runs in it).

With tracing off (the default) none of this is in the path: the refs are
plain `LocalActorRef`s and `RemoteActorRef`s, untraced frames are the
protocol's plain TELL and ASK, and the dispatcher does not know envelopes exist.
OpenTelemetry is imported only when a system turns tracing on; without it
that is a `MyceliumError` naming the `otel` extra.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from . import logs
from .errors import MyceliumError
from .kernel.actor import Actor
from .kernel.messages import Envelope
from .kernel.ref import LocalActorRef
from .kernel.seams import set_tracing_factory
from .wire.registry import LIBRARY_IDS, wire_id

__all__ = ["Traced", "TracedRef", "trace_fields"]

#: The instrumentation scope of our spans.
SCOPE = "mycelium_actors"

# (opentelemetry.context, opentelemetry.trace, tracer, W3C propagator) once loaded
_otel: Any = None
_loading = threading.Lock()


def _load() -> Any:
    """Import OpenTelemetry once; MyceliumError naming the extra if it is missing."""
    global _otel
    if _otel is None:
        with _loading:
            if _otel is None:
                try:
                    from opentelemetry import context, trace
                    from opentelemetry.trace.propagation.tracecontext import (
                        TraceContextTextMapPropagator,
                    )
                except ImportError as exc:
                    raise MyceliumError(
                        "tracing=True needs OpenTelemetry: "
                        "pip install 'mycelium-actors[otel]' (opentelemetry-api)"
                    ) from exc
                # A proxy tracer: it follows a provider set after this call too.
                _otel = (
                    context,
                    trace,
                    trace.get_tracer(SCOPE),
                    TraceContextTextMapPropagator(),
                )
                logs.add_context_source(trace_fields)
    return _otel


def trace_fields() -> dict[str, Any]:
    """`{"trace_id": ...}` while a recording span is current, else `{}`."""
    if _otel is None:
        return {}
    span_context = _otel[1].get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {"trace_id": format(span_context.trace_id, "032x")}


class Traced(Envelope):
    """A message and the OpenTelemetry context current where it was sent.

    One subclass per message type (`traced_type`), so an actor's dispatch table
    resolves it once, with the inner handler's kind (sync or async)."""

    __slots__ = ("context",)
    inner: ClassVar[type] = object

    def __init__(self, message: Any, context: Any) -> None:
        super().__init__(message)
        self.context = context

    def __repr__(self) -> str:
        return f"Traced({self.message!r})"

    @classmethod
    def entry_for(cls, actor_class: Any) -> tuple[Callable[..., Any], int]:
        inner = cls.inner
        fn, kind = actor_class.dispatch_miss(inner)  # (resolves and caches the inner entry)
        tracer = _load()[2]
        name = f"handle {inner.__qualname__}"

        if not kind:

            def handle(instance: Actor, envelope: Traced) -> Any:
                with tracer.start_as_current_span(
                    name, context=envelope.context, attributes={"actor.path": instance.context.path}
                ):
                    return fn(instance, envelope.message)

            return handle, kind

        async def handle_async(instance: Actor, envelope: Traced) -> Any:
            with tracer.start_as_current_span(
                name, context=envelope.context, attributes={"actor.path": instance.context.path}
            ):
                return await fn(instance, envelope.message)

        return handle_async, kind


_TYPES: dict[type, type[Traced]] = {}


def traced_type(message_type: type) -> type[Traced]:
    """The envelope type for `message_type` (made once per type)."""
    traced = _TYPES.get(message_type)
    if traced is None:
        traced = _TYPES.setdefault(
            message_type,
            type(f"Traced[{message_type.__qualname__}]", (Traced,), {"inner": message_type}),
        )
    return traced


def wrap(message: Any) -> Traced:
    """`message` with the current OpenTelemetry context."""
    if isinstance(message, Envelope):
        return message  # type: ignore[return-value]  # already carries its sender's context
    return traced_type(type(message))(message, _otel[0].get_current())


def outgoing(message: Any) -> tuple[Any, dict[str, str] | None]:
    """For a frame: `message` out of its envelope, and the W3C trace context
    (`traceparent`, maybe `tracestate`) of the envelope's context, else of the
    current one; None when that holds no valid span."""
    context = None  # the current one
    if isinstance(message, Traced):
        context = message.context
        message = message.message
    carrier: dict[str, str] = {}
    _otel[3].inject(carrier, context)
    return message, carrier or None


def incoming(message: Any, carrier: dict[str, str] | None) -> Any:
    """`message` from a frame, in an envelope whose span's parent is the remote
    sender's span in `carrier` (none, or an invalid one: the span starts a trace).
    The library's own messages (the worker link's control messages) are handled
    without a span, as the framework's other messages are: returned as they are."""
    mtype = type(message)
    traced = _TYPES.get(mtype)
    if traced is None:
        if (wire_id(mtype) or 0) >= LIBRARY_IDS:
            return message
        traced = traced_type(mtype)
    return traced(message, _extracted(carrier))


def _extracted(carrier: dict[str, str] | None) -> Any:
    empty = _otel[0].Context()
    return empty if not carrier else _otel[3].extract(carrier, empty)


@contextmanager
def adopted(carrier: dict[str, str] | None) -> Iterator[None]:
    """While entered, the trace context in `carrier` is the current one (a
    publish from another node: `system.publish` wraps the current context)."""
    token = _otel[0].attach(_extracted(carrier))
    try:
        yield
    finally:
        _otel[0].detach(token)


class TracedRef(LocalActorRef[Any]):
    """A local ref of a tracing system: what it sends carries the trace context."""

    __slots__ = ()

    async def tell(self, message: Any) -> None:
        await LocalActorRef.tell(self, wrap(message))

    def tell_nowait(self, message: Any) -> None:
        LocalActorRef.tell_nowait(self, wrap(message))

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        return await LocalActorRef.ask(self, wrap(message), timeout)

    def ask_blocking(self, message: Any, timeout: float | None = 5.0) -> Any:
        return LocalActorRef.ask_blocking(self, wrap(message), timeout)


class _Tracing:
    ref_class = TracedRef
    wrap = staticmethod(wrap)
    outgoing = staticmethod(outgoing)
    incoming = staticmethod(incoming)
    adopted = staticmethod(adopted)


def _factory() -> _Tracing:
    _load()
    return _Tracing()


set_tracing_factory(_factory)
