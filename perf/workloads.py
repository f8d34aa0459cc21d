"""The workloads and their targets, as data.

An *implementation* is a module (`ours`, `raw`, `pykka_threads`) with one
function per workload, named after it:

    def tell(n: int, meter: Meter) -> None | Awaitable[None]

It sets the workload up, runs exactly the measured part inside `with meter:`,
then tears down; a coroutine function is run with `asyncio.run`. The meter is
a stopwatch (figure: n / seconds) or an RSS probe (figure: bytes / n).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import attrs

from . import meter
from .meter import Meter

IMPLEMENTATIONS = {"ours": "perf.ours", "raw": "perf.raw", "pykka": "perf.pykka_threads"}
RING_SIZE = 100
T = TypeVar("T")


def ring_links(members: Sequence[T]) -> Iterator[tuple[T, T]]:
    """Each member with the next one, the last with the first."""
    return zip(members, [*members[1:], *members[:1]], strict=True)


@attrs.frozen
class Target:
    """Ours against `against` ("raw", "pykka", or "abs" for the figure itself)."""

    against: str
    value: float
    pinned: float | None = None  # a different bound when every process runs on one CPU

    def bound(self, pinned: bool) -> float:
        return self.pinned if pinned and self.pinned is not None else self.value


@attrs.frozen
class Workload:
    name: str
    title: str
    unit: str
    size: int
    targets: tuple[Target, ...]
    pykka_size: int | None = None  # pykka runs a thread per actor: fewer where that matters
    timed: bool = True  # a stopwatch, figure n/s (higher is better); else RSS, bytes/n
    teardown: bool = True  # False: the worker exits as soon as the meter is read

    def size_for(self, impl: str, scale: float) -> int:
        base = self.pykka_size if impl == "pykka" and self.pykka_size else self.size
        return max(1, round(base * scale))

    def new_meter(self) -> Meter:
        return meter.stopwatch() if self.timed else meter.rss()

    def figure(self, size: int, delta: float) -> float:
        return size / delta if self.timed else delta / size

    @property
    def better(self) -> Callable[[float, float], bool]:
        """`better(x, bound)`: does figure or ratio x meet the bound."""
        return operator.ge if self.timed else operator.le


WORKLOADS = (
    Workload(
        "tell",
        "tell throughput, 1 actor",
        "msgs/s",
        1_000_000,
        (Target("raw", 1.0), Target("pykka", 9.0, pinned=3.0)),
    ),
    Workload(
        "ask",
        "ask round trips, sequential",
        "round trips/s",
        100_000,
        (Target("raw", 0.7), Target("pykka", 7.0, pinned=2.5)),
    ),
    Workload(
        "ring",
        f"ring of {RING_SIZE} actors, token hops",
        "hops/s",
        100_000,
        (Target("pykka", 8.0),),
    ),
    Workload(
        "spawn_one",
        "spawn + stop, one at a time",
        "actors/s",
        10_000,
        (Target("abs", 30_000.0),),
    ),
    Workload(
        "spawn_batch",
        "spawn 10k, then stop all",
        "actors/s",
        10_000,
        (Target("abs", 30_000.0),),
    ),
    Workload(
        "memory",
        "RSS per idle actor",
        "bytes/actor",
        100_000,
        (Target("abs", 4096.0),),
        pykka_size=1_000,
        timed=False,
        # Stopping 100k actors measures nothing here and can take minutes (it
        # was quadratic in the number of top-level actors at b3c069d).
        teardown=False,
    ),
)
BY_NAME = {w.name: w for w in WORKLOADS}
