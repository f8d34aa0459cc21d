"""`Pool` (API.md section 10): a router at the pool's path supervising `size` workers.

`Staff` workers answer with their name (`"0"`, `"1"`, ...), so a test sees
which worker took each message; `Job`s are also written to a log the test owns.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from contracts.probe import Echo
from mycelium_actors import (
    Actor,
    ActorStopped,
    ActorSystem,
    Child,
    MyceliumError,
    PinnedThread,
    Pool,
    Supervisor,
    SupervisorGaveUp,
    handler,
)
from mycelium_actors.testing import FakeClock, events_named, eventually

from .helpers import node, wait_restarted, wait_status

# -- the worker and its messages -------------------------------------------------


@attrs.frozen
class Where:
    """Answered with the worker's name."""


@attrs.frozen
class Job:
    """Logged as (worker name, n); answered with the worker's name."""

    n: int


@attrs.frozen
class Park:
    """An async handler that waits on `gate`, then answers with the worker's name."""

    gate: asyncio.Event = attrs.field(eq=False)


@attrs.frozen
class Explode:
    """The handler raises RuntimeError."""


@attrs.frozen
class AskOwnPool:
    """The handler asks the pool it belongs to `Where()` and answers with that."""


class Staff(Actor):
    """A pool worker. With `restart_gate`, every start after a worker's first
    waits on it in `on_start`: that worker stays down (restarting) until it opens.
    With `stopping`, `on_stop` adds the worker's name to it, then waits for `stop_gate`."""

    def __init__(
        self,
        log: list[tuple[str, int]],
        starts: dict[str, int] | None = None,
        restart_gate: asyncio.Event | None = None,
        *,
        stopping: list[str] | None = None,
        stop_gate: asyncio.Event | None = None,
    ) -> None:
        super().__init__()
        self.log, self.starts, self.restart_gate = log, starts, restart_gate
        self.stopping, self.stop_gate = stopping, stop_gate

    async def on_start(self) -> None:
        if self.starts is None:
            return
        name = self.context.path.rsplit("/", 1)[-1]
        self.starts[name] = self.starts.get(name, 0) + 1
        if self.starts[name] > 1 and self.restart_gate is not None:
            await self.restart_gate.wait()

    async def on_stop(self) -> None:
        if self.stopping is not None:
            self.stopping.append(self.me)
        if self.stop_gate is not None:
            await self.stop_gate.wait()

    @property
    def me(self) -> str:
        return self.context.path.rsplit("/", 1)[-1]

    @handler
    def where(self, msg: Where) -> str:
        return self.me

    @handler
    def job(self, msg: Job) -> str:
        self.log.append((self.me, msg.n))
        return self.me

    @handler
    async def park(self, msg: Park) -> str:
        await msg.gate.wait()
        return self.me

    @handler
    def explode(self, msg: Explode) -> None:
        raise RuntimeError(f"explode {self.me}")

    @handler
    async def ask_own_pool(self, msg: AskOwnPool) -> Any:
        parent = self.context.parent
        assert parent is not None
        return await parent.ask(Where(), timeout=2.0)

    @handler
    def echo(self, msg: Echo) -> str:
        return f"{self.me}:{msg.text}"


@pytest.fixture
def log() -> list[tuple[str, int]]:
    return []


@pytest.fixture
def staff(log: list[tuple[str, int]]) -> Callable[..., Pool]:
    """`staff(size=3, **pool_options)`: a Pool of Staff workers logging into `log`."""

    def build(*args: Any, size: int = 3, name: str = "p", **opts: Any) -> Pool:
        return Pool(Staff, log, *args, size=size, name=name, **opts)

    return build


async def start_pool(system: ActorSystem, pool: Pool) -> Any:
    """Start `pool` under a one_for_one root; its ref."""
    await system.start(Supervisor("root", children=[pool]))
    ref = system.lookup(f"/root/{pool.name}")
    assert ref is not None
    return ref


async def in_flight(system: ActorSystem, path: str) -> None:
    """Wait until the worker at `path` runs a handler (an async one, parked)."""
    ref = system.lookup(path)
    assert ref is not None
    await eventually(lambda: ref._slot.handling is not None, message=f"{path} idle")


# -- routing -------------------------------------------------------------------


async def test_round_robin_hands_each_message_to_the_next_worker(
    system: ActorSystem, staff: Callable[..., Pool], log: list[tuple[str, int]]
) -> None:
    p = await start_pool(system, staff(size=3))
    assert [await p.ask(Where()) for _ in range(7)] == ["0", "1", "2", "0", "1", "2", "0"]
    for n in range(6):
        await p.tell(Job(n))
    await eventually(lambda: len(log) == 6)
    assert sorted(log, key=lambda entry: entry[1]) == [
        ("1", 0), ("2", 1), ("0", 2), ("1", 3), ("2", 4), ("0", 5)
    ]  # fmt: skip


async def test_least_busy_skips_workers_with_messages_queued_or_in_flight(
    system: ActorSystem, staff: Callable[..., Pool]
) -> None:
    p = await start_pool(system, staff(size=3, route="least_busy"))
    gate = asyncio.Event()
    # Idle workers tie: the lowest takes it. Worker 0 then has one in flight ...
    parked0 = asyncio.ensure_future(p.ask(Park(gate)))
    await in_flight(system, "/root/p/0")
    # ... so the next goes to 1, which then has one in flight too.
    parked1 = asyncio.ensure_future(p.ask(Park(gate)))
    await in_flight(system, "/root/p/1")
    assert [await p.ask(Where()) for _ in range(3)] == ["2", "2", "2"]  # round robin: 2, 0, 1
    gate.set()
    assert await parked0 == "0" and await parked1 == "1"


async def test_least_busy_counts_queued_messages(
    system: ActorSystem, staff: Callable[..., Pool], log: list[tuple[str, int]]
) -> None:
    p = await start_pool(system, staff(size=3, route="least_busy"))
    gate = asyncio.Event()
    parked = asyncio.ensure_future(p.ask(Park(gate)))  # worker 0: one in flight
    await in_flight(system, "/root/p/0")
    w0 = system.lookup("/root/p/0")
    assert w0 is not None
    await w0.tell(Job(-1))  # and one queued behind it: load 2
    # Tells made without yielding queue up: loads (0, 1, 2) = (2, 0, 0).
    for n in range(4):
        p.tell_nowait(Job(n))
    # 1 (0), 2 (0), then 1 and 2 tie at one queued each: 1, then 2.
    gate.set()
    assert await parked == "0"
    await eventually(lambda: len(log) == 5)
    assert sorted(entry for entry in log if entry[1] >= 0) == [
        ("1", 0), ("1", 2), ("2", 1), ("2", 3)
    ]  # fmt: skip


async def test_an_ask_is_answered_by_the_worker_that_took_it(
    system: ActorSystem, staff: Callable[..., Pool]
) -> None:
    p = await start_pool(system, staff(size=2))
    gate = asyncio.Event()
    first = asyncio.ensure_future(p.ask(Park(gate)))  # held by worker 0
    await in_flight(system, "/root/p/0")
    assert await p.ask(Where()) == "1"  # 1 answers while 0 still holds its ask
    gate.set()
    assert await first == "0"
    with pytest.raises(RuntimeError, match="explode 0"):  # the taker's exception reaches us
        await p.ask(Explode())


async def test_ask_blocking_and_tell_nowait_from_a_plain_thread_go_through_the_pool(
    system: ActorSystem, staff: Callable[..., Pool], log: list[tuple[str, int]]
) -> None:
    p = await start_pool(system, staff(size=2))
    answers: list[Any] = []

    def from_thread() -> None:
        answers.extend(p.ask_blocking(Where(), timeout=5.0) for _ in range(4))
        p.tell_nowait(Job(1))

    thread = threading.Thread(target=from_thread)
    thread.start()
    await eventually(lambda: not thread.is_alive() and log)
    assert answers == ["0", "1", "0", "1"] and log == [("0", 1)]


# -- crashes -----------------------------------------------------------------------


async def test_a_crash_storm_loses_no_normal_message_and_the_others_keep_serving(
    system: ActorSystem, staff: Callable[..., Pool], log: list[tuple[str, int]]
) -> None:
    p = await start_pool(system, staff(size=4, max_restarts=1000, within=60.0))
    crashes = 0
    answered: list[Any] = []
    for n in range(300):
        await p.tell(Job(n))
        if n % 7 == 0:
            await p.tell(Explode())
            crashes += 1
        if n % 25 == 0:  # asks in the storm: answered, none lost
            answered.append(await p.ask(Where(), timeout=5.0))
    await eventually(lambda: len(log) == 300, message=f"{len(log)} of 300 jobs handled")
    assert sorted(n for _, n in log) == list(range(300))  # each exactly once
    assert len(answered) == 12
    assert {name for name, _ in log} == {"0", "1", "2", "3"}
    await eventually(
        lambda: sum(node(system, f"/root/p/{i}").restarts for i in range(4)) == crashes  # type: ignore[union-attr]
    )
    assert node(system, "/root/p").restarts == 0  # type: ignore[union-attr]


async def test_the_pool_routes_around_a_worker_that_is_down(
    system: ActorSystem, staff: Callable[..., Pool]
) -> None:
    restart_gate = asyncio.Event()
    p = await start_pool(system, staff({}, restart_gate, size=3))
    assert await p.ask(Where()) == "0"
    with pytest.raises(RuntimeError):
        await p.ask(Explode())  # worker 1 crashes; its restart waits on the gate
    await wait_status(system, "/root/p/1", "restarting")
    assert [await p.ask(Where()) for _ in range(6)] == ["2", "0", "2", "0", "2", "0"]
    restart_gate.set()
    await wait_restarted(system, "/root/p/1", 1)
    assert sorted([await p.ask(Where()) for _ in range(3)]) == ["0", "1", "2"]


async def test_while_every_worker_is_down_messages_wait_in_a_restarting_worker(
    system: ActorSystem, staff: Callable[..., Pool], log: list[tuple[str, int]]
) -> None:
    restart_gate = asyncio.Event()
    p = await start_pool(system, staff({}, restart_gate, size=2))
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await p.ask(Explode())
    for i in range(2):
        await wait_status(system, f"/root/p/{i}", "restarting")
    waiting = asyncio.ensure_future(p.ask(Where(), timeout=5.0))
    await p.tell(Job(7))
    await asyncio.sleep(0.05)
    assert not waiting.done() and not log  # kept, not refused
    restart_gate.set()
    assert await waiting in ("0", "1")
    await eventually(lambda: len(log) == 1)


async def test_when_every_worker_is_stopped_for_good_the_pool_refuses(
    system: ActorSystem, staff: Callable[..., Pool]
) -> None:
    p = await start_pool(system, staff(size=2))
    await system.terminate_child("/root/p/0")
    assert [await p.ask(Where()) for _ in range(2)] == ["1", "1"]  # around the stopped one
    await system.terminate_child("/root/p/1")
    with pytest.raises(ActorStopped, match="no worker left"):
        await p.ask(Where())
    before = system.dead_letters
    await p.tell(Job(1))
    assert system.dead_letters == before + 1
    await system.restart_child("/root/p/0")  # back by hand, as for any child
    assert await p.ask(Where()) == "0"


async def test_past_its_intensity_the_pool_gives_up_to_its_parent(
    clock: FakeClock, fake_system: ActorSystem, staff: Callable[..., Pool], events: Any
) -> None:
    p = await start_pool(fake_system, staff(size=2, max_restarts=2, within=5.0))
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await p.ask(Explode())
        await clock.advance(1.0)
    await wait_restarted(fake_system, "/root/p/0", 1)
    await wait_restarted(fake_system, "/root/p/1", 1)
    with pytest.raises(RuntimeError):
        await p.ask(Explode())  # the third within 5 s
    await wait_restarted(fake_system, "/root/p", 1)  # the root restarted the whole pool
    gave_up = events_named(events, "supervisor.gave_up", path="/root/p")
    assert len(gave_up) == 1
    assert sorted([await p.ask(Where()) for _ in range(2)]) == ["0", "1"]  # fresh workers


async def test_the_default_intensity_is_three_restarts_per_worker() -> None:
    assert Pool(Staff, [], size=4).max_restarts == 12
    assert Pool(Staff, [], size=4, max_restarts=0).max_restarts == 0


async def test_a_root_pool_that_gives_up_stops_the_system(staff: Callable[..., Pool]) -> None:
    async with ActorSystem("pool-root") as system:
        p = await system.start(staff(size=1, max_restarts=0))
        assert p.path == "/p"
        with pytest.raises(RuntimeError):
            await p.ask(Explode())
        await asyncio.wait_for(system.wait_stopped(), 5.0)
    assert isinstance(system.gave_up, SupervisorGaveUp)


# -- where a pool fits -------------------------------------------------------------


async def test_tree_shows_the_router_as_a_pool_over_its_workers(
    system: ActorSystem, staff: Callable[..., Pool]
) -> None:
    await start_pool(system, staff(size=3))
    pool = node(system, "/root/p")
    assert pool is not None and pool.kind == "pool" and pool.status == "running"
    assert [(n.path, n.kind) for n in pool.children] == [
        ("/root/p/0", "actor"),
        ("/root/p/1", "actor"),
        ("/root/p/2", "actor"),
    ]


async def test_discover_and_publish_see_the_workers_not_the_router(
    system: ActorSystem, staff: Callable[..., Pool], log: list[tuple[str, int]]
) -> None:
    p = await start_pool(system, staff(size=3))
    workers = [f"/root/p/{i}" for i in range(3)]
    assert [ref.path for ref in system.discover(Staff)] == workers
    assert [ref.path for ref in system.discover(handles=Job)] == workers
    assert [ref.path for ref in system.discover(Actor)] == workers  # not the router
    assert p not in system.discover(Actor)
    assert await system.publish(Job(9)) == 3
    await eventually(lambda: len(log) == 3)
    assert sorted(log) == [("0", 9), ("1", 9), ("2", 9)]


async def test_a_pool_nests_in_a_supervisor_and_starts_with_start_child(
    system: ActorSystem, staff: Callable[..., Pool]
) -> None:
    tree = Supervisor(
        "root",
        children=[Supervisor("inner", children=[staff(size=2, name="a")])],
    )
    await system.start(tree)
    a = system.lookup("/root/inner/a")
    assert a is not None and await a.ask(Where()) == "0"
    b = await system.start_child("/root/inner", staff(size=2, name="b"))
    assert b is not None and b.path == "/root/inner/b"
    assert [await b.ask(Where()) for _ in range(2)] == ["0", "1"]
    assert node(system, "/root/inner/b").kind == "pool"  # type: ignore[union-attr]
    with pytest.raises(MyceliumError, match="already started"):
        await system.start_child("/root/inner", staff(size=1, name="b"))
    with pytest.raises(MyceliumError, match="not a supervisor"):  # a pool has only its workers
        await system.start_child("/root/inner/b", staff(size=1, name="c"))


async def test_stopping_a_pool_drains_its_workers_then_refuses(
    system: ActorSystem, staff: Callable[..., Pool], log: list[tuple[str, int]]
) -> None:
    p = await start_pool(system, staff(size=2))
    for n in range(10):
        p.tell_nowait(Job(n))
    await p.stop()
    assert sorted(n for _, n in log) == list(range(10))
    assert node(system, "/root/p").status == "stopped"  # type: ignore[union-attr]
    with pytest.raises(ActorStopped):
        await p.ask(Where())


async def test_a_pool_stops_its_workers_all_at_once(
    system: ActorSystem, staff: Callable[..., Pool]
) -> None:
    stopping: list[str] = []
    gate = asyncio.Event()
    p = await start_pool(system, staff(size=3, stopping=stopping, stop_gate=gate))
    stop = asyncio.ensure_future(p.stop())
    # Every worker is in its on_stop before any has finished: no order among them.
    await eventually(lambda: sorted(stopping) == ["0", "1", "2"], message=f"{stopping}")
    gate.set()
    await stop


async def test_workers_run_on_the_pools_executor(
    system: ActorSystem, staff: Callable[..., Pool]
) -> None:
    p = await start_pool(system, staff(size=2, executor=PinnedThread()))
    assert [await p.ask(Where()) for _ in range(4)] == ["0", "1", "0", "1"]
    threads = [node(system, f"/root/p/{i}").thread for i in range(2)]  # type: ignore[union-attr]
    assert threads == ["mycelium:/root/p/0", "mycelium:/root/p/1"]
    assert node(system, "/root/p").thread is None  # type: ignore[union-attr]  # the router


async def test_a_worker_asking_its_own_pool_is_answered_by_another_worker(
    system: ActorSystem, staff: Callable[..., Pool]
) -> None:
    p = await start_pool(system, staff(size=2))
    assert await p.ask(AskOwnPool()) == "1"  # worker 0 asked; 1 answered
    solo = await system.start_child("/root", staff(size=1, name="solo"))
    assert solo is not None
    with pytest.raises(MyceliumError, match="would deadlock"):
        await solo.ask(AskOwnPool())


async def test_a_pool_is_reached_from_another_node(staff: Callable[..., Pool]) -> None:
    async with (
        ActorSystem("b", listen="memory://pool-b") as server,
        ActorSystem("a", listen="memory://pool-a") as client,
    ):
        await start_pool(server, staff(size=2))
        p = await client.remote(f"{server.address}/root/p")
        assert [await p.ask(Echo("hi")) for _ in range(4)] == ["0:hi", "1:hi", "0:hi", "1:hi"]


# -- bad arguments ---------------------------------------------------------------


class NeedsSize(Actor):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size


class TakesChildOptions(Actor):
    def __init__(self, *, restart: str, mailbox_capacity: int) -> None:
        super().__init__()
        self.options = (restart, mailbox_capacity)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((Staff, []), {"size": 0}, ValueError, "size must be at least 1"),
        ((Staff, []), {"size": "2"}, TypeError, "size must be an int"),
        ((Staff, []), {"size": True}, TypeError, "size must be an int"),
        ((Staff, []), {"size": 2, "route": "random"}, ValueError, "route must be one of"),
        ((Staff, []), {"size": 2, "max_restarts": -1}, ValueError, "max_restarts"),
        ((Staff, []), {"size": 2, "within": 0}, ValueError, "within"),
        ((Staff, []), {"size": 2, "shutdown": -1}, ValueError, "shutdown"),
        ((Staff, []), {"size": 2, "name": "a/b"}, ValueError, "name"),
        ((Staff, []), {"size": 2, "executor": "threads"}, TypeError, "executor"),
        ((object,), {"size": 2}, TypeError, "Actor subclass"),
        ((NeedsSize,), {"size": 2}, ValueError, "NeedsSize\\(\\) needs 'size'"),
    ],
)
def test_bad_arguments_fail_at_construction(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        Pool(*args, **kwargs)


async def test_a_reserved_name_given_positionally_and_child_options_reach_the_workers(
    system: ActorSystem,
) -> None:
    Pool(NeedsSize, 7, size=2)  # positionally: no clash
    await system.start(
        Supervisor(
            "root",
            children=[Pool(TakesChildOptions, size=1, restart="x", mailbox_capacity=3, name="t")],
        )
    )
    (worker,) = system.discover(TakesChildOptions)
    assert worker._slot.instance.options == ("x", 3)
    assert node(system, "/root/t/0").status == "running"  # type: ignore[union-attr]


def test_a_supervisor_takes_pools_and_refuses_other_children() -> None:
    pool = Pool(Staff, [], size=2, name="p")
    assert Supervisor("root", children=[Child(Staff, [], name="c"), pool]).children[1] is pool
    with pytest.raises(TypeError, match="Child, Supervisor or Pool"):
        Supervisor("root", children=[Staff])
    with pytest.raises(ValueError, match="duplicate child names"):
        Supervisor("root", children=[pool, Child(Staff, [], name="p")])
