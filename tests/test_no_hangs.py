"""The central promise: an ask (or a blocked tell) never hangs.

Each test here is a way the kernel used to hang: a blocked sender forgotten by
a restart that dropped the mailbox, an actor waiting on itself through a task,
a shutdown called from another thread's loop.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import attrs
import pytest
from actors import Hold, Ping, Record, Worker

from mycelium_actors import (
    Actor,
    ActorRef,
    ActorSystem,
    AskTimeout,
    Child,
    MyceliumError,
    Supervisor,
    handler,
)
from mycelium_actors.testing import eventually


@attrs.frozen
class Crash:
    """Raises after the handler has been entered (the worker's gate decides when)."""


class Fragile(Worker):
    """A Worker whose `Crash` handler parks on the gate, then raises."""

    mailbox_capacity = 2

    @handler
    async def crash(self, msg: Crash) -> None:
        await self.gate.pass_through()
        raise RuntimeError("crash")


async def test_a_sender_blocked_when_a_restart_drops_the_mailbox_gets_in_first(
    system, gate
) -> None:
    """Defect 1: with on_restart_mailbox="drop", a sender blocked on the full mailbox is
    admitted into the new incarnation's mailbox, ahead of any later tell."""
    journal: list[Any] = []
    tree = Supervisor(
        "root", children=[Child(Fragile, journal, gate, name="f", on_restart_mailbox="drop")]
    )
    await system.start(tree)
    ref = system.lookup("/root/f")
    await ref.tell(Crash())
    await gate.wait_entered()
    ref.tell_nowait(Record("dropped-1"))
    ref.tell_nowait(Record("dropped-2"))
    blocked = asyncio.create_task(ref.tell(Record("blocked")))
    await eventually(lambda: ref._slot.mailbox.blocked == 1)
    gate.open()
    await asyncio.wait_for(blocked, 5)
    await ref.tell(Record("later"))
    assert await ref.ask(Ping(), timeout=5) == "pong"
    sent = ("dropped-1", "dropped-2", "blocked", "later")
    assert [value for value in journal if value in sent] == ["blocked", "later"]


# -- an actor that would wait for itself ------------------------------------------


@attrs.frozen
class SelfAsk:
    """Ask self through `how`; reply with the exception raised (or the answer)."""

    how: str


@attrs.frozen
class AskBeside:
    """Start a self-ask the handler does not await (`how`); its answer goes to `answers`."""

    how: str
    answers: list[Any]


class Narcissus(Actor):
    mailbox_capacity = 1

    @handler
    def ping(self, msg: Ping) -> str:
        return "pong"

    @handler
    async def self_ask(self, msg: SelfAsk) -> Any:
        me = self.context.self_ref
        ways = {
            "direct": lambda: me.ask(Ping()),
            "wait_for": lambda: asyncio.wait_for(me.ask(Ping()), 3),
            "gather": lambda: asyncio.gather(me.ask(Ping())),
            "awaited task": lambda: asyncio.create_task(me.ask(Ping())),
            "two tells into a full mailbox": lambda: asyncio.gather(
                me.tell(Ping()), me.tell(Ping())
            ),
        }
        try:
            return await ways[msg.how]()
        except MyceliumError as exc:
            return exc

    @handler
    async def ask_beside(self, msg: AskBeside) -> None:
        """Self-asks the handler does not wait for: allowed, answered after it."""
        me = self.context.self_ref
        if msg.how == "pipe_to_self":
            self.context.pipe_to_self(me.ask(Ping()), msg.answers.append)
            await asyncio.sleep(0.01)  # still running while the piped ask is made
        else:  # the task asks once this handler has returned
            msg.answers.append(asyncio.create_task(me.ask(Ping())))

    @handler
    def answer(self, msg: str) -> None:
        pass


@pytest.mark.parametrize(
    "how", ["direct", "wait_for", "gather", "awaited task", "two tells into a full mailbox"]
)
async def test_an_actor_waiting_on_itself_gets_an_error_at_once(system, how) -> None:
    """Defect 4: detected at the call (API.md section 3), not after a timeout."""
    ref = await system.spawn(Narcissus)
    error = await asyncio.wait_for(ref.ask(SelfAsk(how), timeout=None), 2)
    assert isinstance(error, MyceliumError) and "deadlock" in str(error)
    assert await ref.ask(Ping()) == "pong"


@pytest.mark.parametrize("how", ["pipe_to_self", "task after the handler"])
async def test_a_self_ask_the_handler_does_not_wait_for_is_allowed(system, how) -> None:
    ref = await system.spawn(Narcissus, mailbox_capacity=10)
    answers: list[Any] = []
    await ref.tell(AskBeside(how, answers))
    await eventually(lambda: answers)
    answer = answers[0] if how == "pipe_to_self" else await asyncio.wait_for(answers[0], 5)
    assert answer == "pong"


class Peer(Actor):
    """Asks `other` inside its handler, with `timeout` (for ask cycles)."""

    def __init__(self, timeout: float | None = 0.3) -> None:
        super().__init__()
        self.timeout = timeout
        self.other: ActorRef[Any] | None = None

    @handler
    def meet(self, msg: Record) -> None:
        self.other = msg.value

    @handler
    async def ping(self, msg: Ping) -> Any:
        assert self.other is not None
        return await self.other.ask(Ping(), timeout=self.timeout)


@pytest.mark.parametrize("timeout", [0.3, None])
@pytest.mark.parametrize("size", [2, 3])
async def test_the_ask_that_closes_a_cycle_is_refused_at_once_naming_it(
    system, size, timeout
) -> None:
    """Issue 18, defect 10: it ended in an AskTimeout, or never with timeout=None."""
    names = "abc"[:size]
    refs = [await system.spawn(Peer, timeout, name=name) for name in names]
    for ref, other in zip(refs, refs[1:] + refs[:1], strict=True):
        await ref.ask(Record(other))
    closing = [f"/{names[-1]}", *(f"/{name}" for name in names)]
    with pytest.raises(MyceliumError, match=" -> ".join(closing)) as info:
        await asyncio.wait_for(refs[0].ask(Ping(), timeout=None), 5)
    assert not isinstance(info.value, AskTimeout)


@attrs.frozen
class Fan:
    """Gathers the asks (ref, message) in `asks`."""

    asks: tuple[tuple[ActorRef[Any], Any], ...]


class Fanner(Worker):
    @handler
    async def fan(self, msg: Fan) -> list[Any]:
        return list(await asyncio.gather(*(ref.ask(m) for ref, m in msg.asks)))


async def test_overlapping_asks_leave_no_trace_of_whom_the_actor_waited_for(system, gate) -> None:
    """Issue 18, defect 9: a later timeout was reported as a cycle that did not exist."""
    a = await system.spawn(Fanner, None, gate, name="a")
    b = await system.spawn(Peer, 0.3, name="b")
    c = await system.spawn(Worker, name="c")
    await b.ask(Record(a))
    # The ask to b ends first; a used to keep a link to b after both ended.
    assert await a.ask(Fan(((b, Record(a)), (c, Ping())))) == [None, "pong"]
    await a.tell(Hold())  # a is busy, and asks nobody
    await gate.wait_entered()
    with pytest.raises(AskTimeout) as info:
        await asyncio.wait_for(b.ask(Ping(), timeout=None), 5)
    assert "cycle" not in str(info.value)


@attrs.frozen
class Go:
    """Starts a task that asks `parent` once `asking` is set (the child's handler does not wait)."""

    parent: ActorRef[Any]
    asking: asyncio.Event = attrs.field(eq=False)
    answers: list[Any] = attrs.field(eq=False)


class Kid(Actor):
    @handler
    def go(self, msg: Go) -> None:
        async def ask_parent() -> None:
            msg.asking.set()
            try:
                msg.answers.append(await msg.parent.ask(Ping(), timeout=5))
            except Exception as exc:
                msg.answers.append(exc)

        asyncio.get_running_loop().create_task(ask_parent())


class StartingKid(Kid):
    async def on_start(self) -> None:
        pass


@attrs.frozen
class Spawn:
    """Spawns `cls`, tells it `Go` and waits (still handling) until its task asks."""

    cls: type[Actor]
    answers: list[Any] = attrs.field(eq=False)


class Parent(Worker):
    @handler
    async def spawn_and_wait(self, msg: Spawn) -> str:
        child = await self.context.spawn(msg.cls)
        asking = asyncio.Event()
        await child.tell(Go(self.context.self_ref, asking, msg.answers))
        await asyncio.wait_for(asking.wait(), 5)
        return "spawned"


@pytest.mark.parametrize("cls", [Kid, StartingKid], ids=["inline start", "start task"])
async def test_a_task_of_a_child_may_ask_its_parent_while_the_parent_still_handles(
    system, cls
) -> None:
    """Issue 18, defect 8: the child inherited its spawner's serving marker."""
    parent = await system.spawn(Parent)
    answers: list[Any] = []
    assert await parent.ask(Spawn(cls, answers), timeout=5) == "spawned"
    await eventually(lambda: answers)
    assert answers == ["pong"]


# -- shutdown from anywhere ----------------------------------------------------------


@pytest.mark.parametrize("shape", ["tree", "one actor"])
async def test_shutdown_from_another_threads_loop_returns_promptly(shape) -> None:
    """Defect 3: it used to hang with a tree and take the full 5 s with one actor."""
    system = ActorSystem("elsewhere")
    async with system:
        if shape == "tree":
            await system.start(Supervisor("root", children=[Child(Worker, name="w")]))
        else:
            await system.spawn(Worker, name="w")
        outcome: list[BaseException | None] = []

        def other_thread() -> None:
            try:
                asyncio.run(asyncio.wait_for(system.shutdown(), 3))
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=other_thread)
        thread.start()
        await asyncio.wait_for(system.wait_stopped(), 3)
        await asyncio.to_thread(thread.join, 3)
        assert outcome == [None]
        assert system.lookup("/w") is None and system.lookup("/root") is None
