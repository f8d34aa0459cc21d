"""Observability (API.md 11): the snapshot types of `system.metrics()` and a
Prometheus endpoint.

`system.metrics()` is the kernel's (kernel/stats.py keeps the figures); this
module names its types for users and serves them to Prometheus:

    host, port = await mycelium_actors.metrics.serve(system, port=0)

serves `/metrics` in the Prometheus text format until the system stops. It
needs the `metrics` extra (prometheus-client): the series are built with
prometheus-client's collector interface and written by its own exposition
code. The HTTP side is a small asyncio server on the system's loop, so a
scrape reads the system where it lives (no thread, no lock). It binds to
loopback unless told otherwise.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import logs
from .errors import MyceliumError
from .kernel.stats import (
    BOUNDS,
    ActorMetrics,
    HandlerSeconds,
    Metrics,
    NodeMetrics,
)

if TYPE_CHECKING:
    from .kernel.system import ActorSystem

__all__ = [
    "BOUNDS",
    "ActorMetrics",
    "HandlerSeconds",
    "Metrics",
    "NodeMetrics",
    "collector",
    "serve",
]

_MAX_REQUEST = 8192  # bytes of request line and headers we read before refusing
_READ_TIMEOUT = 10.0  # seconds a client may take to send its request
_LE = [repr(bound) for bound in BOUNDS]  # the histogram's `le` labels, as Prometheus prints them


def _prometheus() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise MyceliumError(
            "serving metrics needs prometheus-client: pip install 'mycelium-actors[metrics]'"
        ) from None
    return prometheus_client


def collector(system: ActorSystem) -> Any:
    """A prometheus-client collector of `system`'s metrics (register it in your
    own registry to serve them your way); `serve` uses one."""
    _prometheus()
    return _Collector(system)


class _Collector:
    """prometheus-client's collector interface: `collect()` yields metric families."""

    def __init__(self, system: ActorSystem) -> None:
        self.system = system

    def describe(self) -> list[Any]:
        return []  # unchecked: the families depend on what lives at scrape time

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        system = self.system
        m = system.metrics()
        labels = ["path", "actor_class"]
        handled = CounterMetricFamily(
            "mycelium_messages_handled",
            "Finished handler runs, failed ones included",
            labels=labels,
        )
        failures = CounterMetricFamily(
            "mycelium_handler_failures", "Handler runs that raised", labels=labels
        )
        restarts = CounterMetricFamily(
            "mycelium_restarts", "Restarts of the actor's slot", labels=labels
        )
        depth = GaugeMetricFamily("mycelium_mailbox_depth", "Messages queued now", labels=labels)
        high = GaugeMetricFamily(
            "mycelium_mailbox_high", "The highest mailbox depth seen", labels=labels
        )
        seconds = HistogramMetricFamily(
            "mycelium_handler_seconds",
            "Handler run time (an async handler until it returns)",
            labels=labels,
        )
        for key, a in _series(m, system.metrics_max_paths):
            handled.add_metric(key, a.handled)
            failures.add_metric(key, a.failed)
            restarts.add_metric(key, a.restarts)
            depth.add_metric(key, a.mailbox)
            high.add_metric(key, a.mailbox_high)
            seconds.add_metric(key, _buckets(a.handler_seconds), a.handler_seconds.sum)
        yield from (handled, failures, restarts, depth, high, seconds)
        yield CounterMetricFamily(
            "mycelium_dead_letters", "Messages that could not be delivered", value=m.dead_letters
        )
        yield CounterMetricFamily("mycelium_asks", "Asks made through this system", value=m.asks)
        yield CounterMetricFamily(
            "mycelium_ask_timeouts", "Asks that got no reply in time", value=m.ask_timeouts
        )
        traffic = [
            ("frames_in", "Frames received from the node"),
            ("frames_out", "Frames sent to the node"),
            ("bytes_in", "Bytes of frames received from the node"),
            ("bytes_out", "Bytes of frames sent to the node"),
        ]
        for field, text in traffic:
            family = CounterMetricFamily(f"mycelium_node_{field}", text, labels=["node"])
            for name, node in m.nodes.items():
                family.add_metric([name], getattr(node, field))
            yield family


def _series(m: Metrics, max_paths: int) -> list[tuple[list[str], ActorMetrics]]:
    """Per actor (labels path, actor_class), or past `max_paths` live actors one
    series per class, summed, with path "*" (labels never grow without bound)."""
    if len(m.actors) <= max_paths:
        return [([a.path, a.actor_class], a) for a in m.actors.values()]
    by_class: dict[str, ActorMetrics] = {}
    for a in m.actors.values():
        seen = by_class.get(a.actor_class)
        by_class[a.actor_class] = a if seen is None else _add(seen, a)
    return [(["*", cls], a) for cls, a in by_class.items()]


def _add(x: ActorMetrics, y: ActorMetrics) -> ActorMetrics:
    hx, hy = x.handler_seconds, y.handler_seconds
    return ActorMetrics(
        path="*",
        actor_class=x.actor_class,
        kind=x.kind,
        handled=x.handled + y.handled,
        failed=x.failed + y.failed,
        restarts=x.restarts + y.restarts,
        mailbox=x.mailbox + y.mailbox,
        mailbox_high=max(x.mailbox_high, y.mailbox_high),
        handler_seconds=HandlerSeconds(
            tuple(a + b for a, b in zip(hx.counts, hy.counts, strict=True)), hx.sum + hy.sum
        ),
    )


def _buckets(h: HandlerSeconds) -> list[tuple[str, int]]:
    """Cumulative (le, count) pairs, as Prometheus histograms count."""
    out = []
    total = 0
    for le, n in zip(_LE, h.counts, strict=False):
        total += n
        out.append((le, total))
    out.append(("+Inf", total + h.counts[-1]))
    return out


async def serve(system: ActorSystem, port: int = 0, host: str = "127.0.0.1") -> tuple[str, int]:
    """Serve `system`'s metrics at `http://host:port/metrics` until it stops.

    Port 0 picks a free one; returns the bound `(host, port)`. Raises
    `MyceliumError` without prometheus-client, or when metrics are off, and
    `OSError` when the address cannot be bound."""
    prometheus = _prometheus()
    if not system.running:
        raise MyceliumError(f"actor system {system.name} is not running")
    system.metrics()  # metrics=False: MyceliumError now, not at the first scrape
    registry = prometheus.CollectorRegistry(auto_describe=False)
    registry.register(_Collector(system))

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _answer(reader, writer, prometheus, registry)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, asyncio.LimitOverrunError):
            pass  # a client that went away or never finished its request
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port, limit=_MAX_REQUEST)
    bound = server.sockets[0].getsockname()
    system.run_in_background(_until_stopped(server)).set_name("metrics")
    logs.get_logger(system=system.name).info(
        "metrics.listening", url=f"http://{_url_host(bound[0])}:{bound[1]}/metrics"
    )
    return str(bound[0]), int(bound[1])


async def _answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, prometheus: Any, registry: Any
) -> None:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
    method, _, rest = head.partition(b" ")
    target = rest.partition(b" ")[0].partition(b"?")[0]
    if method not in (b"GET", b"HEAD"):
        status, body, kind = "405 Method Not Allowed", b"GET /metrics\n", "text/plain"
    elif target != b"/metrics":
        status, body, kind = "404 Not Found", b"metrics are at /metrics\n", "text/plain"
    else:
        status, body, kind = (
            "200 OK",
            prometheus.generate_latest(registry),
            prometheus.CONTENT_TYPE_LATEST,
        )
    writer.write(
        f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    if method != b"HEAD":
        writer.write(body)
    await writer.drain()


async def _until_stopped(server: asyncio.Server) -> None:
    """A task of the system's: cancelled when it stops, which closes the server."""
    try:
        await asyncio.Event().wait()
    finally:
        server.close()  # the listening sockets; a scrape being answered finishes


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
