"""`system.metrics()` (API.md 11): per-actor counters, the mailbox high-water
mark, the handler-time histogram (timed on a fake dispatcher clock), the
per-system ask and dead-letter counters, per-node traffic, and `metrics=False`."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
from actors import Boom, Crash, Gate, Ping, Record, Worker, park

from contracts.probe import Echo
from mycelium_actors import (
    Actor,
    ActorSystem,
    AskTimeout,
    Child,
    MyceliumError,
    Supervisor,
    handler,
)
from mycelium_actors.kernel import dispatcher as dispatcher_module
from mycelium_actors.kernel.slot import Slot
from mycelium_actors.kernel.stats import BOUNDS, HandlerSeconds, HandlerStats, bucket_of
from mycelium_actors.testing import FakeClock, eventually
from supervisors.probe import Counter

WAIT = 30.0  # bounds hangs on a loaded machine, not speed
STEP = 10**0.25  # the ratio of two neighbouring bucket bounds


class FakePerfClock:
    """The dispatcher's per-message clock, moved only by the test's handlers."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def perf_clock(monkeypatch: pytest.MonkeyPatch) -> FakePerfClock:
    clock = FakePerfClock()
    monkeypatch.setattr(dispatcher_module, "clock_now", clock)
    return clock


@attrs.frozen
class Spend:
    """Take `seconds` on the dispatcher's (fake) clock."""

    seconds: float


class Spender(Actor):
    def __init__(self, clock: FakePerfClock) -> None:
        super().__init__()
        self.clock = clock

    @handler
    def spend(self, msg: Spend) -> None:
        self.clock.now += msg.seconds


async def spend_across_a_suspension(clock: FakePerfClock, seconds: float) -> None:
    """Half of `seconds` before a suspension, half after (an async handler's time
    runs until it returns)."""
    clock.now += seconds / 2
    await asyncio.sleep(0)
    clock.now += seconds / 2


class AsyncSpender(Spender):
    """Spends half before and half after a suspension: timed until it returns."""

    @handler
    async def spend(self, msg: Spend) -> None:  # type: ignore[override]
        await spend_across_a_suspension(self.clock, msg.seconds)


@attrs.frozen
class SpendAsync:
    """Take `seconds` in an async handler, across a suspension."""

    seconds: float


class MixedSpender(Spender):
    @handler
    async def spend_async(self, msg: SpendAsync) -> None:
        await spend_across_a_suspension(self.clock, msg.seconds)


@attrs.frozen
class KillMe:
    """Spend `seconds`, then cancel the task serving the actor (a kill from its own step)."""

    seconds: float


class SelfKiller(MixedSpender):
    @handler
    async def kill_me(self, msg: KillMe) -> None:
        self.clock.now += msg.seconds
        task = asyncio.current_task()
        assert task is not None
        task.cancel()


def within_one_bucket(estimate: float, exact: float) -> bool:
    return exact <= estimate < exact * STEP * 1.000001


async def test_counters_after_tells_asks_and_a_crash(system: ActorSystem) -> None:
    ref = await system.spawn(Worker, name="w")
    for i in range(5):
        await ref.tell(Record(i))
    assert await ref.ask(Ping()) == "pong"
    with pytest.raises(Crash):
        await ref.ask(Boom())
    await eventually(lambda: system.lookup("/w") is None, WAIT)  # unsupervised: stopped
    m = system.metrics()
    assert "/w" not in m.actors  # only live slots are listed
    sup = await system.start(
        Supervisor("root", max_restarts=5, within=60.0, children=[Child(Worker, name="w")])
    )
    child = system.lookup("/root/w")
    assert child is not None
    for i in range(3):
        await child.tell(Record(i))
    with pytest.raises(Crash):
        await child.ask(Boom())
    await eventually(lambda: system.metrics().actors["/root/w"].restarts == 1, WAIT)
    assert await child.ask(Ping()) == "pong"
    a = system.metrics().actors["/root/w"]
    assert (a.handled, a.failed, a.restarts) == (5, 1, 1)  # kept across the restart
    assert a.kind == "actor" and a.actor_class == "actors:Worker"
    assert a.handler_seconds.count == a.handled
    root = system.metrics().actors["/root"]
    assert root.kind == "supervisor" and root.handled == 0
    assert sup.path == "/root"


async def test_asks_and_dead_letters_are_counted(system: ActorSystem) -> None:
    ref = await system.spawn(Worker, name="w")
    before = system.metrics()
    for _ in range(3):
        await ref.ask(Ping())
    await ref.stop()
    await ref.tell(Record(1))  # to a stopped actor: a dead letter
    m = system.metrics()
    assert m.asks - before.asks == 3
    assert m.dead_letters - before.dead_letters == 1
    assert m.ask_timeouts == 0


async def test_an_ask_timeout_is_counted_once(
    fake_system: ActorSystem, clock: FakeClock, gate: Gate
) -> None:
    ref = await fake_system.spawn(Worker, None, gate, name="w")
    await park(ref, gate)
    asking = asyncio.ensure_future(ref.ask(Ping(), timeout=1.0))
    await asyncio.sleep(0)
    await clock.advance(1.5)
    with pytest.raises(AskTimeout):
        await asyncio.wait_for(asking, WAIT)
    m = fake_system.metrics()
    assert (m.asks, m.ask_timeouts) == (1, 1)


async def test_mailbox_high_is_the_deepest_backlog(system: ActorSystem, gate: Gate) -> None:
    ref = await system.spawn(Worker, None, gate, name="w")
    await park(ref, gate, *range(40))  # 40 queued behind a handler that waits
    assert system.metrics().actors["/w"].mailbox == 40
    gate.open()
    assert await ref.ask(Ping(), timeout=WAIT) == "pong"
    a = system.metrics().actors["/w"]
    assert a.mailbox == 0
    assert 40 <= a.mailbox_high <= 41  # (the Ping may have joined the queue)
    assert a.handled == 42  # Hold, 40 Records, Ping


@pytest.mark.parametrize("actor", [Spender, AsyncSpender])
async def test_handler_seconds_quantiles_are_exact_within_one_bucket(
    system: ActorSystem, perf_clock: FakePerfClock, actor: type[Spender]
) -> None:
    ref = await system.spawn(actor, perf_clock, name="s")
    runs = [0.0001] * 90 + [0.003] * 9 + [0.25]  # sorted: 100 us, 3 ms, 250 ms
    for seconds in runs:
        await ref.tell(Spend(seconds))
    await ref.ask(Spend(0.0))  # (101 runs: the last one takes no time)
    h = system.metrics().actors["/s"].handler_seconds
    assert h.count == 101
    assert h.sum == pytest.approx(sum(runs))
    assert within_one_bucket(h.quantile(0.5), 0.0001)
    assert within_one_bucket(h.quantile(0.95), 0.003)
    assert within_one_bucket(h.quantile(1.0), 0.25)
    assert h.quantile(0.0) <= BOUNDS[0]  # the zero-time run


UNHANDLED_COST = 1e-5  # what serving an unhandled message takes on the fake clock


@pytest.fixture
def costly_unhandled(monkeypatch: pytest.MonkeyPatch, perf_clock: FakePerfClock) -> None:
    """An unhandled message takes time to serve: none of it is a handler's."""
    unhandled = Slot.unhandled

    def slow_unhandled(slot: Slot, message: object, reply: object) -> None:
        perf_clock.now += UNHANDLED_COST
        unhandled(slot, message, reply)  # type: ignore[arg-type]

    monkeypatch.setattr(Slot, "unhandled", slow_unhandled)


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param([Spend(2e-6), 3.5], id="sync"),
        pytest.param([Spend(2e-6), SpendAsync(5e-6), 3.5, Spend(0.0)], id="sync-and-async"),
    ],
)
async def test_a_backlog_longer_than_a_batch_is_counted_and_timed_run_by_run(
    system: ActorSystem,
    perf_clock: FakePerfClock,
    costly_unhandled: None,
    pattern: list[object],
) -> None:
    # Queued at once, served in turns (and spells) of BATCH messages (the
    # backlog takes less than the pass's budget on the fake clock), whose runs
    # are counted per turn: unhandled ones (a float) are no run.
    ref = await system.spawn(MixedSpender, perf_clock, name="s")
    backlog = pattern * 50
    for message in backlog:
        ref.tell_nowait(message)
    await ref.ask(Spend(0.0), timeout=WAIT)
    runs = [m.seconds for m in backlog if isinstance(m, Spend | SpendAsync)] + [0.0]
    a = system.metrics().actors["/s"]
    assert a.handled == a.handler_seconds.count == len(runs)
    assert a.handler_seconds.sum == pytest.approx(sum(runs))
    assert a.mailbox_high >= len(backlog)
    ordered = sorted(runs)
    for q in (0.0, 0.5, 0.99, 1.0):
        exact = ordered[max(1, math.ceil(q * len(ordered))) - 1]
        assert within_one_bucket(a.handler_seconds.quantile(q), max(exact, BOUNDS[0]))


async def test_a_spell_killed_as_it_leaves_its_turn_counts_its_runs_once(
    system: ActorSystem, perf_clock: FakePerfClock
) -> None:
    # The handler spends the pass's budget, then its spell is cancelled: the
    # spell gives its turn back (budget spent) and ends killed right there.
    await system.start(
        Supervisor(
            "root",
            max_restarts=5,
            within=60.0,
            children=[Child(SelfKiller, perf_clock, name="s")],
        )
    )
    ref = system.lookup("/root/s")
    assert ref is not None
    ref.tell_nowait(KillMe(0.01))
    ref.tell_nowait(Spend(0.0))  # queued behind it: the turn is not over
    await eventually(lambda: system.metrics().actors["/root/s"].restarts == 1, WAIT)
    await ref.ask(Spend(0.0), timeout=WAIT)  # after the kept Spend, served by the new one
    a = system.metrics().actors["/root/s"]
    assert a.handled == 3  # the KillMe run once, then the two Spends
    assert a.handler_seconds.sum == pytest.approx(0.01)


def test_the_first_bucket_is_what_the_other_buckets_leave_of_the_runs() -> None:
    stats = HandlerStats()
    stats.handled = 10
    assert stats.counts is None  # no run over 1 us yet: no histogram kept
    assert stats.seconds().counts == (10,) + (0,) * len(BOUNDS)
    stats.counts = [0] * (bucket_of(0.003) + 1)  # (up to the longest run's bucket)
    stats.counts[bucket_of(0.003)] += 2  # runs over 1 us are counted one by one
    assert stats.seconds().counts[0] == 8 and stats.seconds().count == 10
    stats.counts += [0] * (bucket_of(0.5) + 1 - len(stats.counts))  # a longer run came
    stats.counts[bucket_of(0.5)] += 3  # read mid-turn: counted before `handled` is
    stats.handled = 0
    assert stats.seconds().counts[0] == 0 and stats.seconds().count == 5


def test_buckets_span_1us_to_10s_log_spaced() -> None:
    assert BOUNDS[0] == pytest.approx(1e-6) and BOUNDS[-1] == pytest.approx(10.0)
    for low, high in itertools.pairwise(BOUNDS):
        assert high / low == pytest.approx(STEP, rel=1e-5)
    assert bucket_of(0.0) == 0 and bucket_of(1e-6) == 0 and bucket_of(20.0) == len(BOUNDS)
    over = HandlerSeconds(tuple([0] * len(BOUNDS) + [3]), 60.0)
    assert over.quantile(0.5) == 10.0  # above the last bound: read as 10 s
    assert HandlerSeconds().quantile(0.99) == 0.0 and HandlerSeconds().count == 0
    for bad in (-0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match="quantile"):
            over.quantile(bad)  # type: ignore[arg-type]


async def test_an_unhandled_message_is_not_a_handler_run(system: ActorSystem) -> None:
    ref = await system.spawn(Worker, name="w")
    await ref.tell(3.5)  # no handler for float: a dead letter, no run
    await ref.ask(Ping())
    assert system.metrics().actors["/w"].handled == 1


async def test_an_actor_that_never_handled_has_no_histogram(system: ActorSystem) -> None:
    await system.spawn(Worker, name="idle")
    slot = system._slots["/idle"]  # what it costs: nothing made
    assert slot.stats is None
    a = system.metrics().actors["/idle"]
    assert (a.handled, a.mailbox_high, a.handler_seconds.count) == (0, 0, 0)


@pytest.fixture
async def unmetered() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("off", metrics=False) as system:
        yield system


async def test_metrics_false_turns_them_off(unmetered: ActorSystem) -> None:
    ref = await unmetered.spawn(Worker, name="w")
    await ref.ask(Ping())
    with pytest.raises(MyceliumError, match="metrics=False"):
        unmetered.metrics()
    assert unmetered._slots["/w"].stats is None  # nothing kept


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_metrics_max_paths_is_checked(bad: object) -> None:
    with pytest.raises(ValueError, match="metrics_max_paths"):
        ActorSystem("x", metrics_max_paths=bad)  # type: ignore[arg-type]


async def test_snapshot_is_frozen(system: ActorSystem) -> None:
    await system.spawn(Worker, name="w")
    a = system.metrics().actors["/w"]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        a.handled = 5  # type: ignore[misc]


async def test_a_snapshot_keeps_the_figures_of_when_it_was_taken(system: ActorSystem) -> None:
    """Entries are made when first read (cheap for 10k actors), from figures
    copied when `metrics()` ran: later traffic and new actors do not show."""
    ref = await system.spawn(Worker, name="w")
    await ref.ask(Ping())
    before = system.metrics()
    await ref.ask(Ping())
    await system.spawn(Worker, name="later")
    assert before.actors["/w"].handled == 1 and "/later" not in before.actors
    assert set(before.actors) == {"/w"} and len(before.actors) == 1
    assert system.metrics().actors["/w"].handled == 2


async def test_node_traffic_over_a_unix_link(tmp_path: Path) -> None:
    async with (
        ActorSystem("b", listen=f"unix://{tmp_path}/b.sock") as b,
        ActorSystem("a", listen=f"unix://{tmp_path}/a.sock") as a,
    ):
        await b.spawn(Counter, name="w")
        ref = await a.remote(f"{b.address}/w")
        for _ in range(5):
            assert await ref.ask(Echo("hi")) == "hi"
        sent, got = a.metrics().nodes["b"], b.metrics().nodes["a"]
        assert sent.frames_out >= 5 and sent.frames_in >= 5  # 5 asks, 5 replies
        assert sent.bytes_out > 5 * len("/w") and sent.bytes_in > 0
        # What one side sent, the other got (heartbeats may still be on the way).
        await eventually(
            lambda: (
                (b.metrics().nodes["a"].frames_in, b.metrics().nodes["a"].bytes_in)
                == (a.metrics().nodes["b"].frames_out, a.metrics().nodes["b"].bytes_out)
            ),
            WAIT,
        )
        assert got.frames_out >= 5
        assert a.metrics().asks == 5
