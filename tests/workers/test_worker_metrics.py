"""A worker process's actor in its parent's `system.metrics()` (API.md 11):
the worker reports its figures over the link, at most once per report
interval, and the parent cumulates them across worker processes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_cli import invoke
from test_metrics_prometheus import scrape, series
from wactors import Add, Counter, Crash, Get, Hold, Pid

import mycelium_actors
from mycelium_actors import (
    ActorRef,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    Child,
    MyceliumError,
    Pool,
    Subprocess,
    Supervisor,
)
from mycelium_actors.kernel.stats import BOUNDS, ActorMetrics, ReportedStats, bucket_of
from mycelium_actors.workers import protocol
from mycelium_actors.workers.subprocess import _Process

#: A report comes within one report interval (0.5 s) of a change: a wide margin.
WAIT = 10.0


async def reaches(system: ActorSystem, path: str, **want: int) -> ActorMetrics:
    """Wait until the figures at `path` show `want` (`count` is the histogram's)."""

    def now() -> dict[str, int] | None:
        a = system.metrics().actors.get(path)
        if a is None:
            return None
        return {k: a.handler_seconds.count if k == "count" else getattr(a, k) for k in want}

    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while (seen := now()) != want:
        assert loop.time() < deadline, f"{path}: {seen} never became {want}"
        await asyncio.sleep(0.01)
    return system.metrics().actors[path]


async def supervised(system: ActorSystem, **options: Any) -> ActorRef[Any]:
    child = Child(Counter, name="c", executor=Subprocess(), **options)
    await system.start(Supervisor("root", children=[child]))
    ref = system.lookup("/root/c")
    assert ref is not None
    return ref


def process_of(ref: ActorRef[Any]) -> Any:
    """The parent's `_Process` of a worker actor's ref."""
    return ref._slot.runner.process  # type: ignore[attr-defined]


async def test_asks_to_a_worker_actor_reach_the_parents_metrics(system: ActorSystem) -> None:
    ref = await supervised(system, resume_on=(KeyError,))
    failing = range(0, 20, 5)
    for n in range(20):
        if n in failing:
            with pytest.raises(KeyError):
                await ref.ask(Crash("no"))
        else:
            await ref.ask(Add(n))
    a = await reaches(system, "/root/c", handled=20, failed=len(failing), count=20)
    assert (a.kind, a.actor_class, a.restarts) == ("actor", "wactors:Counter", 0)
    assert 0 < a.handler_seconds.sum < 20 * 5.0
    assert 0 < a.handler_seconds.quantile(0.99) <= 5.0
    (root,) = system.tree()
    assert root.children[0].handled == 20  # the live tree (status --watch) too


@pytest.mark.parametrize("how", ["crash", "kill"])
async def test_figures_cumulate_across_a_restart(system: ActorSystem, how: str) -> None:
    ref = await supervised(system)
    pid = await ref.ask(Pid())
    for n in range(4):
        await ref.ask(Add(n))
    await reaches(system, "/root/c", handled=5, count=5)
    if how == "crash":
        with pytest.raises(KeyError):
            await ref.ask(Crash("no"))  # a restart inside the same process
    else:
        os.kill(pid, signal.SIGKILL)  # a restart in a new process, counting from 0
    await reaches(system, "/root/c", restarts=1)
    assert (await ref.ask(Pid(), timeout=WAIT) == pid) is (how == "crash")
    for n in range(4):
        await ref.ask(Add(n))
    crashed = int(how == "crash")
    await reaches(system, "/root/c", handled=10 + crashed, failed=crashed, count=10 + crashed)


async def test_each_pool_worker_reports_under_its_own_path(system: ActorSystem) -> None:
    ref = await system.start(Pool(Counter, size=2, name="p", executor=Subprocess()))
    for n in range(6):
        await ref.ask(Add(n))  # round robin: three each
    for worker in ("/p/0", "/p/1"):
        await reaches(system, worker, handled=3, count=3)
    assert system.metrics().actors["/p"].kind == "pool"


async def test_the_depth_is_what_waits_in_the_worker(system: ActorSystem, tmp_path: Path) -> None:
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    gate = tmp_path / "open"
    holding = asyncio.ensure_future(ref.ask(Hold(str(gate)), timeout=WAIT))
    for n in range(5):
        await ref.tell(Add(n))  # relayed to the worker, where they wait behind Hold
    a = await reaches(system, "/c", mailbox=5)
    assert a.mailbox_high >= 5
    assert system.tree()[0].mailbox == 5
    gate.touch()
    await holding
    assert await ref.ask(Get()) == sum(range(5))
    a = await reaches(system, "/c", mailbox=0, handled=7)
    assert a.mailbox_high >= 5


async def test_reports_do_not_grow_with_the_messages(system: ActorSystem) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    n = 2000
    for i in range(n):
        await ref.tell(Add(i))
    assert await ref.ask(Get()) == sum(range(n))
    await reaches(system, "/c", handled=n + 1)
    # At most one report per interval since the spawn, and the first one at once.
    elapsed = loop.time() - began
    assert process_of(ref).reported <= 2 + elapsed / protocol.REPORT_INTERVAL


async def test_with_metrics_off_the_worker_reports_nothing() -> None:
    async with ActorSystem("off", metrics=False, kill_grace=0.5) as system:
        ref = await system.spawn(Counter, name="c", executor=Subprocess())
        for n in range(10):
            await ref.tell(Add(n))
        assert await ref.ask(Get()) == sum(range(10))
        with pytest.raises(MyceliumError):
            system.metrics()
        process = process_of(ref)
        assert process._reports is None and process.reported == 0
        # The worker runs no reporter: nothing there could answer a poll.
        reporter = await process.node.remote(process.url, protocol.FIGURES)
        with pytest.raises(ActorStopped):
            await reporter.ask(protocol.NextFigures(), timeout=WAIT)


async def test_asks_counts_the_callers_asks_not_the_links_own(
    system: ActorSystem, tmp_path: Path
) -> None:
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    assert system.metrics().asks == 0  # starting the worker asked it things: not counted
    for _ in range(3):
        await ref.ask(Get())  # to an idle worker: straight onto the link
    await asyncio.gather(*(ref.ask(Get()) for _ in range(3)))  # some through the mailbox
    gate = tmp_path / "open"
    with pytest.raises(AskTimeout):
        await ref.ask(Hold(str(gate)), timeout=0.05)
    gate.touch()
    assert await ref.ask(Get()) == 0
    m = system.metrics()
    assert (m.asks, m.ask_timeouts) == (8, 1)


def report(handled: int, failed: int = 0, mailbox: int = 0) -> protocol.Figures:
    """A worker's report: `handled` runs of 1 ms each."""
    counts = [0] * (len(BOUNDS) + 1)
    counts[bucket_of(0.001)] = handled
    return protocol.Figures(counts, handled * 0.001, failed, mailbox, mailbox)


def test_reports_cumulate_across_processes_and_one_that_goes_back_is_refused(
    tmp_path: Path, captured_events: list[dict[str, Any]]
) -> None:
    slot = SimpleNamespace(system=None, path="/w", stats=None)
    runner = SimpleNamespace(process=None)
    first, second = (_Process(runner, slot) for _ in range(2))  # type: ignore[arg-type]
    for process in (first, second):
        shutil.rmtree(process.dir)  # made for a socket: not needed here
    runner.process = first
    for figures in (report(3, 1, mailbox=4), report(5, 1, mailbox=2), report(4, 1)):
        first._reported(figures)
    assert [e["event"] for e in captured_events] == ["worker.figures_refused"]
    first._messages_died()  # killed: its last report stays, its queue died with it
    stats = slot.stats
    assert isinstance(stats, ReportedStats)
    assert (stats.seconds().count, stats.failed, stats.mailbox, stats.high) == (5, 1, 0, 4)
    runner.process = second  # the restart's process counts from 0 there
    second._reported(report(2, 1, mailbox=1))
    assert (stats.seconds().count, stats.failed, stats.mailbox, stats.high) == (7, 2, 1, 4)
    assert stats.sum == pytest.approx(0.007)


async def test_prometheus_and_status_show_a_worker_actors_figures(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/node.sock"
    async with ActorSystem("shown", listen=url, kill_grace=0.5) as system:
        ref = await system.spawn(Counter, name="c", executor=Subprocess())
        for n in range(3):
            await ref.ask(Add(n))
        await reaches(system, "/c", handled=3)
        host, port = await mycelium_actors.metrics.serve(system, port=0)
        samples = await scrape(host, port)
        labels = {"path": "/c", "actor_class": "wactors:Counter"}
        assert series(samples, "mycelium_messages_handled_total", **labels) == 3
        assert series(samples, "mycelium_handler_seconds_count", **labels) == 3
        status = await asyncio.to_thread(invoke, "status", url, "--json")
        assert status.returncode == 0, status.stderr
        (shown,) = json.loads(status.stdout)
        assert (shown["path"], shown["handled"], shown["pid"]) == ("/c", 3, await ref.ask(Pid()))
