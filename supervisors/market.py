"""A supervised market-data pipeline: feed → normalizer → strategies → risk → order gateway.

    mycelium-actors tree supervisors.market:tree
    mycelium-actors run supervisors.market:tree --status-every 5
    mycelium-actors run supervisors.market:venue --listen unix:///tmp/venue.sock

`venue` is the execution branch alone, as a node: a `tree` built with
`with_execution=False` and connected to it finds the gateway there.

Data flows down that line, but the tree lists the stages the other way round:
children start in list order and stop in reverse, so every stage's consumers
are up before it produces, and a shutdown stops the feed first while the
stages after it drain what is already queued.

Two faults are injected on purpose, and supervisors repair them:

- every `malformed_every`-th tick from the feed has a garbled price; the
  normalizer crashes on it and `marketdata` (one_for_one) restarts it at once.
  Only the bad tick is consumed: the ticks behind it wait in the mailbox,
  which outlives the crash.
- the exchange connection drops every `drop_every` seconds; `execution`
  (rest_for_one, with backoff) reconnects it, then restarts the gateway after
  it, whose order numbering belongs to one connection. Orders sent meanwhile
  wait in the mailboxes and are filled after the reconnect.
"""

from __future__ import annotations

import abc
import random
from collections import Counter
from typing import Any

import attrs
import psutil

from contracts.market import (
    Approved,
    CloseMarket,
    Drain,
    GetStats,
    Logon,
    OrderRequest,
    RawTick,
    Send,
    Tick,
    Verdict,
)
from mycelium_actors import Actor, ActorRef, Backoff, Child, PinnedThread, Supervisor, handler

SYMBOLS = ("AAPL", "MSFT", "NVDA", "TSLA")
BATCH_EVERY = 0.01  # seconds between the feed's batches

# -- messages ---------------------------------------------------------------

# What the stages send one another are contract types (contracts/market.yaml), so
# any part of the pipeline can run in another process: examples/remote_demo.py runs
# `venue` below as a node of its own.

# Self-messages from timers: the feed's next batch, the injected drop, the periodic report.


@attrs.frozen
class Pump:
    pass


@attrs.frozen
class Disconnect:
    pass


@attrs.frozen
class Report:
    pass


# -- shared state -----------------------------------------------------------


@attrs.define
class Chaos:
    """The injected faults; `enabled = False` stops injecting new ones."""

    malformed_every: int = 500  # ticks
    drop_every: float = 1.0  # seconds
    enabled: bool = True


@attrs.define
class FaultLog:
    """One actor's crashes and the restarts that repaired them."""

    crashes: int = 0
    recovered: int = 0
    slowest: float = 0.0  # seconds from a crash to the restarted instance being up
    last_error: str = ""
    down_since: float | None = None


class Stats:
    """Counters shared by every incarnation: an instance dies with a crash, these survive it.

    Each key has a single writer at a time, so plain `+=` is safe even from a pinned thread.
    """

    def __init__(self) -> None:
        self.count: Counter[str] = Counter()
        self.faults: dict[str, FaultLog] = {}

    def crashed(self, path: str, exc: BaseException, now: float) -> None:
        log = self.faults.setdefault(path, FaultLog())
        log.crashes += 1
        log.last_error = f"{type(exc).__name__}: {exc}"
        log.down_since = now

    def started(self, path: str, now: float) -> None:
        log = self.faults.get(path)
        if log is not None and log.down_since is not None:
            log.recovered += 1
            log.slowest = max(log.slowest, now - log.down_since)
            log.down_since = None


# -- actors -----------------------------------------------------------------


class Stage(Actor):
    """A pipeline stage: records its crashes (`on_failure`) and recoveries (`on_start`)."""

    def __init__(self, stats: Stats) -> None:
        super().__init__()
        self.stats = stats

    @property
    def name(self) -> str:
        return self.context.self_ref.name

    def find(self, handles: type) -> ActorRef[Any]:
        """The one live actor with a handler for `handles` (typed discovery)."""
        refs: list[ActorRef[Any]] = self.context.system.discover(handles=handles)
        [ref] = refs
        return ref

    async def on_start(self) -> None:
        self.stats.started(self.context.path, self.context.system.clock.now())

    async def on_failure(self, exc: BaseException) -> None:
        self.stats.crashed(self.context.path, exc, self.context.system.clock.now())


class Feed(Stage):
    """Random-walk prices for a few symbols, `rate` ticks a second, sent in small batches."""

    def __init__(self, stats: Stats, chaos: Chaos, rate: int = 1000, seed: int = 7) -> None:
        super().__init__(stats)
        self.chaos = chaos
        self.batch = max(1, round(rate * BATCH_EVERY))
        self.random = random.Random(seed)
        self.prices = dict.fromkeys(SYMBOLS, 100.0)

    async def on_start(self) -> None:
        await super().on_start()
        self.normalizer = self.find(RawTick)
        self.context.schedule_every(BATCH_EVERY, Pump())

    @handler
    async def pump(self, msg: Pump) -> None:
        for _ in range(self.batch):
            await self.normalizer.tell(self.next_tick())  # waits while the normalizer is full

    def next_tick(self) -> RawTick:
        self.stats.count["feed"] += 1
        seq = self.stats.count["feed"]
        symbol = self.random.choice(SYMBOLS)
        self.prices[symbol] *= 1 + self.random.gauss(0, 0.001)
        price = f"{self.prices[symbol]:.2f}"
        if self.chaos.enabled and seq % self.chaos.malformed_every == 0:
            self.stats.count["feed.malformed"] += 1
            price = "n/a"
        return RawTick(seq=seq, symbol=symbol, price=price)


class Normalizer(Stage):
    """Parses raw ticks and publishes them to every actor that handles `Tick`."""

    mailbox_capacity = 256

    @handler
    async def normalize(self, raw: RawTick) -> None:
        tick = Tick(seq=raw.seq, symbol=raw.symbol, price=float(raw.price))  # "n/a" raises
        self.stats.count["normalizer"] += 1
        await self.context.system.publish(tick)

    @handler
    async def drain(self, msg: Drain) -> None:
        subscribers: list[ActorRef[Any]] = self.context.system.discover(handles=Tick)
        for subscriber in subscribers:
            await subscriber.ask(msg, timeout=30.0)


class Strategy(Stage, abc.ABC):
    """Turns ticks into order requests and asks risk to clear each one."""

    mailbox_capacity = 4096

    def __init__(self, stats: Stats) -> None:
        super().__init__(stats)
        self.last: dict[str, float] = {}  # symbol -> the previous price

    async def on_start(self) -> None:
        await super().on_start()
        self.risk = self.find(OrderRequest)

    @abc.abstractmethod
    def decide(self, tick: Tick) -> str | None:
        """The side to trade on this tick ("buy" or "sell"), or None."""

    @handler
    async def on_tick(self, tick: Tick) -> None:
        self.stats.count[self.name] += 1
        side = self.decide(tick)
        self.last[tick.symbol] = tick.price
        if side is not None:
            request = OrderRequest(
                strategy=self.name, symbol=tick.symbol, side=side, qty=1, price=tick.price
            )
            verdict = await self.risk.ask(request)
            self.stats.count[f"{self.name}.{'approved' if verdict.approved else 'rejected'}"] += 1

    @handler
    async def drain(self, msg: Drain) -> None:
        await self.risk.ask(msg, timeout=30.0)


class Momentum(Strategy):
    """Follows the trend: buys after `run` rises in a row, sells after as many falls."""

    def __init__(self, stats: Stats, run: int = 5) -> None:
        super().__init__(stats)
        self.run = run
        self.streak: Counter[str] = Counter()

    def decide(self, tick: Tick) -> str | None:
        last = self.last.get(tick.symbol, tick.price)
        step = (tick.price > last) - (tick.price < last)
        streak = self.streak[tick.symbol]
        self.streak[tick.symbol] = streak + step if streak * step > 0 else step
        if abs(self.streak[tick.symbol]) < self.run:
            return None
        self.streak[tick.symbol] = 0
        return "buy" if step > 0 else "sell"


class MeanReversion(Strategy):
    """Bets on a return to the mean: sells above its moving average, buys below."""

    def __init__(self, stats: Stats, band: float = 0.004, alpha: float = 0.05) -> None:
        super().__init__(stats)
        self.band, self.alpha = band, alpha
        self.mean: dict[str, float] = {}

    def decide(self, tick: Tick) -> str | None:
        mean = self.mean.get(tick.symbol, tick.price)
        self.mean[tick.symbol] = mean + self.alpha * (tick.price - mean)
        if tick.price > mean * (1 + self.band):
            return "sell"
        if tick.price < mean * (1 - self.band):
            return "buy"
        return None


class Risk(Stage):
    """Clears order requests against a position limit per strategy and symbol."""

    mailbox_capacity = 512

    def __init__(self, stats: Stats, limit: int = 10) -> None:
        super().__init__(stats)
        self.limit = limit
        self.positions: Counter[tuple[str, str]] = Counter()

    async def on_start(self) -> None:
        await super().on_start()
        # The gateway may run on another node this one is connected to.
        [self.gateway] = await self.context.system.discover_cluster(handles=Approved)

    @handler
    async def check(self, request: OrderRequest) -> Verdict:
        self.stats.count["risk"] += 1
        key = (request.strategy, request.symbol)
        position = self.positions[key] + (request.qty if request.side == "buy" else -request.qty)
        if abs(position) > self.limit:
            self.stats.count["risk.rejected"] += 1
            return Verdict(approved=False, reason=f"position limit {self.limit}")
        self.positions[key] = position
        await self.gateway.tell(Approved(order=request))
        self.stats.count["risk.approved"] += 1
        return Verdict(approved=True)

    @handler
    async def drain(self, msg: Drain) -> None:
        await self.gateway.ask(msg, timeout=30.0)


class Gateway(Stage):
    """Numbers approved orders per exchange session and sends them on it."""

    mailbox_capacity = 1024

    async def on_start(self) -> None:
        await super().on_start()
        self.exchange = self.find(Send)
        self.session = await self.exchange.ask(Logon())
        self.seq = 0

    @handler
    async def send(self, msg: Approved) -> None:
        self.seq += 1
        self.stats.count["gateway"] += 1
        await self.exchange.tell(Send(order_id=f"{self.session}-{self.seq}", order=msg.order))

    @handler
    async def drain(self, msg: Drain) -> None:
        await self.exchange.ask(msg, timeout=30.0)


class Exchange(Stage):
    """The exchange connection (simulated): fills what is sent on it, and drops now and then."""

    mailbox_capacity = 4096

    def __init__(self, stats: Stats, chaos: Chaos) -> None:
        super().__init__(stats)
        self.chaos = chaos

    async def on_start(self) -> None:
        await super().on_start()
        self.stats.count["exchange.sessions"] += 1
        self.session = self.stats.count["exchange.sessions"]
        self.context.schedule_once(self.chaos.drop_every, Disconnect())

    @handler
    def logon(self, _: Logon) -> int:
        return self.session

    @handler
    def fill(self, msg: Send) -> None:
        self.stats.count["exchange"] += 1

    @handler
    def disconnect(self, _: Disconnect) -> None:
        if self.chaos.enabled:
            self.stats.count["exchange.drops"] += 1
            raise ConnectionResetError(f"exchange session {self.session} dropped")

    @handler
    def drain(self, _: Drain) -> None:
        return None


class Reporter(Actor):
    """Logs the pipeline's counters every `every` seconds (`market.stats`, at info)."""

    def __init__(self, stats: Stats, every: float = 5.0) -> None:
        super().__init__()
        self.stats = stats
        self.every = every

    async def on_start(self) -> None:
        self.context.schedule_every(self.every, Report())

    @handler
    def report(self, _: Report) -> None:
        counts = {key.replace(".", "_"): n for key, n in sorted(self.stats.count.items())}
        self.context.log.info("market.stats", **counts)


class BackOffice(Actor):
    """A node's counters for whoever asks (`GetStats`), and its end of the trading day."""

    def __init__(self, stats: Stats, chaos: Chaos) -> None:
        super().__init__()
        self.stats = stats
        self.chaos = chaos

    @handler
    def get_stats(self, _: GetStats) -> dict[str, Any]:
        """Plain data, so that it can cross processes."""
        faults = {path: attrs.asdict(log) for path, log in self.stats.faults.items()}
        return {"count": dict(self.stats.count), "faults": faults}

    @handler
    def close(self, _: CloseMarket) -> None:
        self.chaos.enabled = False


# -- the tree -----------------------------------------------------------------


def pinned_cpus() -> list[int] | None:
    """The last CPU this process may run on, or None where psutil cannot pin (macOS)."""
    if not hasattr(psutil.Process, "cpu_affinity"):
        return None
    allowed: list[int] = psutil.Process().cpu_affinity()
    return allowed[-1:]


def execution(stats: Stats, chaos: Chaos) -> Supervisor:
    """The order gateway and the exchange connection it depends on."""
    return Supervisor(
        "execution",
        strategy="rest_for_one",  # the gateway depends on the connection before it
        max_restarts=10,
        within=5.0,
        backoff=Backoff(min=0.05, max=2.0, reset_after=5.0),
        children=[
            Child(Exchange, stats, chaos, name="exchange"),
            Child(Gateway, stats, name="gateway"),
        ],
    )


def build_tree(
    stats: Stats | None = None,
    chaos: Chaos | None = None,
    rate: int = 1000,
    with_execution: bool = True,
) -> Supervisor:
    """The market tree; pass your own `stats` and `chaos` to watch and steer it.

    Without its execution branch, risk finds a gateway on a connected node (`venue`).
    """
    stats = Stats() if stats is None else stats
    chaos = Chaos() if chaos is None else chaos
    return Supervisor(
        "market",
        strategy="one_for_one",
        max_restarts=3,
        within=10.0,
        children=[
            *([execution(stats, chaos)] if with_execution else []),
            Child(Risk, stats, name="risk"),
            Supervisor(
                "strategies",
                children=[
                    Child(Momentum, stats, name="momentum"),
                    Child(
                        MeanReversion,
                        stats,
                        name="meanrev",
                        executor=PinnedThread(cpus=pinned_cpus()),
                    ),
                ],
            ),
            Supervisor(
                "marketdata",
                strategy="one_for_one",
                max_restarts=10,  # up to 10 bad ticks a second
                within=1.0,
                children=[
                    Child(Normalizer, stats, name="normalizer"),
                    Child(Feed, stats, chaos, name="feed", rate=rate),
                ],
            ),
            Child(Reporter, stats, name="reporter"),
        ],
    )


def build_venue(stats: Stats | None = None, chaos: Chaos | None = None) -> Supervisor:
    """The execution branch alone, as a node of its own: its root is `/market` too, so
    its stages keep their paths; its back office answers `GetStats` and `CloseMarket`."""
    stats = Stats() if stats is None else stats
    chaos = Chaos() if chaos is None else chaos
    return Supervisor(
        "market",
        children=[execution(stats, chaos), Child(BackOffice, stats, chaos, name="office")],
    )


tree = build_tree()
venue = build_venue()
