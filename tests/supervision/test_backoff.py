"""supervision.md section 2, cases 42-44 and [EXT] max_restarts: restart backoff (fake clock)."""

from __future__ import annotations

from mycelium_actors import Backoff
from mycelium_actors.testing import events_named, eventually

from .helpers import start, wait_lines, wait_restarted
from .workers import Crash, Ping, Record

EPS = 1e-6


async def _decided(clock, journal, line, count):
    """Wait until `line` was journaled `count` times and a restart timer is pending."""
    await wait_lines(journal, line, count)
    await eventually(lambda: clock.pending > 0, message="no restart timer was scheduled")


async def _restart_between(clock, journal, name, lo, hi=None):
    """The next `start:<name>` happens after `lo` and by `hi` (default `lo`) seconds."""
    hi = lo if hi is None else hi
    n = journal.count(f"start:{name}")
    await clock.advance(lo - 1e-3)
    assert journal.count(f"start:{name}") == n, f"{name} restarted before {lo}s"
    await clock.advance(hi - lo + 1e-3 + EPS)
    await wait_lines(journal, f"start:{name}", n + 1)


async def _crash_then_restart_after(system, clock, journal, refs, path, name, lo, hi=None):
    before = journal.count(f"stop:{name}")
    restarts = journal.count(f"start:{name}") - 1
    await refs[name].tell(Crash())
    await _decided(clock, journal, f"stop:{name}", before + 1)
    await _restart_between(clock, journal, name, lo, hi)
    await wait_restarted(system, path, restarts + 1)


async def test_exponential_backoff_delays(fake_system, clock, journal, w, sup):
    """Case 42 [restart after exponential backoff] [clock]: max_restarts=10,
    Backoff(min=1, max=10, jitter=0): crashing right after each restart gives delays of
    1, 2, 4, 8, 10, 10 s; an on_start failing during a restart is retried after the next
    delay."""
    system = fake_system
    refs = await start(
        system,
        sup(
            w("a"),
            w("b", fail_start={2, 3, 4, 5}),
            max_restarts=10,
            backoff=Backoff(min=1, max=10, jitter=0),
        ),
    )
    for delay in [1, 2, 4, 8, 10, 10]:
        await _crash_then_restart_after(system, clock, journal, refs, "/root/a", "a", delay)
    assert journal.count("start:a") == 7

    # b: attempts 2..5 (the first four restart attempts) fail in on_start.
    await refs["b"].tell(Crash())
    await _decided(clock, journal, "stop:b", 1)
    for attempt, delay in enumerate([1, 2, 4, 8, 10], start=2):
        await _restart_between(clock, journal, "b", delay)
        if attempt <= 5:
            await _decided(clock, journal, "startfail:b", attempt - 1)
    await wait_restarted(system, "/root/b", 1)
    assert journal.count("start:b") == 6
    assert journal.count("startfail:b") == 4
    assert await refs["b"].ask(Ping()) == ("pong", "b")


async def test_backoff_reset_and_jitter(fake_system, clock, journal, w, sup):
    """Case 43 [reset exponential backoff count after reset timeout] [clock]: with
    reset_after=0.1 the delay goes back to min once a restarted instance ran 0.1 s; the
    default reset_after is 5.5 s for min=1, max=10; with jitter=0.5 every delay falls within
    [base, 1.5*base]."""
    system = fake_system
    refs = await start(
        system,
        sup(
            sup(
                w("a"),
                name="r1",
                max_restarts=10,
                backoff=Backoff(min=1, max=10, jitter=0, reset_after=0.1),
            ),
            sup(w("b"), name="r2", max_restarts=10, backoff=Backoff(min=1, max=10, jitter=0)),
            sup(w("c"), name="r3", max_restarts=10, backoff=Backoff(min=1, max=10, jitter=0.5)),
        ),
    )

    async def crash(name, lo, hi=None):
        path = f"/root/{ {'a': 'r1', 'b': 'r2', 'c': 'r3'}[name] }/{name}"
        await _crash_then_restart_after(system, clock, journal, refs, path, name, lo, hi)

    # reset_after=0.1
    await crash("a", 1)
    await crash("a", 2)
    await clock.advance(0.1)
    await crash("a", 1)  # ran 0.1 s: back to min
    await clock.advance(0.05)
    await crash("a", 2)  # ran only 0.05 s: no reset

    # default reset_after = (1 + 10) / 2 = 5.5
    await crash("b", 1)
    await crash("b", 2)
    await clock.advance(5.0)
    await crash("b", 4)  # 5.0 s < 5.5 s: no reset
    await clock.advance(5.5)
    await crash("b", 1)  # 5.5 s: reset

    # jitter=0.5
    for base in [1, 2, 4, 8]:
        await crash("c", base, 1.5 * base)


async def test_mailbox_is_the_stash_during_backoff(events, fake_system, clock, journal, w, sup):
    """Case 44 [publish dropped messages while backing off and stash is full]: capacity 2
    with drop_new, Backoff(min=1): crash, then tell 1..4 during the backoff: the new instance
    handles 1 and 2 in order, 3 and 4 become dead letters."""
    system = fake_system
    refs = await start(
        system,
        sup(w("a", mailbox_capacity=2, mailbox_overflow="drop_new"), backoff=Backoff(min=1)),
    )
    a = refs["a"]
    await a.tell(Crash())
    await _decided(clock, journal, "stop:a", 1)
    dead_before = system.dead_letters
    for i in (1, 2, 3, 4):
        await a.tell(Record(i))
    assert system.dead_letters == dead_before + 2
    assert len(events_named(events, "dead_letter", path="/root/a")) == 2
    assert journal.count("start:a") == 1

    await clock.advance(2.0)  # past the delay: min=1, jitter <= 0.2
    await wait_restarted(system, "/root/a", 1)
    await wait_lines(journal, "got:a:2", 1)
    assert await a.ask(Ping()) == ("pong", "a")
    assert journal.got("a") == [1, 2]
    assert journal.lines.index("got:a:1") > journal.lines.index("start:a", 1)


async def test_backoff_max_restarts_gives_up_after_k_restarts_in_a_row(
    fake_system, clock, journal, w, sup
):
    """[EXT] Backoff(max_restarts=2): two restarts in a row happen on their delays; the
    third crash without a reset makes the supervisor give up, whatever its intensity."""
    system = fake_system
    refs = await start(
        system,
        sup(w("a"), max_restarts=100, backoff=Backoff(min=1, max=10, jitter=0, max_restarts=2)),
    )
    for delay in [1, 2]:
        await _crash_then_restart_after(system, clock, journal, refs, "/root/a", "a", delay)
    await refs["a"].tell(Crash())
    await eventually(lambda: system.gave_up is not None)
    assert "/root/a failed after 2 restarts in a row" in str(system.gave_up)
    assert journal.count("start:a") == 3
