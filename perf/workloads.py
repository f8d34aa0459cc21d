"""The workloads and their targets, as data.

An *implementation* is a module (`ours`, `raw`, `pykka_threads`, `ours_off`) with one
function per workload, named after it:

    def tell(n: int, meter: Meter) -> None | Extras | Awaitable[None | Extras]

It sets the workload up, runs exactly the measured part inside `with meter:`,
then tears down; a coroutine function is run with `loops.run` (`asyncio.run`
on the loop that `--loop` picks). The meter is a stopwatch (figure: n /
seconds) or an RSS probe (figure: bytes / n). It may return *extras*, named
figures beyond the meter's (latency percentiles, a loss count); a workload's
`headline` extra, if set, replaces the meter's figure. An implementation
without an equivalent has no such function.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import attrs

from . import meter
from .meter import Meter

IMPLEMENTATIONS = {
    "ours": "perf.ours",
    "raw": "perf.raw",
    "pykka": "perf.pykka_threads",
    "off": "perf.ours_off",  # ours with `ActorSystem(..., metrics=False)`: what metrics cost
    "traced": "perf.ours_traced",  # ours with `tracing=True`: what tracing costs (reported)
}
RING_SIZE = 100
CRASH_STORM_CHILDREN = 100
TELLS_PER_CRASH = 10  # crash_storm: normal tells between two crashes
POOL_SIZE = 4  # pool_tell, pool_ask: workers behind the pool's ref
SLOW_HANDLER_US = 100  # fairness_slow: what each flooded handler costs
T = TypeVar("T")
Extras = dict[str, float]


def ring_links(members: Sequence[T]) -> Iterator[tuple[T, T]]:
    """Each member with the next one, the last with the first."""
    return zip(members, [*members[1:], *members[:1]], strict=True)


@attrs.frozen
class Target:
    """Ours against `against`: "raw", "pykka", "abs" (the figure itself), or the
    name of one of our extras."""

    against: str
    value: float
    pinned: float | None = None  # a different bound when every process runs on one CPU
    most: bool = False  # an upper bound (else the workload's own direction)

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
    headline: str | None = None  # an extra shown as the figure instead of the meter's
    crashes: bool = False  # its actors crash on purpose: drop error logs too
    note: str | None = None

    def size_for(self, impl: str, scale: float) -> int:
        base = self.pykka_size if impl == "pykka" and self.pykka_size else self.size
        return max(1, round(base * scale))

    def new_meter(self) -> Meter:
        return meter.stopwatch() if self.timed else meter.rss()

    def figure(self, size: int, delta: float, extras: Extras | None) -> float:
        if self.headline:
            return (extras or {})[self.headline]
        return size / delta if self.timed else delta / size

    def better(self, target: Target) -> Callable[[float, float], bool]:
        """`better(x, bound)`: does figure, ratio or extra x meet the target's bound."""
        return operator.le if target.most or not self.timed else operator.ge


WORKLOADS = (
    Workload(
        "tell",
        "tell throughput, 1 actor",
        "msgs/s",
        1_000_000,
        (Target("raw", 1.5), Target("pykka", 9.0, pinned=3.0)),
    ),
    Workload(
        "tell_async",
        "tell throughput, 1 actor, async def handler",
        "msgs/s",
        1_000_000,
        (Target("raw", 1.5),),
        note="tell_async: raw = a queue task that awaits an async function per message",
    ),
    Workload(
        "ask",
        "ask round trips, sequential",
        "round trips/s",
        100_000,
        (Target("raw", 0.85), Target("pykka", 7.0, pinned=2.5)),
    ),
    Workload(
        "ask_async",
        "ask round trips, sequential, async def handler",
        "round trips/s",
        100_000,
        (Target("raw", 0.85),),
        note="ask_async: raw = a queue task that awaits an async function per message",
    ),
    Workload(
        "actor_ask",
        "ask round trips, actor -> actor, sequential",
        "round trips/s",
        100_000,
        (Target("raw", 0.75),),
        pykka_size=20_000,
        note="actor_ask: one outer ask starts an async handler that asks another actor n times; "
        "raw = the same between two queue-consuming tasks",
    ),
    Workload(
        "fairness",
        "tell throughput beside a 1 ms timer and a paced ask, 1 loop",
        "msgs/s",
        1_000_000,
        (Target("timer_p99_ms", 10.0, most=True), Target("ask_p99_ms", 10.0, most=True)),
        note="fairness: the tell workload (first tell until all are handled) while, on the same "
        "loop, a 1 ms call_at chain records each tick's lateness and a second actor (raw: an "
        "echo task) is asked once per ms; p50/p99 in ms",
    ),
    Workload(
        "fairness_slow",
        f"{SLOW_HANDLER_US} us sync handlers, flooded, beside a 1 ms timer and a paced ask",
        "msgs/s",
        10_000,
        (Target("timer_p99_ms", 5.0, most=True), Target("ask_p99_ms", 10.0, most=True)),
        note=f"fairness_slow: ours only; n messages whose handler spins {SLOW_HANDLER_US} us, "
        "queued at once, handled while the probes of fairness run on the same loop",
    ),
    Workload(
        "fairness_slow_async",
        f"{SLOW_HANDLER_US} us async def handlers, flooded, beside a 1 ms timer and a paced ask",
        "msgs/s",
        10_000,
        (Target("timer_p99_ms", 5.0, most=True), Target("ask_p99_ms", 10.0, most=True)),
        note="fairness_slow_async: the same with an async def handler",
    ),
    Workload(
        "ring",
        f"ring of {RING_SIZE} actors, token hops",
        "hops/s",
        100_000,
        (Target("raw", 2.5), Target("pykka", 8.0)),
    ),
    Workload(
        "spawn_one",
        "spawn + stop, one at a time",
        "actors/s",
        10_000,
        (Target("raw", 1.0), Target("abs", 30_000.0)),
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
        (Target("abs", 2048.0),),
        pykka_size=1_000,
        timed=False,
        # Stopping 100k actors measures nothing here and can take minutes (it
        # was quadratic in the number of top-level actors at b3c069d).
        teardown=False,
    ),
    Workload(
        "metrics_snapshot",
        "system.metrics() over 10k actors",
        "ms",
        10_000,
        (Target("snapshot_ms", 20.0, most=True),),
        headline="snapshot_ms",
        note="metrics_snapshot: ours only; 10k actors that each handled a message, then "
        "system.metrics() 20 times; the figure is the mean time of one snapshot",
    ),
    Workload(
        "restart",
        "crash, then ask: one_for_one restarts",
        "restarts/s",
        2_000,
        (Target("median_us", 50.0, most=True),),
        crashes=True,
        note="restart: ours only, pykka has no supervision; median_us is crash-to-next-reply",
    ),
    Workload(
        "crash_storm",
        f"1k crashes over {CRASH_STORM_CHILDREN} children, among tells",
        "restarts/s",
        1_000,
        (Target("lost", 0.0, most=True),),
        crashes=True,
        note="crash_storm: ours only; lost = tells sent minus handled, crashing ones excluded",
    ),
    Workload(
        "xthread_ask",
        "ask round trips, caller loop -> actor thread",
        "round trips/s",
        20_000,
        (Target("raw", 0.8),),
        note="xthread_ask: raw = two loops, call_soon_threadsafe both ways",
    ),
    Workload(
        "xthread_tell",
        "tell throughput, caller loop -> actor thread",
        "msgs/s",
        500_000,
        (Target("abs", 1_000_000.0),),
        note="xthread_tell: raw = queue.SimpleQueue drained by a plain consumer thread",
    ),
    Workload(
        "isolation",
        "ask latency beside a hog on the main loop",
        "x p99 main/pinned",
        200,
        (Target("abs", 5.0),),
        headline="p99_ratio_sha",
        note="isolation: ours only; p50/p99 in us, pinned thread vs main loop, "
        "beside a sha256 (GIL-releasing) or pure-Python hog; the figure is the sha ratio",
    ),
)
CODEC_NOTE = (
    "{}: raw = msgspec Structs of the same shape (the floor); "
    "ours = attrs contract types through our codec, strict both ways; "
    "msgspec_attrs_us is msgspec's own round trip of the same attrs instance (no envelope, "
    "no checks; vs_msgspec_attrs = its time / ours); "
    "cattrs_us and pickle_us are the same round trip on the cattrs backend and on pickle"
)
WORKLOADS += tuple(
    Workload(
        f"codec_{shape}",
        f"codec encode+decode round trip, {what}",
        "round trips/s",
        200_000,
        (Target("raw", 1 / 1.5), Target("vs_msgspec_attrs", 0.6)),
        note=CODEC_NOTE.format(f"codec_{shape}"),
    )
    for shape, what in (("small", "3 fields"), ("kib", "1 KiB"), ("nested", "nested"))
)
PINGPONG_NOTE = (
    "{}: 100-byte frames, one in flight, to an echo process; both ends on the same code. "
    "raw = asyncio Protocol; streams_rtps / anyio_rtps = asyncio / anyio streams; "
    "anyio_cost_pct = how much slower anyio is than the Protocol; "
    "nocoalesce_rtps = ours with write coalescing off"
)
STREAM_NOTE = (
    "{}: 32-byte frames one way to a counting process, timed until it answers the count. "
    "raw = asyncio streams both ends (write per frame, drain per 256); "
    "nocoalesce_fps = ours with write coalescing off"
)
WORKLOADS += tuple(
    Workload(
        f"{scheme}_pingpong",
        f"{scheme} socket round trips, 100-byte frames, two processes",
        "round trips/s",
        20_000,
        (Target("raw", 0.8),),
        note=PINGPONG_NOTE.format(f"{scheme}_pingpong"),
    )
    for scheme in ("unix", "tcp")
)
WORKLOADS += tuple(
    Workload(
        f"{scheme}_stream",
        f"{scheme} socket one-way frames, 32 bytes, two processes",
        "frames/s",
        500_000,
        (Target("raw", 1.0),),
        note=STREAM_NOTE.format(f"{scheme}_stream"),
    )
    for scheme in ("unix", "tcp")
)
REMOTE_NOTE = (
    "{}: a node asks (or tells) an actor on a node in another process through the whole "
    "stack (codec, credits, adapter). raw = {}"
)
WORKLOADS += tuple(
    Workload(
        f"{scheme}_remote_ask",
        f"remote ask round trips over {scheme}, ~100-byte message, two processes",
        "round trips/s",
        10_000,
        (Target("raw", 0.8),),
        note=REMOTE_NOTE.format(f"{scheme}_remote_ask", "asyncio Protocol ping-pong, 100 B"),
    )
    for scheme in ("unix", "tcp")
)
WORKLOADS += tuple(
    Workload(
        f"{scheme}_remote_tell",
        f"remote one-way tells over {scheme}, timed until a final ask returns the count",
        "msgs/s",
        200_000,
        (Target("raw", 0.5),),
        note=REMOTE_NOTE.format(f"{scheme}_remote_tell", "asyncio streams pipeline, 32 B"),
    )
    for scheme in ("unix", "tcp")
)
WORKLOADS += (
    Workload(
        "nats_remote_ask",
        "remote ask round trips through a nats-server, ~100-byte message, two processes",
        "round trips/s",
        5_000,
        (Target("raw", 0.8),),
        note=REMOTE_NOTE.format("nats_remote_ask", "nats-py request/reply, 100 B"),
    ),
    Workload(
        "nats_remote_tell",
        "remote one-way tells through a nats-server, timed until a final ask returns the count",
        "msgs/s",
        100_000,
        (Target("raw", 0.5),),
        note=REMOTE_NOTE.format(
            "nats_remote_tell", "nats-py publish to a counting subscriber, 32 B"
        ),
    ),
)
WORKLOADS += (
    Workload(
        "worker_ask",
        "ask round trips to an actor in a worker process, sequential",
        "round trips/s",
        10_000,
        (Target("raw", 2.0),),
        note="worker_ask: ours = await ref.ask(Echo) to a Subprocess actor; raw = "
        "multiprocessing.Pool(1).apply of a function returning its argument; extra "
        "process_pool_executor_per_s = ProcessPoolExecutor(1).submit(...).result(), same run",
    ),
    Workload(
        "worker_start",
        "worker process start to first reply (median of n)",
        "ms",
        10,
        (Target("start_ms", 300.0, most=True),),
        headline="start_ms",
        note="worker_start: ours = spawn(..., executor=Subprocess()) then one ask; raw = a "
        "spawn-context multiprocessing.Pool(1) and its first apply",
    ),
)
WORKLOADS += (
    Workload(
        "worker_pool",
        "asks of a ~5 ms pure-Python handler to a Pool of worker processes, 2 per worker in flight",
        "asks/s",
        400,
        (Target("scale", 0.8),),
        note="worker_pool: ours = Pool(Spinner, size=k, executor=Subprocess(), "
        "route='least_busy') for k = 1..cores, n asks from 2k clients (each asks again when "
        "answered), the figure is the largest pool's; scale = that / (cores x one worker's), "
        "same run; sizeK_per_s = each pool's; raw = multiprocessing.Pool(k).map of the same "
        "function, chunksize 1",
    ),
)
POOL_NOTE = (
    "{}: a Pool of {} in-process workers (round robin) against one actor of the same class, "
    "both measured in the same process (single = the one actor's figure, vs_single = pool / "
    "single); raw = {} tasks on their own queues, picked in turn by the sender"
)
WORKLOADS += (
    Workload(
        "pool_tell",
        f"tell throughput through a pool of {POOL_SIZE} in-process workers",
        "msgs/s",
        1_000_000,
        (Target("vs_single", 0.5),),
        note=POOL_NOTE.format("pool_tell", POOL_SIZE, POOL_SIZE),
    ),
    Workload(
        "pool_ask",
        f"ask round trips through a pool of {POOL_SIZE} in-process workers, sequential",
        "round trips/s",
        100_000,
        (Target("vs_single", 0.8),),
        note=POOL_NOTE.format("pool_ask", POOL_SIZE, POOL_SIZE),
    ),
)
BY_NAME = {w.name: w for w in WORKLOADS}
