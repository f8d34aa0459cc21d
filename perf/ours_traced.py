"""Ours with tracing on (`ActorSystem(..., tracing=True)`), for the workloads
whose per-message cost tracing changes: the `ours/traced` column is what
tracing costs when it is on (API.md 11; reported, no target: off, it is
free). Each message is sent inside a span and handled in its own
`handle <MessageType>` span, recorded by OpenTelemetry's SDK provider and
exported nowhere (an exporter's cost is the exporter's)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from . import ours
from .meter import Meter

trace.set_tracer_provider(TracerProvider())
ours.SYSTEM_OPTIONS["tracing"] = True  # each measurement runs in its own process
_tracer = trace.get_tracer("perf")

Run = Callable[[int, Meter], Awaitable[None]]


def _in_a_span(workload: Run) -> Run:
    """The workload with a span current at the sender (the handlers' parent)."""

    @wraps(workload)
    async def run(n: int, meter: Meter) -> None:
        with _tracer.start_as_current_span("perf"):
            await workload(n, meter)

    return run


tell = _in_a_span(ours.tell)
tell_async = _in_a_span(ours.tell_async)
ask = _in_a_span(ours.ask)
ask_async = _in_a_span(ours.ask_async)

__all__ = ["ask", "ask_async", "tell", "tell_async"]
