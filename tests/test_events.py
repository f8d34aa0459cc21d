"""Structlog lifecycle events and bounded dead-letter logging (API.md §8)."""

from __future__ import annotations

import pytest
from actors import Boom, Crash, Record, StopSelf, Worker, park

from mycelium_actors import Actor, ActorSystem, Child, Supervisor, handler
from mycelium_actors.testing import capture_events, events_named, eventually


class Strict(Actor):
    @handler
    def take(self, n: int) -> None:
        raise ValueError("bad value")


async def test_actor_started_is_logged_at_info_with_the_path(system) -> None:
    with capture_events() as events:
        ref = await system.spawn(Worker)
    [started] = events_named(events, "actor.started", path=ref.path)
    assert started["log_level"] == "info"


@pytest.mark.parametrize(
    ("ending", "reason"), [(None, "shutdown"), (StopSelf(), "normal"), (Boom(), "crash")]
)
async def test_actor_stopped_is_logged_with_its_reason(system, ending, reason) -> None:
    ref = await system.spawn(Worker)
    with capture_events() as events:
        if ending is None:
            await ref.stop()
        else:
            await ref.tell(ending)
        await eventually(lambda: not ref.is_alive)
    [stopped] = events_named(events, "actor.stopped", path=ref.path)
    assert (stopped["reason"], stopped["log_level"]) == (reason, "info")


async def test_a_crash_is_logged_at_error_with_the_exception(system) -> None:
    ref = await system.spawn(Worker)
    with capture_events() as events:
        await ref.tell(Boom("logged"))
        await eventually(lambda: not ref.is_alive)
    [crashed] = events_named(events, "actor.crashed", path=ref.path)
    assert crashed["log_level"] == "error"
    assert isinstance(crashed["exc_info"], Crash)
    fields = {k: crashed[k] for k in ("exc_type", "error", "restarts")}
    assert fields == {"exc_type": "actors.Crash", "error": "logged", "restarts": 0}


async def test_a_builtin_exception_type_is_named_without_its_module(system) -> None:
    ref = await system.spawn(Strict)
    with capture_events() as events:
        await ref.tell(0)
        await eventually(lambda: not ref.is_alive)
    [crashed] = events_named(events, "actor.crashed", path=ref.path)
    assert (crashed["exc_type"], crashed["error"]) == ("ValueError", "bad value")


@pytest.mark.parametrize("reason", ["stopped", "mailbox_full"])
async def test_a_dead_letter_is_logged_with_the_path_and_the_reason(system, gate, reason) -> None:
    ref = await system.spawn(Worker, gate=gate, mailbox_capacity=1, mailbox_overflow="drop_new")
    if reason == "stopped":
        await ref.stop()
    else:
        await park(ref, gate, "queued")
    with capture_events() as events:
        ref.tell_nowait(Record("lost"))
    assert events_named(events, "dead_letter", path=ref.path, reason=reason)


async def test_dead_letters_are_always_counted_but_logged_at_a_bounded_rate(clock) -> None:
    async with ActorSystem(
        "bounded", clock=clock, dead_letter_log_limit=3, dead_letter_log_interval=1.0
    ) as system:
        ref = await system.spawn(Worker)
        await ref.stop()
        with capture_events() as events:
            for i in range(10):
                ref.tell_nowait(Record(i))
            assert system.dead_letters == 10
            assert len(events_named(events, "dead_letter", path=ref.path)) == 3
            await clock.advance(1.0)
            [summary] = events_named(events, "dead_letter", summary=True)
            assert summary["suppressed"] == 7
            ref.tell_nowait(Record("after the summary"))
            assert len(events_named(events, "dead_letter", path=ref.path)) == 4


@pytest.mark.parametrize("supervised", [False, True], ids=["top level", "supervised"])
async def test_a_graceful_stop_says_how_many_messages_it_waits_for(gate, supervised) -> None:
    async with ActorSystem("draining", kill_grace=0.5) as system:
        if supervised:
            spec = Child(Worker, name="w", gate=gate, shutdown=2.0)
            await system.start(Supervisor("root", children=[spec]))
            ref = system.lookup("/root/w")
        else:
            ref = await system.spawn(Worker, name="w", gate=gate, shutdown=2.0)
        await park(ref, gate, 1, 2, 3)
        with capture_events() as events:
            gate.open()  # the three are served while it stops
            await system.shutdown()
    [stopping] = events_named(events, "actor.stopping", path=ref.path)
    assert (stopping["queued"], stopping["shutdown"], stopping["log_level"]) == (3, 2.0, "info")


async def test_the_dead_letter_summary_is_logged_at_shutdown_not_lost(clock) -> None:
    with capture_events() as events:
        async with ActorSystem("brief", clock=clock, dead_letter_log_limit=1) as system:
            ref = await system.spawn(Worker)
            await ref.stop()
            for i in range(5):
                ref.tell_nowait(Record(i))
        [summary] = events_named(events, "dead_letter", summary=True)
        assert (summary["suppressed"], summary["total"]) == (4, 5)
        await clock.advance(60.0)  # the timer it replaced does not fire again
        assert len(events_named(events, "dead_letter", summary=True)) == 1
