"""`Pool`: a router at one path that supervises `size` interchangeable workers.

The pool's slot is a one_for_one supervisor of its workers (`0`..`size-1`),
shown as `kind == "pool"`. What makes it a router is its mailbox: a
`_RouterMailbox` keeps no queue of its own, and every put into it (a `tell`,
`tell_nowait`, `ask`, `ask_blocking`, or a message that arrived from another
node) is handed, in the sender's own call, to the mailbox of the worker the
route picks. There is no router task and no extra hop: the worker serves the
item as if it had been sent to it directly, and the asker's reply future
travels inside the item, so the worker that took an ask answers it.

Routing reads only `status`, the mailbox depth and `handling` of the worker
slots (plain attribute reads, safe from any thread). A worker that is not
running (crashed and restarting, starting, or stopped for good) is routed
around; when none runs, a message goes to a restarting one, whose mailbox
outlives the restart; when every worker is stopped for good, the message is
refused as by a stopped actor.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import ActorStopped, MyceliumError
from ..kernel.actor import Actor
from ..kernel.executor import Executor
from ..kernel.mailbox import Item, Mailbox
from ..kernel.ref import LocalActorRef, serving
from ..kernel.replies import settle
from ..supervision.spec import Child, Spec, Supervisor, _check_shutdown, _is_count, _is_number
from ..supervision.supervisor import SupervisorSlot, start_root
from .subprocess import Subprocess, _as_is, _Relay, sender_codec

if TYPE_CHECKING:
    from ..kernel.clock import Clock
    from ..kernel.ref import ActorRef
    from ..kernel.slot import Slot
    from ..kernel.system import ActorSystem
    from ..wire.codec import Codec

ROUTES = ("round_robin", "least_busy")

#: The keywords `Pool` takes for itself; every other keyword goes to the workers.
RESERVED = ("size", "name", "executor", "route", "max_restarts", "within", "shutdown")


@attrs.frozen(init=False)
class Pool(Spec):
    """`size` workers of `actor_class` behind one ref, accepted wherever a `Child` is.

    `Pool(cls, *args, size, name=None, executor=None, route="round_robin",
    max_restarts=None, within=5.0, shutdown=5.0, **kwargs)`: `args` and
    `kwargs` go to every worker's constructor; `executor` and `shutdown`
    apply to each worker. The workers restart one_for_one, at most
    `max_restarts` (default `3 * size`) times within `within` seconds; past
    that the pool gives up (`SupervisorGaveUp`) and its parent decides, as
    for a supervisor. A pool is itself a permanent child.
    """

    actor_class: type[Actor]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    size: int
    name: str
    executor: Executor | None
    route: str
    max_restarts: int
    within: float
    shutdown: float | None
    #: The one_for_one supervisor spec of the workers (derived; what the slot runs).
    supervisor: Supervisor = attrs.field(eq=False, repr=False)

    #: A pool is a permanent child and never significant (what its supervisor reads).
    restart: str = attrs.field(default="permanent", init=False)
    significant: bool = attrs.field(default=False, init=False)

    def __init__(
        self,
        actor_class: type[Actor],
        *args: Any,
        size: int,
        name: str | None = None,
        executor: Executor | None = None,
        route: str = "round_robin",
        max_restarts: int | None = None,
        within: float = 5.0,
        shutdown: float | None = 5.0,
        **kwargs: Any,
    ) -> None:
        if not (isinstance(actor_class, type) and issubclass(actor_class, Actor)):
            raise TypeError(f"Pool: expected an Actor subclass, got {actor_class!r}")
        name = actor_class.__name__.lower() if name is None else name
        where = f"Pool {name!r}"
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"{where}: name must be a non-empty string without '/'")
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"{where}: size must be an int >= 1, not {size!r}")
        if size < 1:
            raise ValueError(f"{where}: size must be at least 1, not {size}")
        if route not in ROUTES:
            raise ValueError(f"{where}: route must be one of {ROUTES}, not {route!r}")
        if executor is not None and not isinstance(executor, Executor):
            raise TypeError(f"{where}: executor must be an Executor or None, not {executor!r}")
        if max_restarts is None:
            max_restarts = 3 * size
        elif not _is_count(max_restarts):
            raise ValueError(f"{where}: max_restarts must be an int >= 0, not {max_restarts!r}")
        if not (_is_number(within) and within > 0):
            raise ValueError(f"{where}: within must be a number > 0, not {within!r}")
        _check_shutdown(where, shutdown)
        _check_reserved(where, actor_class, args, kwargs)
        workers = [
            _worker(actor_class, args, kwargs, str(i), executor, shutdown) for i in range(size)
        ]
        # The router waits for its workers to stop (each within `shutdown`), as a
        # supervisor does: a limit of its own could leave workers behind.
        supervisor = Supervisor(
            name, workers, "one_for_one", max_restarts, float(within), shutdown=None
        )
        self.__attrs_init__(
            actor_class,
            args,
            kwargs,
            size,
            name,
            executor,
            route,
            max_restarts,
            float(within),
            shutdown,
            supervisor,
        )

    def new_slot(self, system: ActorSystem, parent: Slot | None) -> Slot:
        """The router's slot below `parent` (what a supervisor calls to start it)."""
        slot = system.new_slot(
            parent, _Router, (), {}, name=self.name, shutdown=None, slot_class=PoolSlot
        )
        assert isinstance(slot.mailbox, _RouterMailbox)
        slot.mailbox.route_by(self.route)
        if isinstance(self.executor, Subprocess) and type(slot.ref) is _PoolRef:
            # Worker processes: what cannot cross to them is refused at the sender,
            # as by a worker's own ref (the router hands messages on unencoded).
            slot.ref = _CheckedPoolRef(slot, sender_codec(system, slot.path))
        return slot

    async def start_root(self, system: ActorSystem) -> ActorRef[Any]:
        """Start the pool at `/<name>` (what `system.start(pool)` calls)."""
        ref: ActorRef[Any] = await start_root(system, self)
        return ref


def _worker(
    actor_class: type[Actor],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    name: str,
    executor: Executor | None,
    shutdown: float | None,
) -> Child:
    """Worker `name`'s spec. `kwargs` are all the constructor's, even one that
    `Child` would take as an option of its own (`restart=`, `mailbox_capacity=`):
    Pool reserves only its own keywords."""
    child = Child(actor_class, *args, name=name, executor=executor, shutdown=shutdown)
    object.__setattr__(child, "kwargs", dict(kwargs))  # frozen: set once, before anyone sees it
    return child


def _check_reserved(
    where: str, actor_class: type[Actor], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """A constructor that needs an argument named like a Pool keyword could never
    get it through `Pool(...)` (Pool takes it): say so now, not at start."""
    try:
        signature = inspect.signature(actor_class)
        bound = signature.bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return  # not introspectable, or a mismatch the start reports with the real call
    for parameter in signature.parameters.values():
        if (
            parameter.name in RESERVED
            and parameter.name not in bound.arguments
            and parameter.default is parameter.empty
            and parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
        ):
            raise ValueError(
                f"{where}: {actor_class.__qualname__}() needs {parameter.name!r}, but "
                f"{parameter.name}= is a Pool keyword and never reaches the workers "
                f"(Pool reserves {', '.join(RESERVED)}); pass it positionally or rename it"
            )


class _Router(Actor):
    """The instance behind a pool's slot: it supervises; its mailbox routes."""


class PoolSlot(SupervisorSlot):
    """A pool's slot: a one_for_one supervisor of its workers whose mailbox routes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The mailbox the ref writes to must be the router's: replace it, then
        # make the ref again (the system's kind of ref, which holds the mailbox;
        # the plain local kind, traced or not, gets a `tell` that goes straight
        # to the router).
        self.mailbox = _RouterMailbox(self)
        ref = self.system.make_ref(self)
        tracing = self.system.tracing
        local = LocalActorRef if tracing is None else tracing.ref_class
        self.ref = _PoolRef(self) if type(ref) is local else ref

    @property
    def kind(self) -> str:
        return "pool"

    @property
    def sup(self) -> Supervisor:
        pool: Pool = self.spec
        return pool.supervisor

    def stops_children_together(self) -> bool:
        return True  # workers have no order among them: stop them all at once


class _PoolRef(LocalActorRef[Any]):
    """A pool's local ref: `tell` routes at once (the inherited one would first try
    the router's own queue, which never has room, then take the slow way round).
    In a tracing system what it sends carries the sender's trace context, as
    the system's own refs' messages do."""

    __slots__ = ("_wrap",)

    def __init__(self, slot: Slot) -> None:
        super().__init__(slot)
        tracing = slot.system.tracing
        self._wrap: Any = _as_is if tracing is None else tracing.wrap

    async def tell(self, message: Any) -> None:
        item = (self._wrap(message), None)
        mb = self.mailbox
        if not mb.offer(item):
            await mb.put(item, self._clock)

    def tell_nowait(self, message: Any) -> None:
        super().tell_nowait(self._wrap(message))

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        return await super().ask(self._wrap(message), timeout)

    def ask_blocking(self, message: Any, timeout: float | None = 5.0) -> Any:
        return super().ask_blocking(self._wrap(message), timeout)


class _CheckedPoolRef(_PoolRef):
    """The local ref of a pool of worker processes: each message is checked with
    the link's codec first (`SerializationError` here, nothing routed)."""

    __slots__ = ("_codec",)

    def __init__(self, slot: Slot, codec: Codec) -> None:
        super().__init__(slot)
        self._codec = codec

    async def tell(self, message: Any) -> None:
        self._codec.encode(message)
        await super().tell(message)

    def tell_nowait(self, message: Any) -> None:
        self._codec.encode(message)
        super().tell_nowait(message)

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        self._codec.encode(message)
        return await super().ask(message, timeout)

    def ask_blocking(self, message: Any, timeout: float | None = 5.0) -> Any:
        self._codec.encode(message)
        return super().ask_blocking(message, timeout)


class _RouterMailbox(Mailbox):
    """A mailbox that keeps no message: each put goes to a worker's mailbox.

    The system lane is the pool supervisor's own, as for any supervisor. Its
    capacity is 0 so the ref's inlined fast path (which appends directly)
    never applies and every put comes through the methods below.
    """

    __slots__ = ("_least_busy", "_next", "_pool")

    def __init__(self, pool: PoolSlot) -> None:
        super().__init__(pool.path, 1, "block", pool.system)
        self.capacity = 0
        self._pool = pool
        self._least_busy = False  # `route_by` sets it, once the slot exists
        self._next = 0  # round robin: the worker to try first

    def route_by(self, route: str) -> None:
        """Pick by `route` ("round_robin" or "least_busy")."""
        self._least_busy = route == "least_busy"

    def must_wait(self) -> bool:
        return False  # a put waits, if at all, in the mailbox of the worker it goes to

    # -- the hot path: a worker that runs and has room ---------------------

    def offer(self, item: Item) -> bool:
        """Hand `item` to a running worker with room (the route's pick); False if none."""
        if self.closed:
            return False
        workers = self._pool.children
        asker = None if item[1] is None else _serving_worker()  # a tell may go to its sender
        if self._least_busy:
            best: Slot | None = None
            low = -1
            for worker in workers:
                if worker.status != "running" or worker is asker:
                    continue
                load = _load(worker)
                if best is None or load < low:
                    best, low = worker, load
                    if not load:
                        break
            return best is not None and best.mailbox.offer(item)
        n = len(workers)
        i = self._next
        for _ in range(n):
            if i >= n:
                i = 0
            worker = workers[i]
            i += 1
            if worker.status == "running" and worker is not asker and worker.mailbox.offer(item):
                self._next = i
                return True
        return False

    def offer_quietly(self, item: Item) -> bool:
        return self.offer(item)  # the worker's own offer wakes it; `wake_now` has nothing to do

    def wake_now(self) -> None:
        """Nothing to wake: items never stay here."""

    # -- nobody running has room: the pick's own policy applies ---------------

    def put_nowait(self, item: Item) -> bool:
        if self.offer(item):
            return True
        target = self._fallback(item, waits=False)
        return False if target is None else target.put_nowait(item)

    async def put(self, item: Item, clock: Clock, timeout: float | None = None) -> bool:
        if self.offer(item):
            return True
        target = self._fallback(item, waits=True)
        return False if target is None else await target.put(item, clock, timeout)

    def put_blocking(self, item: Item, timeout: float | None) -> bool:
        if self.offer(item):
            return True
        target = self._fallback(item, waits=True)
        return False if target is None else target.put_blocking(item, timeout)

    def _fallback(self, item: Item, waits: bool) -> Mailbox | None:
        """The mailbox that takes `item` when no running worker has room: a
        running worker's (full: its overflow policy applies), else a restarting
        or starting worker's (kept for its next incarnation). None once the
        item is refused (the pool is stopped, or every worker is).

        A worker's own ask (or a tell that would wait for room) never goes to
        that worker: it would wait for itself. When no other worker can take
        it, the ask fails and the tell raises `MyceliumError`, as when an actor
        asks itself or waits for room in its own mailbox."""
        if self.closed:
            self._reject(item, "stopped")
            return None
        workers = self._pool.children
        message, reply = item
        sender = _serving_worker() if reply is not None or waits else None
        for wanted in ("running", None):
            found = [
                w
                for w in workers
                if w is not sender
                and not w.mailbox.closed
                and (w.status == wanted if wanted else w.status != "stopped")
            ]
            if found:
                if self._least_busy:
                    pick = min(found, key=_load)
                else:
                    pick = found[self._next % len(found)]
                    self._next = workers.index(pick) + 1
                return pick.mailbox
        if sender in workers and sender.status != "stopped":
            error = MyceliumError(
                f"{sender.path} {'asked' if reply is not None else 'told'} its own pool "
                f"{self.path} and no other worker can take it; waiting for itself would deadlock"
            )
            if reply is None:
                raise error
            settle(reply, exc=error)
        elif reply is not None:
            settle(reply, exc=ActorStopped(f"pool {self.path} has no worker left to take it"))
        else:
            self.sink.dead_letter(self.path, message, "stopped")
        return None


def _load(worker: Slot) -> int:
    """What `least_busy` counts: the messages queued for `worker`, and the one
    it handles, or for a worker process the asks it has in flight there."""
    server: Any = worker.server  # a worker process's is its relay (kernel.executor's seam)
    if type(server) is _Relay:
        return len(worker.mailbox.queue) + server.asks
    return len(worker.mailbox.queue) + (worker.handling is not None)


def _serving_worker() -> Any:
    """The actor whose running handler sends this, if any: its ask to its own pool
    must not be routed to itself, which would wait for itself."""
    current = serving.get()
    if current is None:
        return None
    asker, invocation = current
    # Only the handler running now waits for this answer (a task it left behind may ask).
    return asker if invocation is not None and invocation is asker.handling else None
