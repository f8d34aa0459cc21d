"""No worker process is ever left behind, and what a worker logs is not lost."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from procs import workers
from wactors import Block, Counter, Crash, Get, Log, Pid, Shout

from mycelium_actors import ActorStopped, ActorSystem, Child, Subprocess, Supervisor
from mycelium_actors.cli.render import render_live_tree
from mycelium_actors.testing import eventually

HERE = Path(__file__).resolve().parent


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "busy"])
async def test_a_worker_exits_when_its_parent_is_killed_9(busy: bool) -> None:
    parent = subprocess.Popen(
        [sys.executable, str(HERE / "orphan_parent.py"), "busy" if busy else "idle"],
        stdout=subprocess.PIPE,
        cwd=HERE,
    )
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), 20.0)
        worker = int(line)
        assert psutil.Process(worker).ppid() == parent.pid
        parent.kill()
        await asyncio.to_thread(parent.wait)
        await eventually(lambda: _gone(worker), timeout=5.0)
    finally:
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()


@pytest.mark.parametrize("how", ["crash", "kill"])
async def test_twenty_restarts_leak_no_process_or_fd(system: ActorSystem, how: str) -> None:
    me = psutil.Process()
    tree = Supervisor("root", max_restarts=100, children=[Child(Counter, executor=Subprocess())])
    await system.start(tree)
    ref = system.lookup("/root/counter")
    assert ref is not None
    await ref.ask(Get())
    fds = me.num_fds()
    pids = set()
    for _ in range(20):
        pid = await ref.ask(Pid())
        pids.add(pid)
        if how == "crash":
            with pytest.raises(KeyError):
                await ref.ask(Crash("again"))
        else:
            os.kill(pid, signal.SIGKILL)
            with pytest.raises(ActorStopped):
                await ref.ask(Get(), timeout=5.0)
    await ref.ask(Get())
    assert len(pids) == (1 if how == "crash" else 20)
    assert len(workers()) == 1
    await eventually(lambda: me.num_fds() <= fds, timeout=5.0)


async def test_tree_drawing_shows_the_pid(system: ActorSystem) -> None:
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    pid = await ref.ask(Pid())
    drawing = render_live_tree(system.tree())
    assert f"pid={pid}" in drawing
    assert "rss=" in drawing


async def test_worker_logs_and_stderr_reach_the_parent_with_the_pid(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    pid = await ref.ask(Pid())
    await ref.tell(Log("hello"))
    await ref.tell(Shout("on stderr"))

    def seen(text: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if text in r.getMessage()]

    (record,) = await eventually(lambda: seen("from the worker: hello"))
    assert record.name == "wactors"
    assert record.pid == pid  # type: ignore[attr-defined]
    (line,) = await eventually(lambda: seen("on stderr"))
    assert f"pid={pid}" in line.getMessage()


async def test_a_blocked_worker_loop_logs_loop_stalled_in_the_parent_with_the_pid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with ActorSystem("stalls", stall_warning=0.2) as system:  # the worker's threshold too
        ref = await system.spawn(Counter, name="c", executor=Subprocess())
        pid = await ref.ask(Pid())
        await ref.ask(Block(1.0), timeout=30.0)  # 5x the threshold
        (record, *_) = await eventually(
            lambda: [r for r in caplog.records if "loop.stalled" in r.getMessage()]
        )
    assert record.levelno == logging.WARNING
    assert record.pid == pid  # type: ignore[attr-defined]
    assert "path=/c" in record.getMessage() and "message_type=Block" in record.getMessage()


#: An orderly stop of an idle worker takes a few ms here, tens under load: this
#: bound is 5x the upper end of that (it was 1.4 s while the worker's system
#: waited for the parent's long poll to end before it exited).
IDLE_STOP_BOUND = 0.5


@pytest.mark.parametrize("how", ["stop", "system"])
async def test_an_orderly_stop_of_an_idle_worker_is_fast(how: str) -> None:
    async with ActorSystem("fast-stop") as system:
        ref = await system.spawn(Counter, name="c", executor=Subprocess())
        pid = await ref.ask(Pid())
        loop = asyncio.get_running_loop()
        start = loop.time()
        if how == "stop":
            await ref.stop()
            await eventually(lambda: _gone(pid), timeout=5.0)
    if how == "system":
        await eventually(lambda: _gone(pid), timeout=5.0)
    assert loop.time() - start < IDLE_STOP_BOUND
