"""Metrics kept by the kernel, and the frozen snapshot `system.metrics()` returns.

What each actor pays is in `HandlerStats`, made at its first turn (an actor
that never ran a handler has none): the handler runs counted, their total
time, a histogram of run time over the fixed buckets `BOUNDS`, the failures
and the highest mailbox depth seen. The dispatcher fills it from the clock
read it already makes after each handler (see dispatcher.py), so what a
message costs with metrics on is what it costs without: the run time is the
gap between two reads it makes anyway, and it is compared with a bound it
compares anyway (`handler.slow`'s, lowered to `BOUNDS[0]`). Only a run
longer than 1 us touches the histogram (a `bisect` and an add); the first
bucket (runs up to 1 us, most of them for a small handler) is not counted
per run but derived when a snapshot is taken: the runs counted minus those
in the other buckets. The count and the total time are added once per turn
(the total telescopes: consecutive runs share their reads).

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
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from .slot import Slot

__all__ = [
    "BOUNDS",
    "ActorMetrics",
    "ActorsView",
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

    __slots__ = ("counts", "failed", "handled", "high", "sum")

    def __init__(self) -> None:
        # Runs per bucket (the last of `BOUNDS`' buckets: longer than 10 s), up
        # to the longest run's bucket: made by the first run longer than 1 us
        # and lengthened by a longer one (an actor whose runs are all short
        # keeps a short list, or none). The first bucket stays 0 here: it is
        # `handled` minus the others, worked out by `seconds`.
        self.counts: list[int] | None = None
        self.handled = 0  # finished runs, added per turn
        self.sum = 0.0
        self.failed = 0
        self.high = 0  # the highest mailbox depth seen

    def seconds(self) -> HandlerSeconds:
        """The histogram, frozen now."""
        return _histogram(self.handled, self.sum, self.counts)


class ReportedStats(HandlerStats):
    """The figures of an actor served elsewhere (a worker process), as reported
    from there: `HandlerStats` with every bucket's count (the first one too:
    `handled` is their sum), plus `mailbox`, the depth of its mailbox there."""

    __slots__ = ("mailbox",)

    def __init__(self) -> None:
        super().__init__()
        self.counts = [0] * (len(BOUNDS) + 1)  # every bucket, as reported
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


def _histogram(handled: int, total: float, kept: Sequence[int] | None) -> HandlerSeconds:
    """`HandlerSeconds` from a `HandlerStats`' figures (its first bucket worked out)."""
    if not kept:  # every run took up to 1 us: all in the first bucket
        return HandlerSeconds((handled, *_EMPTY[1:]), total)
    rest = kept[1:]
    # Mid-turn (read from another thread, or by a handler) a long run may be in
    # its bucket before the turn adds it to `handled`: never below 0.
    first = handled - sum(rest)
    return HandlerSeconds((first if first > 0 else 0, *rest, *_EMPTY[len(kept) :]), total)


_CLASS_NAMES: dict[type, str] = {}  # "module:qualname" per actor class, made once

#: What a snapshot copies of a slot: actor class, kind, restarts, depth, highest
#: depth, handled, total time, failed, bucket counts (None: all in the first).
_Figures = tuple[type, str, int, int, int, int, float, int, "tuple[int, ...] | None"]


def _figures(slot: Slot) -> _Figures:
    stats = slot.stats
    depth = depth_of(slot)
    if stats is None:
        return (slot.actor_class, slot.kind, slot.restarts, depth, depth, 0, 0.0, 0, None)
    high = stats.high
    counts = stats.counts
    return (
        slot.actor_class,
        slot.kind,
        slot.restarts,
        depth,
        high if high > depth else depth,
        stats.handled,
        stats.sum,
        stats.failed,
        tuple(counts) if counts else None,
    )


class ActorsView(Mapping[str, ActorMetrics]):
    """`Metrics.actors`: every slot's figures as copied when the snapshot was
    taken (a tuple each: cheap for 10k actors), made into an `ActorMetrics` the
    first time it is read."""

    __slots__ = ("_made", "_raw")

    def __init__(self, slots: Mapping[str, Slot]) -> None:
        self._raw = {path: _figures(slot) for path, slot in list(slots.items())}
        self._made: dict[str, ActorMetrics] = {}

    def __getitem__(self, path: str) -> ActorMetrics:
        made = self._made.get(path)
        if made is None:
            cls, kind, restarts, depth, high, handled, total, failed, kept = self._raw[path]
            name = _CLASS_NAMES.get(cls)
            if name is None:
                name = _CLASS_NAMES.setdefault(cls, f"{cls.__module__}:{cls.__qualname__}")
            seconds = _histogram(handled, total, kept)
            made = self._made[path] = ActorMetrics(
                path=path,
                actor_class=name,
                kind=kind,
                handled=seconds.count,
                failed=failed,
                restarts=restarts,
                mailbox=depth,
                mailbox_high=high,
                handler_seconds=seconds,
            )
        return made

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, path: object) -> bool:
        return path in self._raw

    def __repr__(self) -> str:
        return f"ActorsView({dict(self)!r})"
