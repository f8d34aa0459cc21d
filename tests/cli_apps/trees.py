"""Trees for the command-line tests, loaded by module name from this folder."""

from __future__ import annotations

import asyncio
import contextlib
import time

import attrs

from mycelium_actors import Actor, Child, PinnedThread, Supervisor, handler


@attrs.frozen
class Boom:
    pass


class Worker(Actor):
    """Starts, idles, stops: enough to watch the order of a shutdown."""


class Crasher(Actor):
    """Crashes as soon as it has started, so its supervisor runs out of restarts."""

    async def on_start(self) -> None:
        self.context.schedule_once(0.0, Boom())

    @handler
    def boom(self, msg: Boom) -> None:
        raise RuntimeError("boom")


@attrs.frozen
class Stall:
    seconds: float


class BlocksTheLoop(Actor):
    """Blocks the event loop for 3 s in a handler (a sync call where an await belongs)."""

    async def on_start(self) -> None:
        self.context.schedule_once(0.0, Stall(3.0))

    @handler
    def stall(self, msg: Stall) -> None:
        time.sleep(msg.seconds)


class CrashesOnce(Actor):
    """Crashes in its first handler run, with a secret in a local variable; then idles."""

    crashed = False  # per process: the restarted instance does not crash again

    async def on_start(self) -> None:
        if not CrashesOnce.crashed:
            self.context.schedule_once(0.0, Boom())

    @handler
    def boom(self, msg: Boom) -> None:
        CrashesOnce.crashed = True
        password = "hunter2-in-a-local"
        raise PermissionError(f"login refused ({len(password)} characters)")


@attrs.frozen
class Job:
    n: int


class Busy(Actor):
    """Queues 100 jobs of 0.1 s each for itself: a Ctrl-C finds most of them queued."""

    async def on_start(self) -> None:
        for n in range(100):
            self.context.self_ref.tell_nowait(Job(n))

    @handler
    async def job(self, msg: Job) -> None:
        await asyncio.sleep(0.1)


class OneShot(Actor):
    """Does its one job and stops itself."""

    async def on_start(self) -> None:
        self.context.stop()


class NoDatabase(Actor):
    async def on_start(self) -> None:
        raise ConnectionRefusedError("database is down")


class SlowStart(Actor):
    """Takes a second to start."""

    async def on_start(self) -> None:
        self.context.log.warning("slow.starting")
        await asyncio.sleep(1.0)


class SlowStop(Actor):
    """Takes a minute to stop, awaiting (the event loop stays free)."""

    async def on_stop(self) -> None:
        self.context.log.warning("slow.stopping")
        await asyncio.sleep(60)


class BlockingStop(Actor):
    """Takes a minute to stop, blocking the event loop (a synchronous close)."""

    async def on_stop(self) -> None:
        self.context.log.warning("slow.stopping")
        time.sleep(60)


class IgnoresCancel(Actor):
    """Its on_stop swallows every cancellation, so a shutdown abandons it."""

    async def on_stop(self) -> None:
        while True:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(60)


def _app(*children: Child | Supervisor) -> Supervisor:
    return Supervisor("app", children=[Child(Worker, name="first"), *children])


tree = _app(
    Child(Worker, name="second", restart="transient"),
    Supervisor(
        "group",
        strategy="rest_for_one",
        children=[Child(Worker, name="third"), Child(Worker, name="fourth", restart="temporary")],
    ),
)
gives_up = Supervisor("fragile", max_restarts=1, children=[Child(Crasher)])
finishes = Supervisor(
    "job",
    auto_shutdown="any_significant",
    children=[Child(Worker), Child(OneShot, restart="transient", significant=True)],
)
blocks_the_loop = _app(Child(BlocksTheLoop, name="blocker"))
crashes_once = _app(Child(CrashesOnce, name="crasher"))
busy = _app(Child(Busy, name="busy", shutdown=0.3))
fails_to_start = _app(Child(NoDatabase, name="db"))
slow_to_start = _app(Child(SlowStart, name="slow"))
slow_to_stop = _app(Child(SlowStop, name="slow", shutdown=None))
blocking_stop = _app(Child(BlockingStop, name="slow", shutdown=None))
ignores_cancel = _app(Child(IgnoresCancel, name="stuck", shutdown=0.1))
stuck_on_thread = _app(Child(BlockingStop, name="stuck", shutdown=0.1, executor=PinnedThread()))
not_a_tree = "just a string"
answer = 42


def make_tree() -> Supervisor:
    """For --factory: builds a tree of its own, so the test sees it was called."""
    return Supervisor("built", children=[Child(Worker, name="made")])


@attrs.frozen
class Beat:
    pass


class Ticker(Actor):
    """Handles a `Beat` every 10 ms: its `handled` figure keeps growing."""

    async def on_start(self) -> None:
        self.context.schedule_every(0.01, Beat())

    @handler
    def beat(self, msg: Beat) -> None:
        pass


ticking = Supervisor("clock", children=[Child(Ticker, name="ticker")])
