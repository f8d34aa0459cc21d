"""Pinned executor threads (API.md §3 and §5; docs/executors.md).

What is checked, and how:
- affinity is read back *from inside the actor* with psutil on the thread's
  native id, and matches `system.tree()` (thread name, native id, cpus);
- the three ways to choose an executor: class attribute, `spawn(executor=)`,
  `Child(executor=)`;
- delivery across threads: tell/ask/proxy/stop from the system loop, from
  another pinned actor's loop and from a foreign loop in a plain thread;
  tell_nowait/ask_blocking from a plain thread; "block" backpressure with
  blocked senders on different threads;
- supervision: a crash restarts on the same thread and CPUs;
- no thread outlives its actor, and system exit joins every pinned thread,
  except a handler that ignores cancellation: abandoned, logged, left as a daemon;
- bad CPUs fail at spawn time; without affinity support (macOS) the actor runs
  on a dedicated unpinned thread with an `executor.unpinned` warning;
- shared pools (`shared=True`).

Synchronization is by condition (`eventually`, thread-safe events) with
timeouts; thresholds on elapsed time are well below the `shutdown` times
they would reveal, so a missed wake-up shows up as a failure, not a slow pass.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import psutil
import pytest
import uvloop
from actors import BOXED, Boom, Crash, Gate, GetSeen, Hold, Record, StopSelf, Worker

import mycelium_actors.kernel.executor
from mycelium_actors import (
    Actor,
    ActorRef,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    Child,
    MailboxFull,
    MyceliumError,
    PinnedThread,
    StartFailed,
    Supervisor,
    TreeNode,
    handler,
)
from mycelium_actors.testing import capture_events, events_named, eventually

ALLOWED = sorted(psutil.Process().cpu_affinity())
CPU = ALLOWED[-1]  # CPU 1 on the 2-core test machine
OTHER = ALLOWED[0]  # CPU 0
MAIN_NATIVE_ID = threading.get_native_id()

# Below every default `shutdown` (5 s): an operation that only completes when a
# shutdown timer fires (a lost cross-thread wake-up) fails instead of passing late.
PROMPT = 2.5


# -- messages -----------------------------------------------------------------


@attrs.frozen
class Where:
    """Replies with a `Place`: where the handler runs, read from inside the thread."""


@attrs.frozen
class Place:
    thread: str
    native_id: int
    cpus: list[int]
    daemon: bool


@attrs.frozen
class StopViaRef:
    """`await self_ref.stop()` from inside the handler."""


@attrs.frozen
class Run:
    """Runs `factory()` on the actor's loop; replies ("ok", value) or ("err", exc)."""

    factory: Callable[[], Awaitable[Any]] = attrs.field(eq=False)


@attrs.frozen
class SpawnOn:
    """Spawns a `Probe` child on `executor`."""

    name: str
    executor: PinnedThread | None = attrs.field(eq=False)


@attrs.frozen
class SpinBlocking:
    """A synchronous `time.sleep` loop: cancellation cannot even be delivered."""


@attrs.frozen
class SpinSwallowing:
    """An async loop around `time.sleep` that swallows `CancelledError`."""


# -- helpers ------------------------------------------------------------------


def here() -> Place:
    """Where the caller runs: thread name, native id, and its affinity read back by psutil."""
    me = threading.current_thread()
    native_id = threading.get_native_id()
    return Place(me.name, native_id, sorted(psutil.Process(native_id).cpu_affinity()), me.daemon)


def thread_names() -> Counter[str]:
    return Counter(t.name for t in threading.enumerate())


def threads_named(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


def new_threads(before: Counter[str]) -> Counter[str]:
    """Threads alive now that were not before (the test loop's own to_thread workers
    and a system's stall watchdog aside: test_stall.py sees that one end; `asyncio_0`,
    ..., or `uvloop_0`, ... on uvloop)."""
    extra = thread_names() - before
    return Counter(
        {
            n: c
            for n, c in extra.items()
            if not re.fullmatch(r"(asyncio|uvloop)_\d+|mycelium-watchdog:.*", n)
        }
    )


def flatten(nodes: list[TreeNode]) -> dict[str, TreeNode]:
    out: dict[str, TreeNode] = {}
    for n in nodes:
        out[n.path] = n
        out.update(flatten(n.children))
    return out


def node(system: ActorSystem, path: str) -> TreeNode:
    return flatten(system.tree())[path]


def placement(n: TreeNode) -> tuple[str | None, int | None, list[int] | None]:
    """What tree() says about where a node runs: (thread, thread_id, cpus)."""
    return n.thread, n.thread_id, n.cpus


async def run_in_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(fn)


# -- actors -------------------------------------------------------------------


class Probe(Worker):
    """A `Worker` (tests/actors.py) that also says where it runs, runs callables
    on its loop, stops through its own ref and spawns children on executors."""

    @handler
    def where(self, msg: Where) -> Place:
        return here()

    @handler
    async def stop_via_ref(self, msg: StopViaRef) -> None:
        await self.context.self_ref.stop()

    @handler
    async def run(self, msg: Run) -> tuple[str, Any]:
        try:
            return "ok", await msg.factory()
        except Exception as exc:
            return "err", exc

    @handler
    async def spawn_on(self, msg: SpawnOn) -> ActorRef[Probe]:
        return await self.context.spawn(Probe, self.journal, name=msg.name, executor=msg.executor)

    # for ref.proxy(): an async method across threads
    async def native_id(self) -> int:
        await asyncio.sleep(0)
        return threading.get_native_id()


class ClassPinned(Probe):
    """The executor chosen by class attribute."""

    executor = PinnedThread(cpus=[CPU])


Boxed = BOXED["block"]  # a Worker with a capacity-2 "block" mailbox, for backpressure


class Stuck(Actor):
    def __init__(self, entered: threading.Event, release: threading.Event) -> None:
        super().__init__()
        self.entered, self.release = entered, release

    @handler
    def spin_blocking(self, msg: SpinBlocking) -> None:
        self.entered.set()
        while not self.release.is_set():
            time.sleep(0.01)

    @handler
    async def spin_swallowing(self, msg: SpinSwallowing) -> None:
        self.entered.set()
        while not self.release.is_set():
            try:
                time.sleep(0.01)
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                pass


# -- starting pinned actors the three ways ------------------------------------

WAYS = ["class_attribute", "spawn", "child"]


def pinned_class(cpus: list[int] | None, shared: bool = False) -> type[Probe]:
    """A Probe subclass whose executor is set by class attribute."""
    if cpus == [CPU] and not shared:
        return ClassPinned
    return type("Pinned", (Probe,), {"executor": PinnedThread(cpus=cpus, shared=shared)})


async def start_pinned(
    system: ActorSystem, way: str, name: str, cpus: list[int] | None = None, **kwargs: Any
) -> ActorRef[Probe]:
    """Start a pinned Probe `way`; returns its ref (path /name, or /root/name for a child)."""
    cpus = [CPU] if cpus is None else cpus
    if way == "class_attribute":
        return await system.spawn(pinned_class(cpus), name=name, **kwargs)
    if way == "spawn":
        return await system.spawn(Probe, name=name, executor=PinnedThread(cpus=cpus), **kwargs)
    assert way == "child"
    child = Child(Probe, name=name, executor=PinnedThread(cpus=cpus), **kwargs)
    await system.start(Supervisor("root", children=[child]))
    ref = system.lookup(f"/root/{name}")
    assert ref is not None
    return ref


# -- senders: where a cross-thread operation starts ---------------------------


class Sender:
    """Runs a coroutine factory on the system loop, a pinned actor's loop or a foreign loop."""

    def __init__(self, kind: str, relay: ActorRef[Probe] | None = None) -> None:
        self.kind = kind
        self.relay = relay

    async def __call__(self, factory: Callable[[], Awaitable[Any]]) -> Any:
        if self.kind == "system_loop":
            return await factory()
        if self.kind == "pinned_actor":
            assert self.relay is not None
            status, value = await self.relay.ask(Run(factory), timeout=10.0)
            if status == "err":
                raise value
            return value
        assert self.kind == "foreign_loop"  # a plain thread running its own asyncio loop
        return await run_in_thread(lambda: asyncio.run(factory()))  # type: ignore[arg-type]


SENDERS = ["system_loop", "pinned_actor", "foreign_loop"]


@pytest.fixture
async def make_sender(system: ActorSystem) -> Callable[[str], Awaitable[Sender]]:
    async def make(kind: str) -> Sender:
        relay = None
        if kind == "pinned_actor":
            relay = await system.spawn(Probe, name="relay", executor=PinnedThread(cpus=[OTHER]))
        return Sender(kind, relay)

    return make


@pytest.fixture(params=SENDERS)
async def sender(request: pytest.FixtureRequest, make_sender: Any) -> Sender:
    result: Sender = await make_sender(request.param)
    return result


@pytest.fixture(params=["pinned", "loop"])
def target_executor(request: pytest.FixtureRequest) -> PinnedThread | None:
    """Where the receiving actor runs: its own pinned thread, or the system loop."""
    return PinnedThread(cpus=[CPU]) if request.param == "pinned" else None


@pytest.fixture
def before() -> Counter[str]:
    """Thread names alive when this fixture runs: list it before fixtures whose threads count."""
    return thread_names()


@pytest.fixture
def gates() -> Iterator[list[Gate]]:
    """Gates the test creates; all opened at teardown so no handler stays parked."""
    made: list[Gate] = []
    yield made
    for gate in made:
        gate.open()


# == affinity, names and tree() ===============================================


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("cpus", [[OTHER], [CPU], ALLOWED], ids=["first", "last", "all"])
async def test_affinity_read_back_inside_the_actor_matches_tree(
    system: ActorSystem, way: str, cpus: list[int]
) -> None:
    ref = await start_pinned(system, way, "pinned", cpus=cpus)
    place = await ref.ask(Where())
    assert place.cpus == cpus
    assert place.thread == f"mycelium:{ref.path}"
    assert place.native_id != MAIN_NATIVE_ID
    n = node(system, ref.path)
    assert placement(n) == (place.thread, place.native_id, cpus)
    assert (n.kind, n.status) == ("actor", "running")


async def test_tree_shows_no_thread_for_actors_and_supervisors_on_the_system_loop(
    system: ActorSystem,
) -> None:
    tree = Supervisor(
        "root",
        children=[
            Child(Probe, name="plain"),
            Child(Probe, name="pinned", executor=PinnedThread(cpus=[CPU])),
        ],
    )
    await system.start(tree)
    solo = await system.spawn(ClassPinned, name="solo")
    nodes = flatten(system.tree())
    assert list(nodes) == ["/root", "/root/plain", "/root/pinned", "/solo"]
    for path in ("/root", "/root/plain"):
        assert placement(nodes[path]) == (None, None, None)
    for path, ref in (("/root/pinned", system.lookup("/root/pinned")), ("/solo", solo)):
        assert ref is not None
        place = await ref.ask(Where())
        assert placement(nodes[path]) == (
            f"mycelium:{path}",
            place.native_id,
            [CPU],
        )


async def test_tree_tells_where_a_default_child_of_a_pinned_actor_runs(
    system: ActorSystem,
) -> None:
    """`context.spawn` without an executor: tree() must match where the child really runs."""
    parent = await start_pinned(system, "spawn", "p")
    kid = await parent.ask(SpawnOn("kid", None))
    place = await kid.ask(Where())
    n = node(system, "/p/kid")
    if place.native_id == MAIN_NATIVE_ID:  # on the system loop
        assert placement(n) == (None, None, None)
    else:  # on some other thread: tree() has to name it
        assert placement(n) == (place.thread, place.native_id, place.cpus)


async def test_each_actor_of_a_pinned_class_gets_its_own_thread(system: ActorSystem) -> None:
    a = await system.spawn(ClassPinned, name="a")
    b = await system.spawn(ClassPinned, name="b")
    pa, pb = await a.ask(Where()), await b.ask(Where())
    assert pa.native_id != pb.native_id
    assert (pa.thread, pb.thread) == ("mycelium:/a", "mycelium:/b")
    assert pa.cpus == pb.cpus == [CPU]


async def test_spawn_and_child_executor_override_the_class_attribute(system: ActorSystem) -> None:
    spawned = await system.spawn(ClassPinned, name="s", executor=PinnedThread(cpus=[OTHER]))
    await system.start(
        Supervisor("root", children=[Child(ClassPinned, name="c", executor=PinnedThread([OTHER]))])
    )
    child = system.lookup("/root/c")
    assert child is not None
    for ref in (spawned, child):
        assert (await ref.ask(Where())).cpus == [OTHER]
        assert node(system, ref.path).cpus == [OTHER]


# == delivery across threads ==================================================


async def test_tell_ask_proxy_across_threads(
    system: ActorSystem, sender: Sender, target_executor: PinnedThread | None
) -> None:
    target = await system.spawn(Probe, name="target", executor=target_executor)
    target_place = await target.ask(Where())

    async def conversation() -> tuple[list[Any], int, int, Place]:
        for i in range(20):
            await target.tell(Record(i))
        target.tell_nowait(Record(20))
        seen = await target.ask(GetSeen())
        proxy = target.proxy()
        return seen, await proxy.native_id(), await proxy.add(2, 3), here()

    seen, proxied_on, total, sent_from = await sender(conversation)
    assert seen == list(range(21))
    assert proxied_on == target_place.native_id  # the method ran inside the actor
    assert total == 5
    if sender.kind != "system_loop":
        assert sent_from.native_id != MAIN_NATIVE_ID
    same_thread = sender.kind == "system_loop" and target_executor is None
    assert (sent_from.native_id == target_place.native_id) == same_thread


async def test_a_handlers_exception_crosses_back_to_the_asker(
    system: ActorSystem, sender: Sender, target_executor: PinnedThread | None
) -> None:
    target = await system.spawn(Probe, name="target", executor=target_executor)

    async def ask_boom() -> BaseException | None:
        try:
            await target.ask(Boom())
        except Crash as exc:
            return exc
        return None

    assert isinstance(await sender(ask_boom), Crash)
    await eventually(lambda: not target.is_alive)  # unsupervised: a crash stops it for good


async def test_stop_across_threads_drains_then_stops_promptly(
    system: ActorSystem,
    sender: Sender,
    target_executor: PinnedThread | None,
) -> None:
    journal: list[Any] = []
    target = await system.spawn(Probe, journal, name="target", executor=target_executor)

    async def tell_then_stop() -> float:
        for i in range(3):
            await target.tell(Record(i))
        started = time.monotonic()
        await target.stop()
        return time.monotonic() - started

    elapsed = await sender(tell_then_stop)
    assert journal == ["on_start", 0, 1, 2, "on_stop"]
    assert not target.is_alive
    assert elapsed < PROMPT, f"stop took {elapsed:.2f}s (shutdown is 5 s)"
    await eventually(
        lambda: "mycelium:/target" not in thread_names(),
        timeout=PROMPT,
        message="the target's thread outlived it",
    )


async def test_tell_nowait_and_ask_blocking_from_a_plain_thread(
    system: ActorSystem, target_executor: PinnedThread | None
) -> None:
    target = await system.spawn(Probe, name="target", executor=target_executor)
    target_place = await target.ask(Where())

    def plain_thread() -> tuple[list[Any], Place]:
        for i in range(200):
            target.tell_nowait(Record(i))
        return target.ask_blocking(GetSeen()), target.ask_blocking(Where())

    seen, place = await run_in_thread(plain_thread)
    assert seen == list(range(200))
    assert place == target_place


async def test_ask_blocking_without_a_timeout_ends_when_a_pinned_actor_stops(
    system: ActorSystem,
) -> None:
    """Issue 18, defect 2: some asks never returned, others got concurrent.futures'
    CancelledError, while the pinned loop closed under them."""
    endings: list[type[BaseException]] = []
    for cycle in range(40):
        target = await system.spawn(Probe, name=f"t{cycle}", executor=PinnedThread())
        answers: list[Any] = []

        def asker(target: ActorRef[Any] = target, answers: list[Any] = answers) -> None:
            while True:
                try:
                    answers.append(target.ask_blocking(GetSeen(), timeout=None))
                except BaseException as exc:
                    endings.append(type(exc))
                    return

        threads = [threading.Thread(target=asker, daemon=True) for _ in range(2)]
        for thread in threads:
            thread.start()
        await eventually(lambda answers=answers: len(answers) >= 2, timeout=PROMPT)
        await target.stop()
        for thread in threads:
            await asyncio.to_thread(thread.join, PROMPT)
        assert not any(t.is_alive() for t in threads), f"an ask_blocking hung (cycle {cycle})"
    assert set(endings) == {ActorStopped}


async def test_ask_blocking_without_a_timeout_ends_when_the_loop_ends_under_it() -> None:
    """A system whose loop ends without a shutdown: the end of `asyncio.run` kills
    the busy actor, which fails what is queued (no coroutine of the ask was there
    to be cancelled, as before defect 2's fix)."""
    gate, asked = Gate(), threading.Event()
    refs: list[ActorRef[Any]] = []

    async def abandoned_system() -> None:
        system = ActorSystem("abandoned")
        await system.__aenter__()
        refs.append(await system.spawn(Worker, None, gate, name="w"))
        await refs[0].tell(Hold())
        await gate.wait_entered()
        await asyncio.to_thread(asked.wait, 5)  # then the loop ends, the system still up

    def ask() -> BaseException | None:
        try:
            refs[0].ask_blocking(GetSeen(), timeout=None)
        except BaseException as exc:
            return exc
        return None

    loop_thread = threading.Thread(target=asyncio.run, args=(abandoned_system(),))
    loop_thread.start()
    await eventually(lambda: refs and gate.entered.is_set(), timeout=PROMPT)
    asking = asyncio.ensure_future(asyncio.to_thread(ask))
    await eventually(lambda: refs[0].mailbox.depth == 1, timeout=PROMPT)
    asked.set()
    error = await asyncio.wait_for(asking, 5 * PROMPT)
    await asyncio.to_thread(loop_thread.join, PROMPT)
    assert isinstance(error, ActorStopped)


@attrs.frozen
class Hog:
    """Blocks the actor's loop (a sync handler) until `release` is set."""

    entered: threading.Event = attrs.field(eq=False)
    release: threading.Event = attrs.field(eq=False)


class Hogger(Probe):
    @handler
    def hog(self, msg: Hog) -> None:
        msg.entered.set()
        msg.release.wait(10)


async def test_ask_blocking_then_tell_nowait_from_one_thread_keep_their_order(
    system: ActorSystem, target_executor: PinnedThread | None
) -> None:
    """Issue 18, defect 6: the ask's enqueue was scheduled on the busy loop and the
    tell's was direct, so they arrived as 2, 1; and the ask timed out 1 s late."""
    target = await system.spawn(Hogger, name="target", executor=target_executor)
    hog = Hog(threading.Event(), threading.Event())

    def one_thread() -> float:
        assert hog.entered.wait(5)
        started = time.monotonic()
        try:
            with pytest.raises(AskTimeout):
                target.ask_blocking(Record(1), timeout=0.2)
            return time.monotonic() - started
        finally:
            target.tell_nowait(Record(2))
            hog.release.set()

    await target.tell(hog)
    waited = await run_in_thread(one_thread)
    assert await target.ask(GetSeen()) == [1, 2]
    assert waited < 5 * 0.2


@pytest.mark.parametrize("caller", ["actor_loop", "system_loop_same_loop", "system_loop_other"])
async def test_ask_blocking_is_refused_only_on_the_loop_that_runs_the_actor(
    system: ActorSystem, caller: str
) -> None:
    pinned = caller != "system_loop_same_loop"
    executor = PinnedThread(cpus=[CPU]) if pinned else None
    target = await system.spawn(Probe, name="target", executor=executor)

    async def call() -> Place:
        place: Place = target.ask_blocking(Where(), timeout=2.0)
        return place

    if caller == "actor_loop":  # inside the actor's own handler
        status, result = await target.ask(Run(call))
    else:
        try:
            status, result = "ok", await call()
        except MyceliumError as exc:
            status, result = "err", exc
    if caller == "system_loop_other":  # another loop may block on a pinned actor
        assert (status, result.thread) == ("ok", "mycelium:/target")
    else:  # it would deadlock: refused at once
        assert status == "err" and isinstance(result, MyceliumError)
        assert "ask_blocking" in str(result)
    assert target.is_alive


@pytest.mark.parametrize("second", ["pinned_actor", "foreign_loop"])
async def test_block_backpressure_across_threads_is_fifo(
    system: ActorSystem,
    make_sender: Any,
    target_executor: PinnedThread | None,
    gates: list[Gate],
    second: str,
) -> None:
    """Two senders on different threads block on a full mailbox and enter in order."""
    gate = Gate()
    gates.append(gate)
    target = await system.spawn(Boxed, None, gate, name="target", executor=target_executor)
    other = await make_sender(second)
    mailbox = target._slot.mailbox  # blocked senders are only observable here

    await target.tell(Hold())
    await gate.wait_entered()
    target.tell_nowait(Record(1))
    target.tell_nowait(Record(2))
    with pytest.raises(MailboxFull):
        target.tell_nowait(Record("refused"))
    assert node(system, "/target").mailbox == 2

    first_tell = asyncio.create_task(target.tell(Record(3)))
    await eventually(lambda: mailbox.blocked == 1)

    async def tell_4() -> None:
        await target.tell(Record(4))

    second_tell = asyncio.create_task(other(tell_4))
    await eventually(lambda: mailbox.blocked == 2)
    with pytest.raises(AskTimeout):  # the timeout also bounds the wait for space
        await target.ask(GetSeen(), timeout=0.2)
    assert not first_tell.done() and not second_tell.done()

    gate.open()
    await asyncio.wait_for(asyncio.gather(first_tell, second_tell), 5.0)
    assert await target.ask(GetSeen()) == [1, 2, 3, 4]


# == supervision ==============================================================


@pytest.mark.parametrize("way", ["child", "class_attribute"])
@pytest.mark.parametrize("strategy", ["one_for_one", "one_for_all"])
async def test_a_crash_restarts_on_the_same_thread_and_cpus(
    system: ActorSystem, way: str, strategy: str, before: Counter[str]
) -> None:
    crashing = (
        Child(Probe, name="a", executor=PinnedThread(cpus=[CPU]))
        if way == "child"
        else Child(ClassPinned, name="a")
    )
    sibling = Child(Probe, name="b", executor=PinnedThread(cpus=[OTHER]))
    await system.start(Supervisor("root", strategy=strategy, children=[crashing, sibling]))
    refs = [system.lookup("/root/a"), system.lookup("/root/b")]
    assert refs[0] is not None and refs[1] is not None
    places = [await ref.ask(Where()) for ref in refs]
    threads = new_threads(before)

    with pytest.raises(Crash):
        await refs[0].ask(Boom())
    expected = {"/root/a": 1, "/root/b": 1 if strategy == "one_for_all" else 0}
    await eventually(
        lambda: (
            {p: (node(system, p).status, node(system, p).restarts) for p in expected}
            == {p: ("running", r) for p, r in expected.items()}
        )
    )
    assert [await ref.ask(Where()) for ref in refs] == places
    assert [node(system, p).thread_id for p in expected] == [p.native_id for p in places]
    assert new_threads(before) == threads  # no thread was added or replaced


async def test_restart_child_after_terminate_gets_a_fresh_pinned_thread(
    system: ActorSystem,
) -> None:
    ref = await start_pinned(system, "child", "a")
    first = await ref.ask(Where())
    await system.terminate_child("/root/a")
    await eventually(lambda: "mycelium:/root/a" not in thread_names())
    n = node(system, "/root/a")
    assert (n.status, *placement(n)) == ("stopped", None, None, None)

    await system.restart_child("/root/a")
    second = await ref.ask(Where())
    assert (second.thread, second.cpus) == (first.thread, first.cpus)
    assert len(threads_named("mycelium:/root/a")) == 1
    assert node(system, "/root/a").thread_id == second.native_id


# == no thread outlives its actor =============================================


async def _stop_by_ref(system: ActorSystem) -> list[ActorRef[Any]]:
    ref = await start_pinned(system, "spawn", "a")
    await ref.stop()
    return [ref]


async def _context_stop(system: ActorSystem) -> list[ActorRef[Any]]:
    ref = await start_pinned(system, "spawn", "a")
    assert await ref.ask(StopSelf()) == "stopping"
    return [ref]


async def _self_ref_stop(system: ActorSystem) -> list[ActorRef[Any]]:
    ref = await start_pinned(system, "spawn", "a")
    await ref.tell(StopViaRef())
    return [ref]


async def _unsupervised_crash(system: ActorSystem) -> list[ActorRef[Any]]:
    ref = await start_pinned(system, "class_attribute", "a")
    with pytest.raises(Crash):
        await ref.ask(Boom())
    return [ref]


async def _terminate_child(system: ActorSystem) -> list[ActorRef[Any]]:
    ref = await start_pinned(system, "child", "a")
    await system.terminate_child("/root/a")
    return [ref]


async def _temporary_child_crash(system: ActorSystem) -> list[ActorRef[Any]]:
    ref = await start_pinned(system, "child", "a", restart="temporary")
    with pytest.raises(Crash):
        await ref.ask(Boom())
    return [ref]


async def _transient_child_stops_itself(system: ActorSystem) -> list[ActorRef[Any]]:
    ref = await start_pinned(system, "child", "a", restart="transient")
    await ref.ask(StopSelf())
    return [ref]


async def _supervisor_gives_up(system: ActorSystem) -> list[ActorRef[Any]]:
    child = Child(Probe, name="a", executor=PinnedThread(cpus=[CPU]))
    await system.start(Supervisor("root", max_restarts=0, children=[child]))
    ref = system.lookup("/root/a")
    assert ref is not None
    with pytest.raises(Crash):
        await ref.ask(Boom())
    await asyncio.wait_for(system.wait_stopped(), PROMPT)
    return [ref]


async def _parent_stops_with_pinned_child(system: ActorSystem) -> list[ActorRef[Any]]:
    parent = await start_pinned(system, "spawn", "a")
    child = await parent.ask(SpawnOn("kid", PinnedThread(cpus=[OTHER])))
    assert (await child.ask(Where())).thread == "mycelium:/a/kid"
    await parent.stop()
    return [parent, child]


STOPS = {
    f.__name__.strip("_"): f
    for f in (
        _stop_by_ref,
        _context_stop,
        _self_ref_stop,
        _unsupervised_crash,
        _terminate_child,
        _temporary_child_crash,
        _transient_child_stops_itself,
        _supervisor_gives_up,
        _parent_stops_with_pinned_child,
    )
}


@pytest.mark.parametrize(
    "new_loop", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"]
)
def test_a_pinned_thread_runs_the_same_kind_of_loop_as_the_system(
    new_loop: Callable[[], asyncio.AbstractEventLoop],
) -> None:
    async def loop_type() -> type:
        return type(asyncio.get_running_loop())

    async def main() -> tuple[type, tuple[str, Any]]:
        async with ActorSystem("loops", kill_grace=0.5) as system:
            ref = await system.spawn(Probe, [], name="p", executor=PinnedThread(cpus=None))
            return type(asyncio.get_running_loop()), await ref.ask(Run(loop_type))

    with asyncio.Runner(loop_factory=new_loop) as runner:
        system_loop, answer = runner.run(main())
    assert answer == ("ok", system_loop)


@pytest.mark.parametrize("stop", list(STOPS.values()), ids=list(STOPS))
async def test_stopping_for_good_ends_the_thread(
    system: ActorSystem,
    before: Counter[str],
    stop: Callable[[ActorSystem], Awaitable[list[ActorRef[Any]]]],
) -> None:
    refs = await stop(system)
    await eventually(
        lambda: not new_threads(before),
        timeout=PROMPT,
        message=f"threads outlived their actors: {dict(new_threads(before))}",
    )
    assert not any(ref.is_alive for ref in refs)


async def test_system_exit_joins_every_pinned_thread(
    before: Counter[str], gates: list[Gate]
) -> None:
    gate = Gate()
    gates.append(gate)
    async with ActorSystem("exit", kill_grace=0.5) as system:
        await system.start(
            Supervisor(
                "root",
                children=[
                    Child(Probe, name="child", executor=PinnedThread(cpus=[CPU])),
                    Child(ClassPinned, name="by-class"),
                ],
            )
        )
        pool = PinnedThread(cpus=[OTHER], shared=True)
        await system.spawn(Probe, name="p1", executor=pool)
        await system.spawn(Probe, name="p2", executor=pool)
        parent = await start_pinned(system, "spawn", "parent")
        await parent.ask(SpawnOn("kid", PinnedThread(cpus=[OTHER])))
        # parked in a handler that cancellation does reach: killed after shutdown=0.3
        parked = await start_pinned(system, "spawn", "parked", gate=gate, shutdown=0.3)
        await parked.tell(Hold())
        await gate.wait_entered()
        assert sorted(new_threads(before).elements()) == sorted(
            [
                "mycelium:/root/child",
                "mycelium:/root/by-class",
                f"mycelium-pool-{[OTHER]}",
                "mycelium:/parent",
                "mycelium:/parent/kid",
                "mycelium:/parked",
            ]
        )
        started = time.monotonic()
    elapsed = time.monotonic() - started
    assert not new_threads(before)  # joined by the time `async with` returns
    assert elapsed < 0.3 + 0.5 + PROMPT


@pytest.mark.parametrize("spin", [SpinBlocking, SpinSwallowing], ids=["blocking", "swallowing"])
async def test_a_handler_that_ignores_cancellation_is_abandoned_at_exit(
    before: Counter[str], spin: type
) -> None:
    entered, release = threading.Event(), threading.Event()
    try:
        with capture_events() as events:
            async with ActorSystem("stuck", kill_grace=0.2) as system:
                ref = await system.spawn(
                    Stuck,
                    entered,
                    release,
                    name="stuck",
                    shutdown=0.2,
                    executor=PinnedThread(cpus=[CPU]),
                )
                await ref.tell(spin())
                await eventually(entered.is_set)
                started = time.monotonic()
        elapsed = time.monotonic() - started
        # shutdown (0.2) + kill_grace (0.2) + the executor's bounded join (2 s) + slack
        assert elapsed < 0.2 + 0.2 + 2.0 + 1.5, f"exit took {elapsed:.2f}s"
        abandoned = events_named(events, "actor.abandoned", path="/stuck")
        assert [e["log_level"] for e in abandoned] == ["error"]
        left = threads_named("mycelium:/stuck")
        if spin is SpinBlocking:  # the thread itself is stuck: left behind as a daemon
            assert len(left) == 1 and left[0].daemon and left[0].is_alive()
            executor_events = events_named(events, "executor.abandoned", thread="mycelium:/stuck")
            assert [e["log_level"] for e in executor_events] == ["error"]
        else:  # the loop still turns: the thread closes it and ends
            assert left == []
            assert not events_named(events, "executor.abandoned")
    finally:
        release.set()
        for thread in threads_named("mycelium:/stuck"):
            await run_in_thread(lambda t=thread: t.join(5.0))
    assert not new_threads(before)


# == bad input and unsupported platforms ======================================


@pytest.fixture
def main_thread_on_one_cpu() -> Iterator[None]:
    """Restrict the process (its main thread, what psutil.Process() reads) to one CPU."""
    assert len(ALLOWED) >= 2, "this test needs a machine with two allowed CPUs"
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {OTHER})
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


#: cpus asked for -> the ones the error must name
BAD_CPUS = {
    "nonexistent": ([CPU, 4096], [4096]),
    "not_allowed": ([CPU], [CPU]),  # with the process restricted to OTHER (fixture below)
}


@pytest.mark.parametrize("way", ["spawn", "child"])
@pytest.mark.parametrize("bad", list(BAD_CPUS))
async def test_cpus_that_do_not_exist_or_are_not_allowed_fail_at_spawn(
    system: ActorSystem,
    before: Counter[str],
    request: pytest.FixtureRequest,
    way: str,
    bad: str,
) -> None:
    cpus, missing = BAD_CPUS[bad]
    if bad == "not_allowed":
        request.getfixturevalue("main_thread_on_one_cpu")
    if way == "spawn":
        with pytest.raises(ValueError, match="do not exist or are not allowed") as info:
            await start_pinned(system, way, "bad", cpus=cpus)
        error: BaseException = info.value
        assert system.lookup("/bad") is None
    else:
        with pytest.raises(StartFailed, match="/root/bad") as failed:
            await start_pinned(system, way, "bad", cpus=cpus)
        error = failed.value.__cause__  # type: ignore[assignment]
        assert isinstance(error, ValueError)
    assert f"{'/root' if way == 'child' else ''}/bad: PinnedThread cpus {missing}" in str(error)
    assert not new_threads(before)


@pytest.mark.parametrize(
    ("cpus", "error", "names"),
    [
        ([0, 0], ValueError, "[0] are named twice"),
        ((1, 0, 1), ValueError, "[1] are named twice"),
        ([], ValueError, "at least one CPU"),
        ([-1], ValueError, "not -1"),
        ([0, 1.0], TypeError, "not 1.0"),
        ([True], TypeError, "not True"),
        ([None], TypeError, "not None"),
        ("1", TypeError, "not '1'"),
        (range(2), TypeError, "not range(0, 2)"),
        ({0}, TypeError, "not {0}"),
    ],
    ids=repr,
)
def test_cpus_of_the_wrong_shape_fail_when_the_executor_is_built(
    cpus: Any, error: type[Exception], names: str
) -> None:
    with pytest.raises(error, match=re.escape(names)):
        PinnedThread(cpus=cpus)


@pytest.mark.parametrize("cpus", [None, [0], (0,), [1, 0]], ids=repr)
def test_good_cpus_are_kept_as_a_list(cpus: Any) -> None:
    assert PinnedThread(cpus=cpus).cpus == (None if cpus is None else list(cpus))


async def test_affinity_that_does_not_read_back_fails_the_spawn(
    system: ActorSystem, before: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor verifies the affinity from inside the thread, not just sets it."""
    real = psutil.Process.cpu_affinity

    def ignores_writes(self: psutil.Process, cpus: list[int] | None = None) -> Any:
        return real(self) if cpus is None else None

    monkeypatch.setattr(psutil.Process, "cpu_affinity", ignores_writes)
    with pytest.raises(OSError, match="reads back"):
        await system.spawn(Probe, name="a", executor=PinnedThread(cpus=[CPU]))
    await eventually(lambda: not new_threads(before))
    assert system.lookup("/a") is None


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("cpus", [[CPU], [4096]], ids=["existing", "nonexistent"])
async def test_without_affinity_support_the_actor_runs_unpinned_on_its_own_thread(
    system: ActorSystem, monkeypatch: pytest.MonkeyPatch, way: str, cpus: list[int]
) -> None:
    monkeypatch.setattr(mycelium_actors.kernel.executor, "affinity_supported", lambda: False)
    with capture_events() as events:
        ref = await start_pinned(system, way, "mac", cpus=cpus)
    warnings = events_named(events, "executor.unpinned", path=ref.path)
    assert [e["log_level"] for e in warnings] == ["warning"]
    place = await ref.ask(Where())
    assert place.thread == f"mycelium:{ref.path}"
    assert place.native_id != MAIN_NATIVE_ID
    assert place.cpus == ALLOWED  # not pinned: the whole process's set
    n = node(system, ref.path)
    assert placement(n) == (place.thread, place.native_id, None)


# == shared pools =============================================================


async def test_a_shared_pool_serves_its_actors_on_one_thread_until_the_last_stops(
    system: ActorSystem, before: Counter[str]
) -> None:
    pool = PinnedThread(cpus=[CPU], shared=True)
    pool_name = f"mycelium-pool-{[CPU]}"
    a = await system.spawn(Probe, name="a", executor=pool)
    await system.start(Supervisor("root", children=[Child(Probe, name="b", executor=pool)]))
    c = await system.spawn(pinned_class([CPU], shared=True), name="c")  # another pool
    b = system.lookup("/root/b")
    assert b is not None
    pa, pb, pc = [await ref.ask(Where()) for ref in (a, b, c)]
    assert pa == pb and pa.thread == pool_name and pa.cpus == [CPU]
    assert pc.native_id != pa.native_id
    assert [node(system, p).thread_id for p in ("/a", "/root/b", "/c")] == [
        pa.native_id,
        pa.native_id,
        pc.native_id,
    ]
    assert new_threads(before) == Counter({pool_name: 2})

    async def ask_b_from_a() -> list[Any]:  # both on the pool's one loop
        await b.tell(Record("from a"))
        seen: list[Any] = await b.ask(GetSeen())
        return seen

    assert await a.ask(Run(ask_b_from_a)) == ("ok", ["from a"])

    await a.stop()
    assert await b.ask(Where()) == pb  # the pool outlives one of its actors
    await system.terminate_child("/root/b")
    await c.stop()
    await eventually(lambda: not new_threads(before), timeout=PROMPT)

    again = await system.spawn(Probe, name="again", executor=pool)  # a new thread for the pool
    assert (await again.ask(Where())).thread == pool_name
    assert new_threads(before) == Counter({pool_name: 1})


async def test_a_crash_in_a_shared_pool_restarts_on_the_pool_thread(system: ActorSystem) -> None:
    pool = PinnedThread(cpus=[CPU], shared=True)
    await system.start(
        Supervisor("root", children=[Child(Probe, name=n, executor=pool) for n in "ab"])
    )
    a, b = system.lookup("/root/a"), system.lookup("/root/b")
    assert a is not None and b is not None
    place = await a.ask(Where())
    with pytest.raises(Crash):
        await a.ask(Boom())
    await eventually(lambda: node(system, "/root/a").restarts == 1)
    assert await a.ask(Where()) == place == await b.ask(Where())


# == the example and the doc ==================================================


async def test_the_pinned_example_runs_where_it_says(before: Counter[str]) -> None:
    from examples import pinned

    summary = await pinned.main()
    assert summary["digest"] == pinned.expected_digest()
    assert summary["compressed"] < pinned.PAYLOAD_SIZE
    slow, fast = pinned.SLOW, pinned.FAST
    assert summary["where"] == {
        "/hasher": ("mycelium:/hasher", [slow]),
        "/root/zip": ("mycelium:/root/zip", [slow]),
        "/quotes": ("MainThread", ALLOWED),
        "/feed-a": (f"mycelium-pool-{[fast]}", [fast]),
        "/feed-b": (f"mycelium-pool-{[fast]}", [fast]),
    }
    assert summary["tree"]["/hasher"] == ("mycelium:/hasher", [slow])
    assert summary["tree"]["/quotes"] == (None, None)
    assert not new_threads(before)  # the example's threads ended with its system


def test_the_docs_code_is_copied_verbatim_from_the_example() -> None:
    """docs/executors.md quotes examples/pinned.py (which the test above runs), marked
    with the docs' convention: `<!-- from examples/pinned.py -->` above, a caption below."""
    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "executors.md").read_text()
    example = (root / "examples" / "pinned.py").read_text()
    blocks = re.findall(r"^(.*)\n```python\n((?:.*\n)*?)```\n(.*)$", doc, flags=re.M)
    assert len(blocks) >= 4, "docs/executors.md should show the example's code"
    assert doc.count("```python") == len(blocks)
    for marker, code, caption in blocks:
        assert marker == "<!-- from examples/pinned.py -->", code
        assert caption == "*File: [examples/pinned.py](../examples/pinned.py)*", code
        assert code in example, f"not in examples/pinned.py verbatim:\n{code}"


async def test_tree_reads_the_cpu_time_of_a_pinned_thread_only(system) -> None:
    pinned = await system.spawn(Probe, executor=PinnedThread(cpus=[0]), name="busy")
    plain = await system.spawn(Probe, name="plain")
    await pinned.ask(Where())
    nodes = {node.path: node for node in system.tree()}
    assert isinstance(nodes[pinned.path].cpu_seconds, float)
    assert nodes[pinned.path].cpu_seconds >= 0.0
    assert nodes[plain.path].cpu_seconds is None
