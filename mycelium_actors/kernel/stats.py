"""Metrics kept by the kernel, and the frozen snapshot `system.metrics()` returns.

What each actor pays is in `HandlerStats`, made at its first turn (an actor
that never ran a handler has none): one histogram of handler run time over
the fixed buckets `BOUNDS`, its sum, the failures and the highest mailbox
depth seen. The dispatcher fills it from the clock read it already makes per
message (see dispatcher.py): a handler's time runs from the read before it to
the next read, which is the read before the next message, or, when the turn
ends, one read per turn. `handled` is the histogram's count, so counting a
message and timing it are the same two operations: a `bisect` and an add.

The per-system counters (asks, timeouts) live in `Counters`, shared by every
local ref of the system; dead letters were always counted by the system.

An actor served elsewhere (a worker process, workers/subprocess.py) runs no
dispatcher here: its slot's stats are a `ReportedStats`, which the executor
fills from what the worker reports, and which adds the depth of the mailbox
there to the one here.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from .slot import Slot

__all__ = [
    "BOUNDS",
    "ActorMetrics",
    "Counters",
    "HandlerSeconds",
    "HandlerStats",
    "Metrics",
    "NodeMetrics",
    "ReportedStats",
]

#: Upper bounds (seconds) of the handler-time buckets: 1 us to 10 s, four per
#: decade (each 10**0.25 = 1.78 times the last), and one more for what is
#: longer than 10 s. A run of `d` seconds falls in bucket `bisect_left(BOUNDS, d)`,
#: the first whose bound is >= d (Prometheus's `le` semantics).
BOUNDS: tuple[float, ...] = tuple(round(1e-6 * 10 ** (k / 4), 12) for k in range(29))
_EMPTY = (0,) * (len(BOUNDS) + 1)


class HandlerStats:
    """One actor's live figures, written by the thread that serves it."""

    __slots__ = ("counts", "failed", "high", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS) + 1)  # the last one: longer than 10 s
        self.sum = 0.0
        self.failed = 0
        self.high = 0  # the highest mailbox depth seen

    def seconds(self) -> HandlerSeconds:
        """The histogram, frozen now."""
        return HandlerSeconds(tuple(self.counts), self.sum)


class ReportedStats(HandlerStats):
    """The figures of an actor served elsewhere (a worker process), as reported
    from there: `HandlerStats`, plus `mailbox`, the depth of its mailbox there."""

    __slots__ = ("mailbox",)

    def __init__(self) -> None:
        super().__init__()
        self.mailbox = 0


class Counters:
    """The system's ask counters (shared by its refs; a plain add per ask)."""

    __slots__ = ("ask_timeouts", "asks")

    def __init__(self) -> None:
        self.asks = 0
        self.ask_timeouts = 0


@attrs.frozen
class HandlerSeconds:
    """A histogram of handler run times (seconds) over the fixed `BOUNDS`."""

    counts: tuple[int, ...] = _EMPTY  # per bucket, the last one above 10 s
    sum: float = 0.0

    bounds = BOUNDS

    @property
    def count(self) -> int:
        return sum(self.counts)

    def quantile(self, q: float) -> float:
        """The `q` quantile (0 <= q <= 1), exact to within one bucket: the upper
        bound of the bucket it falls in (10 s for the bucket above 10 s); 0.0
        when nothing was recorded."""
        if isinstance(q, bool) or not isinstance(q, int | float) or not 0.0 <= q <= 1.0:
            raise ValueError(f"a quantile is a number from 0 to 1, not {q!r}")
        total = self.count
        if not total:
            return 0.0
        rank = max(1, math.ceil(q * total))  # the rank-th smallest run
        seen = 0
        for index, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return BOUNDS[min(index, len(BOUNDS) - 1)]
        return BOUNDS[-1]  # not reached: seen ends at total >= rank


@attrs.frozen
class ActorMetrics:
    """One actor slot's figures in a `Metrics` snapshot."""

    path: str
    actor_class: str  # "module:qualname"
    kind: str  # "actor" | "supervisor" | "pool"
    handled: int  # finished handler runs, failed ones included
    failed: int  # handler runs that raised
    restarts: int
    mailbox: int  # depth now
    mailbox_high: int  # the highest depth seen
    handler_seconds: HandlerSeconds


@attrs.frozen
class NodeMetrics:
    """Traffic with one connected node (frames and their bytes, since connected)."""

    name: str
    frames_in: int
    frames_out: int
    bytes_in: int
    bytes_out: int


@attrs.frozen
class Metrics:
    """A frozen snapshot of a system's metrics (`system.metrics()`)."""

    actors: Mapping[str, ActorMetrics]
    dead_letters: int
    asks: int
    ask_timeouts: int
    nodes: Mapping[str, NodeMetrics]


def bucket_of(seconds: float) -> int:
    """The index of the bucket a run of `seconds` falls in (as the dispatcher counts)."""
    return bisect_left(BOUNDS, seconds)


def depth_of(slot: Slot) -> int:
    """What waits in a slot's mailbox: here, and for an actor served elsewhere,
    there too (as last reported)."""
    stats = slot.stats
    depth: int = slot.mailbox.depth
    return depth + stats.mailbox if type(stats) is ReportedStats else depth


def actor_metrics(slot: Slot) -> ActorMetrics:
    """The figures of one slot, now."""
    stats = slot.stats
    depth = depth_of(slot)
    cls = slot.actor_class
    if stats is None:
        seconds = HandlerSeconds()
        failed = 0
        high = depth
    else:
        seconds = stats.seconds()
        failed = stats.failed
        high = max(stats.high, depth)
    return ActorMetrics(
        path=slot.path,
        actor_class=f"{cls.__module__}:{cls.__qualname__}",
        kind=slot.kind,
        handled=seconds.count,
        failed=failed,
        restarts=slot.restarts,
        mailbox=depth,
        mailbox_high=high,
        handler_seconds=seconds,
    )
