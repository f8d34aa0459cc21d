"""Supervision by example: strategies, outside stops, run-time children, start
failures, escalation and death watch. Each function returns what it observed."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs

from mycelium_actors import (
    Actor,
    ActorStopped,
    ActorSystem,
    Backoff,
    Child,
    MyceliumError,
    StartFailed,
    Supervisor,
    SupervisorGaveUp,
    Terminated,
    handler,
)
from mycelium_actors.testing import eventually


@attrs.frozen
class Crash:
    pass


@attrs.frozen
class Ping:
    pass


@attrs.frozen
class Record:
    value: Any


@attrs.frozen
class Seen:
    pass


@attrs.frozen
class Nap:
    seconds: float


class Worker(Actor):
    """Writes start:/stop: lines to a journal the caller owns."""

    def __init__(self, journal: list[str], fail_on_start: bool = False) -> None:
        super().__init__()
        self.journal = journal
        self.fail_on_start = fail_on_start
        self.seen: list[Any] = []

    async def on_start(self) -> None:
        if self.fail_on_start:
            raise RuntimeError("cannot start")
        self.journal.append(f"start:{self.context.self_ref.name}")

    async def on_stop(self) -> None:
        self.journal.append(f"stop:{self.context.self_ref.name}")

    @handler
    def crash(self, msg: Crash) -> None:
        raise RuntimeError("crash requested")

    @handler
    def ping(self, msg: Ping) -> str:
        return "pong"

    @handler
    def record(self, msg: Record) -> None:
        self.seen.append(msg.value)

    @handler
    def get_seen(self, msg: Seen) -> list[Any]:
        return self.seen

    @handler
    async def nap(self, msg: Nap) -> None:
        await asyncio.sleep(msg.seconds)


def bank_like_tree(journal: list[str]) -> Supervisor:
    """A two-level tree: the shape of supervisors/bank.py."""
    return Supervisor(
        "app",
        strategy="one_for_one",
        max_restarts=5,
        within=10.0,
        children=[
            Supervisor(
                "db",
                strategy="rest_for_one",  # the pool depends on the connection
                children=[
                    Child(Worker, journal, name="conn"),
                    Child(Worker, journal, name="pool"),
                ],
            ),
            Supervisor(
                "web",
                strategy="one_for_all",
                backoff=Backoff(min=0.05, max=2.0),
                children=[Child(Worker, journal, name=n) for n in ("router", "handlers")],
            ),
            Child(Worker, journal, name="metrics", restart="transient", shutdown=1.0),
        ],
    )


async def ping_all(system: ActorSystem, *paths: str) -> None:
    """Each ask is answered by a running instance, so restarts are done."""
    for path in paths:
        ref = system.lookup(path)
        assert ref is not None
        await ref.ask(Ping())


async def strategy(name: str) -> list[str]:
    """Crash b of [a, b, c] under `name`; return the journal from the crash on."""
    journal: list[str] = []
    tree = Supervisor(
        "root", strategy=name, children=[Child(Worker, journal, name=n) for n in "abc"]
    )
    async with ActorSystem("strategies") as system:
        await system.start(tree)
        journal.clear()
        await system.lookup("/root/b").tell(Crash())  # type: ignore[union-attr]
        await ping_all(system, "/root/a", "/root/b", "/root/c")
        return list(journal)


async def mailbox_survives_a_restart() -> dict[str, Any]:
    journal: list[str] = []
    async with ActorSystem("restart") as system:
        await system.start(Supervisor("root", children=[Child(Worker, journal, name="w")]))
        w = system.lookup("/root/w")
        assert w is not None
        await w.tell(Crash())  # these four tells are queued together;
        for n in (1, 2, 3):  # the crash consumes only its own message
            await w.tell(Record(n))
        seen = await w.ask(Seen())  # the new instance got 1, 2, 3
    return {"seen": seen, "starts": journal.count("start:w")}


async def outside_stop_is_for_good() -> dict[str, Any]:
    journal: list[str] = []
    async with ActorSystem("stops") as system:
        await system.start(Supervisor("root", children=[Child(Worker, journal, name="w")]))
        w = system.lookup("/root/w")
        assert w is not None
        await w.stop()  # permanent, yet not restarted: the caller meant it
        status = system.tree()[0].children[0].status  # the slot stays: "stopped"
        try:
            await w.ask(Ping())
        except ActorStopped:
            asked = "ActorStopped"
        await system.restart_child("/root/w")  # the same ref works again
        reply = await w.ask(Ping())
    return {"status": status, "asked": asked, "after_restart_child": reply}


async def children_at_run_time() -> dict[str, Any]:
    journal: list[str] = []
    async with ActorSystem("dynamic") as system:
        await system.start(Supervisor("root", children=[Child(Worker, journal, name="a")]))
        extra = await system.start_child("/root", Child(Worker, journal, name="extra"))
        try:
            await system.start_child("/root", Child(Worker, journal, name="extra"))
        except MyceliumError as exc:
            duplicate = str(exc)  # "/root/extra is already started"
        try:
            await system.start_child(
                "/root", Child(Worker, journal, True, name="bad", restart="temporary")
            )
        except RuntimeError:
            pass  # the on_start error reaches the caller; the tree is unchanged
        order = [node.path for node in system.tree()[0].children]
        await system.terminate_child("/root/extra")
        status = system.tree()[0].children[1].status
    return {"ref": extra.path, "duplicate": duplicate, "order": order, "status": status}


async def start_failure() -> dict[str, Any]:
    journal: list[str] = []
    tree = Supervisor(
        "root",
        children=[
            Child(Worker, journal, name="a"),
            Child(Worker, journal, True, name="bad"),
            Child(Worker, journal, name="c"),
        ],
    )
    async with ActorSystem("start") as system:
        try:
            await system.start(tree)
        except StartFailed as exc:  # a MyceliumError
            error, cause = exc, exc.__cause__
    return {"path": error.path, "message": str(error), "cause": cause, "journal": journal}


async def escalation(inner_restart: str = "transient") -> dict[str, Any]:
    journal: list[str] = []
    tree = Supervisor(
        "root",
        max_restarts=5,
        children=[
            Child(Worker, journal, name="solo"),
            Supervisor(
                "inner",
                max_restarts=1,  # a second crash within 5 s is one too many
                restart=inner_restart,
                children=[Child(Worker, journal, name="i1"), Child(Worker, journal, name="i2")],
            ),
        ],
    )
    async with ActorSystem("escalation") as system:
        await system.start(tree)
        i1 = system.lookup("/root/inner/i1")
        assert i1 is not None
        await i1.tell(Crash())
        await i1.ask(Ping())  # restarted once: within the limit
        await i1.tell(Crash())  # over the limit: inner gives up, root restarts inner
        await eventually(lambda: system.tree()[0].children[1].restarts == 1)
        inner = system.tree()[0].children[1]
        seen = list(journal)
    return {
        "journal": seen,
        "inner_restarts": inner.restarts,
        "inner_status": inner.status,
    }


async def root_gives_up() -> dict[str, Any]:
    journal: list[str] = []
    system = ActorSystem("doomed")
    async with system:
        tree = Supervisor("root", max_restarts=0, children=[Child(Worker, journal, name="w")])
        await system.start(tree)
        await system.lookup("/root/w").tell(Crash())  # type: ignore[union-attr]
        await asyncio.wait_for(system.wait_stopped(), 5)
    error = system.gave_up
    assert isinstance(error, SupervisorGaveUp)
    return {"gave_up": str(error), "running": system.running, "journal": journal}


async def give_up_fails_queued_asks() -> list[str]:
    journal: list[str] = []
    tree = Supervisor(
        "root",
        max_restarts=0,
        children=[Child(Worker, journal, name="a"), Child(Worker, journal, name="b")],
    )
    async with ActorSystem("give-up") as system:
        await system.start(tree)
        a, b = system.lookup("/root/a"), system.lookup("/root/b")
        assert a is not None and b is not None
        await b.tell(Nap(0.2))  # b is busy ...
        asks = [asyncio.create_task(b.ask(Ping())) for _ in range(3)]  # ... asks wait
        await asyncio.sleep(0)
        await a.tell(Crash())  # over the limit at once: root gives up, b is not drained
        replies = await asyncio.gather(*asks, return_exceptions=True)
    return [r if isinstance(r, str) else type(r).__name__ for r in replies]


class Watcher(Actor):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target
        self.notices: list[tuple[str, str]] = []

    async def on_start(self) -> None:
        ref = self.context.system.lookup(self.target)
        assert ref is not None
        self.context.watch(ref)

    @handler
    def terminated(self, msg: Terminated) -> None:
        self.notices.append((msg.ref.path, msg.reason))

    @handler
    def seen(self, msg: Seen) -> list[tuple[str, str]]:
        return self.notices


async def death_watch() -> dict[str, Any]:
    journal: list[str] = []
    tree = Supervisor(
        "root",
        children=[Child(Worker, journal, name="w"), Child(Watcher, "/root/w", name="watcher")],
    )
    async with ActorSystem("watch") as system:
        await system.start(tree)
        w, watcher = system.lookup("/root/w"), system.lookup("/root/watcher")
        assert w is not None and watcher is not None
        await w.tell(Crash())
        await w.ask(Ping())
        after_restart = list(await watcher.ask(Seen()))  # restarts are not reported
        await system.terminate_child("/root/w")
        await eventually(lambda: watcher.ask(Seen()))
        after_stop = await watcher.ask(Seen())
    return {"after_restart": after_restart, "after_stop": after_stop}


async def main() -> None:
    for name in ("one_for_one", "one_for_all", "rest_for_one"):
        print(name, await strategy(name))
    for demo in (
        mailbox_survives_a_restart,
        outside_stop_is_for_good,
        children_at_run_time,
        start_failure,
        escalation,
        root_gives_up,
        give_up_fails_queued_asks,
        death_watch,
    ):
        print(demo.__name__, await demo())


if __name__ == "__main__":
    asyncio.run(main())
