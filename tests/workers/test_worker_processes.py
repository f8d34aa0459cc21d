"""`Subprocess`: an actor in a worker process of its own (API.md section 10)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import psutil
import pytest
from procs import workers
from wactors import (
    Add,
    Block,
    Counter,
    Crash,
    DieHard,
    FailingStart,
    Get,
    LoopKind,
    Pid,
    Queued,
    Sleep,
    SlowStart,
    Spawned,
    StopMe,
)

from mycelium_actors import (
    Actor,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    Child,
    SerializationError,
    StartFailed,
    Subprocess,
    Supervisor,
    handler,
)
from mycelium_actors.testing import eventually
from mycelium_actors.wire.codec import Codec


async def test_tell_and_ask_are_served_in_another_process(system: ActorSystem) -> None:
    ref = await system.spawn(Counter, 10, name="counter", executor=Subprocess())
    for n in range(100):
        await ref.tell(Add(n))
    assert await ref.ask(Get()) == 10 + sum(range(100))
    pid = await ref.ask(Pid())
    assert pid != os.getpid()
    assert psutil.Process(pid).parent().pid == os.getpid()


async def test_the_worker_runs_the_same_kind_of_loop_as_its_parent(system: ActorSystem) -> None:
    ref = await system.spawn(Counter, name="counter", executor=Subprocess())
    parent = type(asyncio.get_running_loop()).__module__.partition(".")[0]
    assert await ref.ask(LoopKind()) == parent


async def test_the_ref_is_an_ordinary_ref(system: ActorSystem) -> None:
    ref = await system.spawn(Counter, name="counter", executor=Subprocess())
    assert system.lookup("/counter") == ref
    assert system.discover(Counter) == [ref]
    assert system.discover(handles=Add) == [ref]
    assert await system.publish(Add(2)) == 1
    assert await ref.ask(Get()) == 2


async def test_tree_shows_the_worker_pid_cpu_and_rss(system: ActorSystem) -> None:
    ref = await system.spawn(Counter, name="counter", executor=Subprocess())
    pid = await ref.ask(Pid())
    (node,) = system.tree()
    assert node.pid == pid
    assert node.rss is not None and node.rss > 1_000_000
    assert node.cpu_seconds is not None and node.cpu_seconds > 0
    assert node.thread is None


async def test_a_handler_exception_restarts_the_actor_in_the_same_process(
    system: ActorSystem, tmp_path: Path
) -> None:
    note = tmp_path / "note"
    tree = Supervisor(
        "root", children=[Child(Counter, 0, str(note), name="c", executor=Subprocess())]
    )
    await system.start(tree)
    ref = system.lookup("/root/c")
    assert ref is not None
    pid = await ref.ask(Pid())
    await ref.tell(Add(5))
    await ref.tell(Crash("bad"))
    await ref.tell(Add(7))  # queued behind the crash: kept for the next incarnation
    # The new incarnation starts from 0 and got the message sent after the crash.
    assert await eventually(lambda: _node(system, "/root/c").restarts == 1)
    assert await ref.ask(Get()) == 7
    assert await ref.ask(Pid()) == pid
    assert note.read_text().split("\n")[:3] == [f"start {pid}", f"stop {pid}", f"start {pid}"]


async def test_the_asker_of_a_crashing_message_gets_the_error(system: ActorSystem) -> None:
    await system.start(Supervisor("root", children=[Child(Counter, executor=Subprocess())]))
    ref = system.lookup("/root/counter")
    assert ref is not None
    with pytest.raises(KeyError, match="nope") as info:
        await ref.ask(Crash("nope"))
    assert "raised on a remote node" in "".join(info.value.__notes__)
    assert await ref.ask(Get()) == 0  # restarted


async def test_kill_9_mid_ask_fails_the_ask_and_restarts_in_a_new_process(
    system: ActorSystem,
) -> None:
    await system.start(Supervisor("root", children=[Child(Counter, executor=Subprocess())]))
    ref = system.lookup("/root/counter")
    assert ref is not None
    pid = await ref.ask(Pid())
    asking = asyncio.ensure_future(ref.ask(Sleep(30), timeout=None))
    queued = asyncio.ensure_future(ref.ask(Get(), timeout=None))
    await asyncio.sleep(0.2)  # the Sleep is being handled in the worker
    loop = asyncio.get_running_loop()
    killed_at = loop.time()
    os.kill(pid, signal.SIGKILL)
    # Both were sent to the process (asks are pipelined): both died with it.
    for ask in (asking, queued):
        with pytest.raises(ActorStopped):
            await asyncio.wait_for(ask, 5.0)
    assert loop.time() - killed_at < 1.0
    assert await ref.ask(Get(), timeout=10.0) == 0
    new_pid = await ref.ask(Pid())
    assert new_pid != pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_a_worker_that_dies_in_a_handler_is_a_killed_crash(system: ActorSystem) -> None:
    await system.start(Supervisor("root", children=[Child(Counter, executor=Subprocess())]))
    ref = system.lookup("/root/counter")
    assert ref is not None
    pid = await ref.ask(Pid())
    with pytest.raises(ActorStopped):
        await ref.ask(DieHard(), timeout=5.0)
    assert await ref.ask(Pid()) != pid
    assert _node(system, "/root/counter").restarts == 1


async def test_ordered_shutdown_runs_on_stop_in_the_worker(tmp_path: Path) -> None:
    note = tmp_path / "note"
    async with ActorSystem("stop") as system:
        ref = await system.spawn(Counter, 0, str(note), name="c", executor=Subprocess())
        pid = await ref.ask(Pid())
        for n in range(10):
            await ref.tell(Add(n))
    assert note.read_text().split("\n")[:2] == [f"start {pid}", f"stop {pid}"]
    assert not psutil.pid_exists(pid)


async def test_stop_drains_what_is_queued_before_on_stop(system: ActorSystem) -> None:
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    pid = await ref.ask(Pid())
    replies = [asyncio.ensure_future(ref.ask(Sleep(0.01))) for _ in range(20)]
    await asyncio.sleep(0)  # each ask's first step puts it in the mailbox
    await ref.stop()
    assert await asyncio.gather(*replies) == [0.01] * 20
    await eventually(lambda: not psutil.pid_exists(pid), timeout=5.0)


async def test_a_stop_past_the_shutdown_time_terminates_the_process(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Counter, name="c", executor=Subprocess(), shutdown=0.3)
    pid = await ref.ask(Pid())
    asking = asyncio.ensure_future(ref.ask(Sleep(60), timeout=None))
    await asyncio.sleep(0.2)
    await asyncio.wait_for(ref.stop(), 5.0)
    with pytest.raises(ActorStopped):
        await asyncio.wait_for(asking, 5.0)
    await eventually(lambda: not psutil.pid_exists(pid), timeout=5.0)


async def test_start_timeout_bounds_the_start(system: ActorSystem) -> None:
    with pytest.raises(TimeoutError, match=r"did not start within 0\.5s"):
        await system.spawn(SlowStart, 30.0, executor=Subprocess(start_timeout=0.5))
    ok = await system.spawn(SlowStart, 0.0, executor=Subprocess(start_timeout=10.0))
    assert await ok.ask(Pid()) != os.getpid()


class Local(Actor):
    pass


def test_a_class_from_main_or_a_function_is_refused_at_spawn() -> None:
    class Inner(Actor):
        @handler
        def get(self, msg: Get) -> int:
            return 1

    async def spawn(cls: type[Actor]) -> None:
        async with ActorSystem("refuse") as system:
            await system.spawn(cls, executor=Subprocess())

    with pytest.raises(ValueError, match="Inner is defined inside a function"):
        asyncio.run(spawn(Inner))
    Local.__module__ = "__main__"
    try:
        with pytest.raises(ValueError, match="Local is defined in __main__"):
            asyncio.run(spawn(Local))
    finally:
        Local.__module__ = __name__


async def test_a_message_that_cannot_cross_is_refused_at_the_sender(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    with pytest.raises(SerializationError, match="not a contract type"):
        await ref.tell(object())
    with pytest.raises(SerializationError):
        await ref.ask({"a": 1})
    with pytest.raises(SerializationError):
        ref.tell_nowait(Add("not an int"))  # type: ignore[arg-type]
    with pytest.raises(SerializationError, match="constructor arguments"):
        await system.spawn(Counter, object(), executor=Subprocess())
    assert await ref.ask(Get()) == 0


async def test_inside_a_worker_spawn_and_lookup_use_its_own_system(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    path, pid = await ref.ask(Spawned())
    assert path == "/c/inner"
    assert pid == await ref.ask(Pid())
    assert system.lookup("/c/inner") is None


async def test_a_start_that_keeps_failing_gives_up_and_leaves_no_process(
    system: ActorSystem,
) -> None:
    tree = Supervisor(
        "root",
        max_restarts=1,
        children=[Child(FailingStart, executor=Subprocess())],
    )
    with pytest.raises(StartFailed) as info:
        await system.start(tree)
    assert isinstance(info.value.__cause__, RuntimeError)
    await eventually(lambda: not workers(), timeout=5.0)


def _node(system: ActorSystem, path: str) -> object:
    def walk(nodes: list) -> object:  # type: ignore[type-arg]
        for n in nodes:
            if n.path == path:
                return n
            found = walk(n.children)
            if found is not None:
                return found
        return None

    found = walk(system.tree())
    assert found is not None, path
    return found


async def test_another_interpreter_is_checked_for_compatibility(
    system: ActorSystem, tmp_path: Path
) -> None:
    old = tmp_path / "python-old"
    old.write_text("#!/bin/sh\necho 'Python 2.7 says no' >&2\nexit 1\n")
    old.chmod(0o755)
    with pytest.raises(ValueError, match="is not compatible"):
        await system.spawn(Counter, executor=Subprocess(python=str(old)))
    with pytest.raises(ValueError, match="is not an executable"):
        await system.spawn(Counter, executor=Subprocess(python=str(tmp_path / "none")))
    same = await system.spawn(Counter, executor=Subprocess(python=sys.executable))
    assert await same.ask(Get()) == 0


async def test_a_resume_directive_applies_in_the_worker(system: ActorSystem) -> None:
    child = Child(Counter, executor=Subprocess(), resume_on=(KeyError,))
    await system.start(Supervisor("root", children=[child]))
    ref = system.lookup("/root/counter")
    assert ref is not None
    await ref.tell(Add(3))
    with pytest.raises(KeyError):
        await ref.ask(Crash("resumed"))
    assert await ref.ask(Get()) == 3  # the same instance, its state kept
    assert _node(system, "/root/counter").restarts == 0


async def test_asks_are_pipelined_to_the_worker(system: ActorSystem) -> None:
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    first = asyncio.ensure_future(ref.ask(Queued(0.5)))
    others = [asyncio.ensure_future(ref.ask(Get())) for _ in range(5)]
    # While the first is handled there, the five asks sent after it wait in the
    # worker's own mailbox: they did not wait for its reply to be sent.
    assert await first == 5
    assert await asyncio.gather(*others) == [0] * 5


async def test_pipelined_asks_keep_their_order_with_tells(system: ActorSystem) -> None:
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    replies = []
    for _ in range(50):
        ref.tell_nowait(Add(1))
        replies.append(asyncio.ensure_future(ref.ask(Get())))
        await asyncio.sleep(0)  # the ask's first step puts it in the mailbox, in turn
    assert await asyncio.gather(*replies) == list(range(1, 51))


async def test_an_asker_that_gave_up_leaves_the_others_answered(system: ActorSystem) -> None:
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    slow = asyncio.ensure_future(ref.ask(Sleep(0.5), timeout=0.1))
    after = asyncio.ensure_future(ref.ask(Get(), timeout=5.0))
    with pytest.raises(AskTimeout):
        await slow
    assert await after == 0  # the late reply to the first was dropped, nothing else


async def test_ref_stop_inside_the_worker_stops_a_permanent_child_for_good(
    system: ActorSystem, tmp_path: Path
) -> None:
    note = tmp_path / "note"
    child = Child(Counter, 0, str(note), name="c", executor=Subprocess())
    await system.start(Supervisor("root", children=[child]))
    ref = system.lookup("/root/c")
    assert ref is not None
    pid = await ref.ask(Pid())
    await ref.tell(StopMe())
    await ref.tell(Add(1))  # queued behind it: served before the stop, not a restart
    await eventually(lambda: _node(system, "/root/c").status == "stopped", timeout=5.0)
    assert _node(system, "/root/c").restarts == 0
    assert note.read_text().split("\n")[:2] == [f"start {pid}", f"stop {pid}"]
    await eventually(lambda: not workers(), timeout=5.0)
    with pytest.raises(ActorStopped):
        await ref.ask(Get())


async def test_a_message_to_an_idle_worker_is_encoded_once(
    system: ActorSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[object] = []
    encode = Codec.encode

    def counting(codec: Codec, message: object) -> bytes:
        encoded.append(message)
        return encode(codec, message)

    monkeypatch.setattr(Codec, "encode", counting)  # before the link binds its encoder
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    await ref.ask(Get())
    encoded.clear()
    await ref.tell(Add(1))
    assert await ref.ask(Get()) == 1
    assert encoded == [Add(1), Get()]  # the sender's check is the link's own encode


async def test_tells_past_the_window_wait_in_the_mailbox_in_order(system: ActorSystem) -> None:
    ref = await system.spawn(Counter, name="c", executor=Subprocess())
    await ref.tell(Block(0.5))  # the worker's loop is held: no credit comes back
    for n in range(1, 1001):
        await ref.tell(Add(n))
    assert await ref.ask(Get(), timeout=10.0) == sum(range(1, 1001))
