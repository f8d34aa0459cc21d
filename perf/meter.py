"""The one measuring helper: how much a reading changes across a block of code."""

from __future__ import annotations

import gc
import resource
import time
from collections.abc import Callable
from types import TracebackType

import psutil  # type: ignore[import-untyped]


class Meter:
    """`with meter: ...` stores `read()` after minus `read()` before in `delta`.

    `then`, if set, is called with the delta as soon as the block ends.
    """

    __slots__ = ("_read", "_start", "delta", "then")

    def __init__(self, read: Callable[[], float]) -> None:
        self._read = read
        self._start = 0.0
        self.delta: float | None = None
        self.then: Callable[[float], None] | None = None

    def __enter__(self) -> Meter:
        self._start = self._read()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.delta = self._read() - self._start
        if self.then is not None:
            self.then(self.delta)


def _rss() -> float:
    gc.collect()  # count live objects only, not garbage awaiting a collection
    return float(psutil.Process().memory_info().rss)


def _foreign_cpu() -> float:
    """CPU seconds used so far by processes other than this one and its children."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0)
    own = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        own += usage.ru_utime + usage.ru_stime
    return float(busy - own)


def stopwatch() -> Meter:
    """Elapsed wall-clock seconds."""
    return Meter(time.perf_counter)


def rss() -> Meter:
    """Growth of this process's resident set, in bytes."""
    return Meter(_rss)


def foreign_cpu() -> Meter:
    """CPU seconds other processes (and the hypervisor) took meanwhile: noise."""
    return Meter(_foreign_cpu)
