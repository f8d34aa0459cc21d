"""Test actors and messages shared by the kernel tests.

Messages live at module level so handler annotations resolve. `Worker` is the
general-purpose actor: it records what it handles and what its hooks did in a
journal the test owns (so the journal outlives the actor), and its `Hold`
handler parks on a `Gate` the test opens (from any thread: the executor tests
subclass `Worker` for actors on pinned threads), which is how tests fill a mailbox.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import attrs

from mycelium_actors import Actor, ActorRef, Scheduled, Terminated, handler
from mycelium_actors.testing import eventually

# -- messages ---------------------------------------------------------------


@attrs.frozen
class Ping:
    """Replies "pong"."""


@attrs.frozen
class Record:
    """Appends `value` to the worker's journal and its `seen` list."""

    value: Any


@attrs.frozen
class GetSeen:
    """Replies with the values of the `Record`s handled so far (and `Terminated`s)."""


@attrs.frozen
class Hold:
    """Parks the handler until the worker's gate opens; replies "released"."""


@attrs.frozen
class Boom:
    """Raises `Crash(reason)` in the handler."""

    reason: str = "boom"


@attrs.frozen
class StopSelf:
    """Calls `context.stop()` and replies "stopping"."""


@attrs.frozen
class AskSelf:
    """Asks the worker's own ref; replies with the exception that raised."""


@attrs.frozen
class WhichTask:
    """Replies with the id of the task running the handler."""


@attrs.frozen
class Introspect:
    """Replies with a dict of the context's self_ref, path, parent and system."""


@attrs.frozen
class LogHello:
    """Logs event "hello" through `context.log`."""


@attrs.frozen
class SpawnChild:
    """Spawns a `Worker` child (journal `journal`) and replies with its ref."""

    name: str | None = None
    journal: list[Any] = attrs.field(factory=list, eq=False)


@attrs.frozen
class Watch:
    """Watches `ref`; the worker records the `Terminated` it then gets."""

    ref: ActorRef[Any]


@attrs.frozen
class ScheduleOnce:
    delay: float
    message: Any


@attrs.frozen
class ScheduleEvery:
    interval: float
    message: Any


@attrs.frozen
class PipeIn:
    """Pipes `awaitable` to self, wrapped in `Record`."""

    awaitable: Any = attrs.field(eq=False)


@attrs.frozen
class Unknown:
    """No test actor handles this."""


# dispatch hierarchy: Puppy < Dog < Animal, Cat < Animal
@attrs.frozen
class Animal:
    pass


@attrs.frozen
class Dog(Animal):
    pass


@attrs.frozen
class Puppy(Dog):
    pass


@attrs.frozen
class Cat(Animal):
    pass


@attrs.frozen
class Left:
    pass


@attrs.frozen
class Right:
    pass


@attrs.frozen
class Named:
    pass


@attrs.frozen
class First:
    pass


@attrs.frozen
class Second:
    pass


class Crash(Exception):
    """What `Boom` raises."""


# -- helpers ----------------------------------------------------------------


class FakePerfClock:
    """The dispatcher's per-message clock, moved only by the test's handlers."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Gate:
    """A wait the test controls, for an actor on any loop or thread.

    `entered` is set when a handler arrives; `open()` (from any thread) lets
    every waiter through, each on its own loop.
    """

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._lock = threading.Lock()
        self._open = False
        self._waiters: list[asyncio.Future[None]] = []

    async def pass_through(self) -> None:
        fut = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._open:
                fut.set_result(None)
            else:
                self._waiters.append(fut)
        self.entered.set()
        await fut

    def open(self) -> None:
        with self._lock:
            self._open = True
            waiters, self._waiters = self._waiters, []
        for fut in waiters:
            try:
                fut.get_loop().call_soon_threadsafe(_resolve, fut)
            except RuntimeError:
                pass  # that loop is closed

    async def wait_entered(self, timeout: float = 5.0) -> None:
        await eventually(self.entered.is_set, timeout, message="the handler never reached the gate")


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def park(ref: ActorRef[Any], gate: Gate, *queued: Any) -> None:
    """Park `ref`'s worker inside a `Hold` handler, then queue `Record(v)` for each of `queued`."""
    await ref.tell(Hold())
    await gate.wait_entered()
    for value in queued:
        ref.tell_nowait(Record(value))


# -- actors -----------------------------------------------------------------


class Worker(Actor):
    """Records messages and hooks; see the messages above for what each does."""

    def __init__(
        self,
        journal: list[Any] | None = None,
        gate: Gate | None = None,
        *,
        fail_on_start: bool = False,
        hold_on_start: bool = False,
        hold_on_failure: bool = False,
    ) -> None:
        super().__init__()
        self.journal = journal if journal is not None else []
        self.gate = gate if gate is not None else Gate()
        self.fail_on_start = fail_on_start
        self.hold_on_start = hold_on_start
        self.hold_on_failure = hold_on_failure
        self.seen: list[Any] = []

    async def on_start(self) -> None:
        if self.hold_on_start:
            await self.gate.pass_through()
        self.journal.append("on_start")
        if self.fail_on_start:
            raise Crash("start")

    async def on_stop(self) -> None:
        self.journal.append("on_stop")

    async def on_failure(self, exc: BaseException) -> None:
        self.journal.append(f"on_failure:{exc}")
        if self.hold_on_failure:
            await self.gate.pass_through()

    @handler
    def ping(self, msg: Ping) -> str:
        return "pong"

    @handler
    def record(self, msg: Record) -> None:
        self.journal.append(msg.value)
        self.seen.append(msg.value)

    @handler
    def get_seen(self, msg: GetSeen) -> list[Any]:
        return list(self.seen)

    @handler
    async def hold(self, msg: Hold) -> str:
        await self.gate.pass_through()
        return "released"

    @handler
    def boom(self, msg: Boom) -> None:
        raise Crash(msg.reason)

    @handler
    def stop_self(self, msg: StopSelf) -> str:
        self.context.stop()
        return "stopping"

    @handler
    async def ask_self(self, msg: AskSelf) -> BaseException | None:
        try:
            await self.context.self_ref.ask(Ping(), timeout=1.0)
        except BaseException as exc:
            return exc
        return None

    @handler
    def which_task(self, msg: WhichTask) -> int:
        return id(asyncio.current_task())

    @handler
    def introspect(self, msg: Introspect) -> dict[str, Any]:
        ctx = self.context
        return {
            "self_ref": ctx.self_ref,
            "path": ctx.path,
            "parent": ctx.parent,
            "system": ctx.system,
        }

    @handler
    def log_hello(self, msg: LogHello) -> None:
        self.context.log.info("hello")

    @handler
    async def spawn_child(self, msg: SpawnChild) -> ActorRef[Worker]:
        return await self.context.spawn(Worker, msg.journal, name=msg.name)

    @handler
    def watch(self, msg: Watch) -> None:
        self.context.watch(msg.ref)

    @handler
    def terminated(self, msg: Terminated) -> None:
        self.seen.append(msg)

    @handler
    def schedule_once(self, msg: ScheduleOnce) -> Scheduled:
        return self.context.schedule_once(msg.delay, msg.message)

    @handler
    def schedule_every(self, msg: ScheduleEvery) -> Scheduled:
        return self.context.schedule_every(msg.interval, msg.message)

    @handler
    def pipe_in(self, msg: PipeIn) -> None:
        self.context.pipe_to_self(msg.awaitable, Record)

    # plain methods, for ref.proxy()
    def add(self, a: int, b: int = 0) -> int:
        return a + b

    def where(self) -> tuple[int, bool]:
        """(id of the running task, whether it runs inside this actor's handler)."""
        ref = self.context.self_ref
        return id(asyncio.current_task()), ref.owns_current_task()  # type: ignore[attr-defined]

    async def where_async(self) -> tuple[int, bool]:
        await asyncio.sleep(0)
        return self.where()

    def explode(self) -> None:
        raise Crash("proxy")


#: Worker subclasses whose mailbox (capacity 2) is set by class attribute, by policy.
BOXED: dict[str, type[Worker]] = {
    policy: type(f"Boxed_{policy}", (Worker,), {"mailbox_capacity": 2, "mailbox_overflow": policy})
    for policy in ("block", "drop_new", "drop_old", "fail")
}


class Zoo(Actor):
    """Dispatch by class hierarchy, unions, explicit types, sync and async handlers."""

    @handler
    def animal(self, msg: Animal) -> str:
        return "animal"

    @handler
    async def dog(self, msg: Dog) -> str:
        await asyncio.sleep(0)
        return "dog"

    @handler
    def either(self, msg: Left | Right) -> str:
        return f"either:{type(msg).__name__}"

    @handler(Named)
    def explicit(self, msg) -> str:  # type: ignore[no-untyped-def]
        return "named"

    @handler((First, Second))
    async def pair(self, msg: object) -> str:
        return f"pair:{type(msg).__name__}"


class Kennel(Zoo):
    """Inherits Zoo's handlers and overrides the one for Dog."""

    @handler
    def dog(self, msg: Dog) -> str:
        return "kennel dog"


class CatchAll(Actor):
    """Everything without a handler goes to on_receive."""

    @handler
    def ping(self, msg: Ping) -> str:
        return "pong"

    async def on_receive(self, message: Any) -> Any:
        return ("fallback", message)


class StopOrder(Actor):
    """Appends its path to a shared list in on_stop; `fail` makes on_stop raise after that."""

    def __init__(self, order: list[str], fail: bool = False) -> None:
        super().__init__()
        self.order = order
        self.fail = fail

    async def on_stop(self) -> None:
        self.order.append(self.context.path)
        if self.fail:
            raise Crash("on_stop")
