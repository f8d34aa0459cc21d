"""`ActorSystem`: the registry, spawning, discovery, publish, and ordered shutdown.

The registry belongs to the system: two systems in one process never see each
other. Slots are kept in start order, which is the order `discover` returns
and the reverse of the shutdown order. Supervision trees plug in through the
spec objects they pass to `start` (this module never imports them).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import defaultdict
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar, overload

import attrs

from .. import logs
from ..errors import MailboxFull, MyceliumError, SerializationError, SupervisorGaveUp
from .actor import Actor
from .clock import Clock
from .events import Callback, Events, error_text, exc_type_name
from .executor import DEFAULT_EXECUTOR
from .messages import Envelope
from .ref import LocalActorRef, check_timeout
from .seams import (
    DEFAULT_MAX_FRAME,
    Node,
    NodeInfo,
    NodeOptions,
    SslArgument,
    Tracing,
    Tree,
    new_node,
    new_tracing,
    tls_contexts,
)
from .slot import Slot
from .stats import ActorsView, Counters, HandlerSeconds, Metrics, NodeMetrics, depth_of
from .watchdog import Watchdog, check_threshold

if TYPE_CHECKING:
    from .executor import Executor
    from .ref import ActorRef

A = TypeVar("A", bound=Actor)

# Events logged above info by default: what an operator must see (API.md 8).
EVENT_LEVELS = {
    "actor.crashed": "error",
    "actor.abandoned": "error",
    "supervisor.gave_up": "error",
    "node.down": "warning",
    "node.refused": "warning",
    "node.exposed": "warning",
    "message.undecodable": "warning",
    "loop.stalled": "warning",
    "handler.slow": "warning",
}
T = TypeVar("T")
#: How long a shutdown waits for its cancelled background tasks to end.
BACKGROUND_CANCEL_WAIT = 1.0


@attrs.frozen
class TreeNode:
    """A snapshot of one slot in `system.tree()`."""

    path: str
    kind: str  # "supervisor" | "pool" | "actor"
    status: str  # "starting" | "running" | "restarting" | "stopped"
    restarts: int
    mailbox: int
    thread: str | None
    thread_id: int | None
    cpus: list[int] | None
    children: list[TreeNode]
    cpu_seconds: float | None = None  # CPU time of the actor's own thread or process
    pid: int | None = None  # the worker process's id (Subprocess), else None
    rss: int | None = None  # the worker process's resident memory in bytes, else None
    # Traffic figures (None: metrics are off); not part of equality, so two
    # snapshots of an unchanged tree compare equal whatever was handled between.
    handled: int | None = attrs.field(default=None, eq=False)  # finished handler runs
    handler_p99: float | None = attrs.field(default=None, eq=False)  # seconds


class ActorSystem:
    """An actor runtime on the current event loop; use as `async with ActorSystem(...)`."""

    def __init__(
        self,
        name: str = "mycelium",
        *,
        clock: Clock | None = None,
        kill_grace: float = 1.0,
        dead_letter_log_limit: int = 10,
        dead_letter_log_interval: float = 10.0,
        listen: str | None = None,
        secret: bytes | str | None = None,
        heartbeat_timeout: float = 5.0,
        max_frame: int = DEFAULT_MAX_FRAME,
        serialize_local: bool = False,
        ssl: SslArgument = None,
        stall_warning: float | None = 1.0,
        slow_handler: float | None = 1.0,
        tracing: bool = False,
        metrics: bool = True,
        metrics_max_paths: int = 1000,
    ) -> None:
        if listen is not None and not isinstance(listen, str):
            raise TypeError(f"listen must be a URL string or None, not {listen!r}")
        if isinstance(secret, str):
            secret = secret.encode()
        if secret is not None and (not isinstance(secret, bytes) or not secret):
            raise TypeError("secret must be non-empty bytes or str, or None")
        if isinstance(heartbeat_timeout, bool) or not (
            isinstance(heartbeat_timeout, int | float) and 0 < heartbeat_timeout < float("inf")
        ):
            raise ValueError(
                f"heartbeat_timeout must be a positive number, not {heartbeat_timeout!r}"
            )
        if isinstance(max_frame, bool) or not isinstance(max_frame, int) or max_frame < 1024:
            raise ValueError(f"max_frame must be an int of at least 1024 bytes, not {max_frame!r}")
        stall_warning = check_threshold("stall_warning", stall_warning)
        slow = check_threshold("slow_handler", slow_handler)
        ssl_server, ssl_client = tls_contexts(ssl)
        # Off: nothing on any path changes. On: refs wrap what they send (tracing.py).
        self._tracing = new_tracing() if tracing else None
        self._ref_class = LocalActorRef if self._tracing is None else self._tracing.ref_class
        if isinstance(metrics_max_paths, bool) or not (
            isinstance(metrics_max_paths, int) and metrics_max_paths >= 0
        ):
            raise ValueError(f"metrics_max_paths must be an int >= 0, not {metrics_max_paths!r}")
        #: Whether the dispatcher keeps handler figures (`metrics()`; API.md 11).
        self.metrics_on = bool(metrics)
        #: Past this many live actors, Prometheus series are summed by class.
        self.metrics_max_paths = metrics_max_paths
        #: Asks and ask timeouts through this system's refs (kept whatever `metrics`).
        self.counters = Counters()
        self.name = name
        self._options = NodeOptions(
            listen,
            secret,
            float(heartbeat_timeout),
            max_frame,
            bool(serialize_local),
            ssl_server,
            ssl_client,
        )
        self._node: Node | None = None
        self.clock = clock if clock is not None else Clock()
        self.kill_grace = kill_grace
        self.gave_up: SupervisorGaveUp | None = None
        self._log = logs.get_logger(system=name)
        self.events = Events(self._callback_failed)
        self._slots: dict[str, Slot] = {}
        self._top: dict[Slot, None] = {}  # top-level slots in start order (O(1) removal)
        self._subscribers: dict[type, list[Slot]] = {}
        self._names: defaultdict[str, itertools.count[int]] = defaultdict(
            lambda: itertools.count(1)
        )
        self._state = "new"
        self._stopped: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = 0
        self._background: set[asyncio.Task[Any]] = set()
        self._dead_letters = 0
        self._dl_limit = dead_letter_log_limit
        self._dl_interval = dead_letter_log_interval
        self._dl_logged = 0
        self._dl_suppressed = 0
        self._dl_timer: Any = None  # the pending summary (a clock timer)
        #: `loop.stalled` past this many seconds without a turn (None: no watchdog).
        self.stall_warning = stall_warning
        #: `slow_handler` as given (None: off).
        self.slow_handler_setting = slow
        #: The dispatcher logs `handler.slow` past this many seconds (inf: never).
        self.slow_handler = float("inf") if slow is None else slow
        self._watchdog = (
            Watchdog(stall_warning, self.log_event, name) if stall_warning is not None else None
        )

    def __repr__(self) -> str:
        return f"<ActorSystem {self.name} {self._state}>"

    async def __aenter__(self) -> ActorSystem:
        self._ensure_running()
        options = self._options
        if self._node is None and (options.listen is not None or options.serialize_local):
            try:
                await self._network().start()
            except BaseException:
                self._state = "stopped"
                if self._stopped is not None:
                    self._stopped.set()
                raise
        return self

    def _network(self) -> Node:
        """This system's node, made on first use (listening if `listen=` was given)."""
        if self._node is None:
            self._node = new_node(self, self._options)
        return self._node

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the system runs on (None before it started)."""
        return self._loop

    # -- across processes (API.md section 6) ----------------------------------------

    @property
    def address(self) -> str | None:
        """The URL this system listens at (the real port for port 0), or None."""
        return self._node.address if self._node is not None else None

    async def remote(self, url: str, path: str | None = None) -> ActorRef[Any]:
        """A ref to the actor at `url` (`tcp://host:port/actor/path`, ...), or at
        `path` on the node `url`. Connects (or reuses the connection) first;
        raises `TransportError` if the node cannot be reached or refuses us."""
        self._ensure_running()
        return await self._network().remote(url, path)

    def nodes(self) -> list[NodeInfo]:
        """The nodes this system is connected to now."""
        return self._node.nodes() if self._node is not None else []

    async def discover_cluster(
        self,
        actor_class: type | None = None,
        *,
        handles: type | None = None,
        timeout: float = 2.0,
    ) -> list[ActorRef[Any]]:
        """`discover` on this node and every connected node (one that does not
        answer within `timeout` is skipped and logged)."""
        check_timeout(timeout)
        found: list[ActorRef[Any]] = list(self._discover(actor_class, handles))
        if self._node is not None:
            found += await self._node.discover_cluster(actor_class, handles, timeout)
        return found

    async def publish_cluster(self, message: Any, timeout: float = 2.0) -> int:
        """`publish` on this node and every connected node; the sum accepted.

        A message that is not a contract type raises `SerializationError` first."""
        check_timeout(timeout)
        self._ensure_running()
        remote = await self._network().publish_cluster(message, timeout)  # checks it first
        return await self.publish(message) + remote

    async def remote_tree(self, url: str, timeout: float = 5.0) -> list[TreeNode]:
        """The live tree of the node at `url` (what `mycelium-actors status` prints)."""
        check_timeout(timeout)
        self._ensure_running()
        return [_from_dict(node) for node in await self._network().remote_tree(url, timeout)]

    @property
    def tracing(self) -> Tracing | None:
        """The tracing layer while the system traces (`tracing=True`), else None:
        the remote layer asks it to carry trace contexts across frames."""
        return self._tracing

    def make_ref(self, slot: Slot) -> LocalActorRef[Any]:
        """The ref for a new slot (its executor, or the remote layer, may give one
        that serializes)."""
        own = slot.executor.make_ref(slot)
        if own is not None:
            return own
        if self._node is not None:
            ref = self._node.local_ref(slot)
            if ref is not None:
                return ref  # type: ignore[return-value]
        return self._ref_class(slot)

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    def _ensure_running(self) -> None:
        if self._state == "new":
            self._loop = asyncio.get_running_loop()
            self._thread_id = threading.get_ident()
            self.events.bind(self._loop, self._thread_id)
            if self._watchdog is not None:
                self._watchdog.watch(self._loop, self._thread_id)
            self._stopped = asyncio.Event()
            self._state = "running"
        elif self._state != "running":
            raise MyceliumError(f"actor system {self.name} is {self._state}")

    def watch_loop(self, loop: asyncio.AbstractEventLoop, thread_id: int) -> None:
        """Let the stall watchdog watch `loop` (run by thread `thread_id`), once."""
        if self._watchdog is not None and loop is not self._loop:  # ours: watched from the start
            self._watchdog.watch(loop, thread_id)

    # -- spawning ----------------------------------------------------------

    async def spawn(
        self,
        actor_class: type[A],
        *args: Any,
        name: str | None = None,
        executor: Executor | None = None,
        shutdown: float | None = 5.0,
        mailbox_capacity: int | None = None,
        mailbox_overflow: str | None = None,
        **kwargs: Any,
    ) -> ActorRef[A]:
        """Start a top-level actor at `/<name>`; raises what its `on_start` raised.

        Without a supervisor a crash stops it for good.
        """
        return await self.spawn_under(
            None,
            actor_class,
            args,
            kwargs,
            name=name,
            executor=executor,
            shutdown=shutdown,
            mailbox_capacity=mailbox_capacity,
            mailbox_overflow=mailbox_overflow,
        )

    async def on_system_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the system's loop, hopping there from another thread's loop.

        Registry changes, starts and stops always run on the system loop, so
        the futures they wait on belong to one loop whoever asked.
        """
        loop = self._loop
        if loop is None or asyncio.get_running_loop() is loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    async def spawn_under(
        self,
        parent: Slot | None,
        actor_class: type[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        **options: Any,
    ) -> ActorRef[Any]:
        """Create and start a slot below `parent` (None: top level); its ref."""
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            return await self.on_system_loop(
                self.spawn_under(parent, actor_class, args, kwargs, **options)
            )
        slot = self.new_slot(parent, actor_class, args, kwargs, **options)
        try:
            await slot.start()
        except BaseException as exc:
            await slot.abort_start(exc)
            raise
        return slot.ref

    def new_slot(
        self,
        parent: Slot | None,
        actor_class: type[Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        name: str | None = None,
        executor: Executor | None = None,
        shutdown: float | None = 5.0,
        mailbox_capacity: int | None = None,
        mailbox_overflow: str | None = None,
        slot_class: type[Slot] = Slot,
    ) -> Slot:
        """Create and register a slot (not started yet). Validates every option."""
        self._ensure_running()
        if not (isinstance(actor_class, type) and issubclass(actor_class, Actor)):
            raise TypeError(f"expected an Actor subclass, got {actor_class!r}")
        if shutdown is not None and (
            (type(shutdown) is not float and not isinstance(shutdown, int | float)) or shutdown < 0
        ):
            raise ValueError(f"shutdown must be None or a number >= 0, not {shutdown!r}")
        slots = self._slots
        if name is None:
            base = actor_class.__name__.lower()
            names = self._names.get(base)
            if names is None:  # `<base>-<n>` is a valid name when `<base>-1` is: check once
                check_name(f"{base}-1")
                names = self._names[base]
            prefix = f"{parent.path if parent is not None else ''}/{base}-"
            path = f"{prefix}{next(names)}"
            while path in slots:
                path = f"{prefix}{next(names)}"
        else:
            path = self._path(parent, name)
            if path in slots:
                raise MyceliumError(f"an actor named {path} already exists")
        slot = slot_class(
            self,
            path,
            actor_class,
            args,
            kwargs,
            parent=parent,
            executor=executor or actor_class.executor or DEFAULT_EXECUTOR,
            shutdown=shutdown,
            mailbox_capacity=mailbox_capacity,
            mailbox_overflow=mailbox_overflow,
        )
        self.register(slot)
        return slot

    @staticmethod
    def _path(parent: Slot | None, name: str) -> str:
        check_name(name)
        return f"{parent.path if parent is not None else ''}/{name}"

    def register(self, slot: Slot) -> None:
        self._slots[slot.path] = slot
        if slot.parent is not None:
            slot.parent.adopt(slot)
        else:
            self._top[slot] = None
        self._subscribers.clear()

    def unregister(self, slot: Slot) -> None:
        if self._slots.get(slot.path) is slot:
            del self._slots[slot.path]
        if slot.parent is None:
            self._top.pop(slot, None)
        else:
            siblings = slot.parent.children
            if siblings and siblings[-1] is slot:  # the usual case: newest first
                siblings.pop()
            elif slot in siblings:
                siblings.remove(slot)
        self._subscribers.clear()

    def slot_stopped(self, slot: Slot) -> None:
        """A slot stopped for good. Unsupervised slots leave the registry."""
        if slot.owner is None:
            self.unregister(slot)
        runner, slot.runner = slot.runner, None
        if runner is not None and slot.executor is not DEFAULT_EXECUTOR:
            self.run_in_background(runner.aclose()).set_name("close")

    def run_in_background(self, coro: Any) -> asyncio.Task[Any]:
        """Run a framework coroutine the system keeps a reference to."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- trees (the supervision layer's specs fill the `Tree` seam) -----------

    async def start(self, spec: Tree) -> ActorRef[Any]:
        """Start a supervision tree; returns the root supervisor's ref."""
        self._ensure_running()
        if not isinstance(spec, Tree):
            raise TypeError(f"system.start() takes a Supervisor spec, not {spec!r}")
        ref: ActorRef[Any] = await self.on_system_loop(spec.start_root(self))
        return ref

    def _supervisor_at(self, path: str) -> Any:
        slot = self._slots.get(path)
        if slot is None:
            raise MyceliumError(f"no actor at {path}")
        if slot.kind != "supervisor":
            raise MyceliumError(f"{path} is not a supervisor")
        return slot

    async def start_child(self, supervisor_path: str, child: Any) -> ActorRef[Any] | None:
        """Add `child` (a `Child` or `Supervisor` spec) to a running supervisor, last.

        Returns None if its `on_start` raised `Ignore` (it is then listed as
        stopped, or not at all if temporary)."""
        supervisor = self._supervisor_at(supervisor_path)
        ref: ActorRef[Any] | None = await self.on_system_loop(supervisor.start_child(child))
        return ref

    async def terminate_child(self, path: str) -> None:
        """Stop a supervised child for good; its slot stays, shown as stopped."""
        slot = self._slots.get(path)
        if slot is None or slot.owner is None:
            raise MyceliumError(f"no supervised child at {path}")
        await self.on_system_loop(slot.owner.terminate(slot))

    async def restart_child(self, path: str) -> ActorRef[Any]:
        """Start again a supervised child that was stopped for good (if its
        `on_start` raises `Ignore`, it stays stopped)."""
        slot = self._slots.get(path)
        if slot is None or slot.owner is None:
            raise MyceliumError(f"no supervised child at {path}")
        await self.on_system_loop(slot.owner.restart_stopped(slot))
        return slot.ref

    async def stop_slot(self, slot: Slot) -> None:
        """`ref.stop()`: stop `slot` for good, through its supervisor if it has one."""
        if not slot.idle() and (slot.in_own_task() or slot.ref.owns_current_task()):
            # An actor stopping itself through its ref (from its handler, or a
            # task the handler awaits: gather, wait_for): it cannot wait for itself.
            coro = self._stop_from_outside_task(slot)
            if self._loop is None or asyncio.get_running_loop() is self._loop:
                self.run_in_background(coro)
            else:
                self._loop.call_soon_threadsafe(self.run_in_background, coro)
            return
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            await self.on_system_loop(self._stop_from_outside_task(slot))
        elif slot.owner is not None:  # `_stop_from_outside_task`, inlined: a coroutine less
            await slot.owner.terminate(slot)
        else:
            await slot.stop_for_good()

    async def _stop_from_outside_task(self, slot: Slot) -> None:
        if slot.owner is not None:
            await slot.owner.terminate(slot)
        else:
            await slot.stop_for_good()

    # -- finding actors ----------------------------------------------------

    def lookup(self, path: str) -> ActorRef[Any] | None:
        """The ref at `path` (e.g. "/root/alice"), or None."""
        slot = self._slots.get(path)
        return slot.ref if slot is not None else None

    @overload
    def discover(
        self, actor_class: type[A], *, handles: type | None = None
    ) -> list[ActorRef[A]]: ...

    @overload
    def discover(self, actor_class: None = None, *, handles: type) -> list[ActorRef[Actor]]: ...

    def discover(
        self, actor_class: type[Any] | None = None, *, handles: type | None = None
    ) -> list[ActorRef[Any]]:
        """Live local actors of a class (subclasses too) and/or with a handler for a type."""
        return self._discover(actor_class, handles)

    def _discover(self, actor_class: type | None, handles: type | None) -> list[ActorRef[Any]]:
        found: list[ActorRef[Any]] = []
        for slot in self._slots.values():
            if slot.status not in ("running", "restarting") or slot.kind != "actor":
                continue
            if actor_class is not None and not issubclass(slot.actor_class, actor_class):
                continue
            if handles is not None and slot.actor_class.handler_for(handles) is None:
                continue
            found.append(slot.ref)
        return found

    async def publish(self, message: Any) -> int:
        """Tell `message` to every live actor with a handler for its type; never waits.

        Each recipient applies its overflow policy as for `tell_nowait`; one that
        refuses is skipped (a dead letter). Returns how many accepted.
        """
        mtype = type(message)
        slots = self._subscribers.get(mtype)
        if slots is None:
            slots = self._subscribers[mtype] = [
                s
                for s in self._slots.values()
                if s.kind == "actor" and s.actor_class.handler_for(mtype) is not None
            ]
        accepted = 0
        if self._tracing is not None and slots:
            message = self._tracing.wrap(message)
        for slot in slots:
            if slot.status not in ("running", "restarting"):
                continue
            try:
                if slot.mailbox.put_nowait((message, None)):
                    accepted += 1
            except MailboxFull:
                self.dead_letter(slot.path, message, "mailbox_full")
        return accepted

    def tree(self) -> list[TreeNode]:
        """A snapshot of every slot, top-level ones in start order."""
        return [_node(slot) for slot in self._top]

    def metrics(self) -> Metrics:
        """A frozen snapshot of the metrics (API.md 11); `MyceliumError` when
        the system was made with `metrics=False`."""
        if not self.metrics_on:
            raise MyceliumError(f"metrics are off in actor system {self.name} (metrics=False)")
        counters = self.counters
        traffic = self._node.traffic() if self._node is not None else {}
        return Metrics(
            actors=ActorsView(self._slots),
            dead_letters=self._dead_letters,
            asks=counters.asks,
            ask_timeouts=counters.ask_timeouts,
            nodes={name: NodeMetrics(name, *figures) for name, figures in traffic.items()},
        )

    # -- dead letters and lifecycle logging --------------------------------

    @property
    def dead_letters(self) -> int:
        """How many messages became dead letters (always counted, logged at a bounded rate)."""
        return self._dead_letters

    def dead_letter(
        self, path: str, message: Any, reason: str, message_type: str | None = None
    ) -> None:
        """Count a message that cannot be delivered; log it at a bounded rate.
        `message_type` names what `message` is when its type would not (raw bytes)."""
        self._dead_letters += 1
        if isinstance(message, Envelope):
            message = message.message
        if self._dl_logged < self._dl_limit:
            self._dl_logged += 1
            self._log.info(
                "dead_letter",
                path=path,
                reason=reason,
                message_type=message_type or type(message).__qualname__,
            )
            return
        self._dl_suppressed += 1
        if self._dl_suppressed == 1 and self._loop is not None and not self._loop.is_closed():
            if threading.get_ident() == self._thread_id:
                self._schedule_dead_letter_summary()
            else:
                self._loop.call_soon_threadsafe(self._schedule_dead_letter_summary)

    def _schedule_dead_letter_summary(self) -> None:
        self._dl_timer = self.clock.call_later(self._dl_interval, self._dead_letter_summary)

    def _dead_letter_summary(self) -> None:
        if self._dl_timer is not None:
            self._dl_timer.cancel()
            self._dl_timer = None
        self._log.info(
            "dead_letter", summary=True, suppressed=self._dl_suppressed, total=self._dead_letters
        )
        self._dl_logged = 0
        self._dl_suppressed = 0

    def log_event(
        self, event: str, path: str | None, level: str | None = None, **fields: Any
    ) -> None:
        """Log a lifecycle event (at its level in `EVENT_LEVELS` unless `level`
        says) and hand it to `system.events` subscribers."""
        level = level or EVENT_LEVELS.get(event, "info")
        log = self._log
        if log.enabled(level):  # a dropped level costs no event
            getattr(log, level)(event, path=path, **fields)
        if self.events.active:
            self.events.emit(
                {"event": event, "system": self.name, "path": path, **fields, "log_level": level}
            )

    def log_crash(self, path: str, exc: BaseException, during: str) -> None:
        """`actor.crashed` with what a one-line renderer needs (API.md 8) and `exc_info`."""
        if not (self.events.active or self._log.enabled("error")):
            return  # nobody listens: no text made of the exception
        slot = self._slots.get(path)
        self.log_event(
            "actor.crashed",
            path,
            during=during,
            exc_type=exc_type_name(type(exc)),
            error=error_text(exc),
            restarts=slot.restarts if slot is not None else 0,
            exc_info=exc,
        )

    def log_stopping(self, slot: Slot) -> None:
        """`actor.stopping` before a graceful stop that has queued messages to serve
        first: what a shutdown waits for, and for how long at most."""
        queued = slot.mailbox.depth
        if queued:
            self.log_event("actor.stopping", slot.path, queued=queued, shutdown=slot.shutdown)

    def _callback_failed(self, callback: Callback, exc: BaseException) -> None:
        self._log.error(
            "events.callback_failed",
            callback=repr(callback),
            exc_type=exc_type_name(type(exc)),
            error=error_text(exc),
            exc_info=exc,
        )

    # -- stopping ----------------------------------------------------------

    async def shutdown(self) -> None:
        """Stop every actor in reverse start order; never raises.

        From another thread's loop it runs on the system's loop and waits there.
        """
        loop = self._loop
        if loop is not None and asyncio.get_running_loop() is not loop:
            if loop.is_closed() or not loop.is_running():
                return
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.shutdown(), loop))
            return
        if self._state == "new":
            self._state = "stopped"
            return
        assert self._stopped is not None
        if self._state != "running":
            await self._stopped.wait()
            return
        self._state = "stopping"
        try:
            while self._top:
                slot = next(reversed(self._top))
                self.log_stopping(slot)
                try:
                    await slot.stop_for_good()
                except Exception as exc:
                    self.log_crash(slot.path, exc, during="shutdown")
                self.unregister(slot)
            me = asyncio.current_task()
            closing = [t for t in self._background if t is not me and t.get_name() == "close"]
            if closing:  # let executor threads finish (each bounded by its own join timeout)
                await asyncio.wait(closing, timeout=5.0)
            # Cancelled and awaited, so a stop is complete when it returns (the metrics
            # server's close ran a loop pass later on uvloop); bounded: a task that
            # ignores its cancellation does not hold the stop up.
            rest = [task for task in self._background if task is not me]
            for task in rest:
                task.cancel()
            if rest:
                await asyncio.wait(rest, timeout=BACKGROUND_CANCEL_WAIT)
            if self._node is not None:
                await self._node.aclose()
        finally:
            self._state = "stopped"
            if self._watchdog is not None:
                self._watchdog.stop()
            if self._dl_suppressed:  # the summary is due later: say it before we are gone
                self._dead_letter_summary()
            self._stopped.set()

    def root_gave_up(self, exc: SupervisorGaveUp) -> None:
        """A root supervisor gave up: the whole system stops."""
        if self.gave_up is None:
            self.gave_up = exc
        if self._state == "running":
            self.run_in_background(self.shutdown())

    def root_finished(self) -> None:
        """A root supervisor shut itself down (auto_shutdown): once no top-level
        actor is left, the system's work is done and it stops."""
        if self._state == "running" and not self._top:
            self.run_in_background(self.shutdown())

    async def wait_stopped(self) -> None:
        """Return once the system has stopped (shutdown, or a root gave up)."""
        self._ensure_started_event()
        assert self._stopped is not None
        await self._stopped.wait()

    def _ensure_started_event(self) -> None:
        if self._stopped is None:
            self._stopped = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._state == "running"


def _from_dict(fields: Any) -> TreeNode:
    """A TreeNode from the plain data a peer sent (checked field by field)."""
    try:
        return TreeNode(
            path=str(fields["path"]),
            kind=str(fields["kind"]),
            status=str(fields["status"]),
            restarts=int(fields["restarts"]),
            mailbox=int(fields["mailbox"]),
            thread=None if fields["thread"] is None else str(fields["thread"]),
            thread_id=None if fields["thread_id"] is None else int(fields["thread_id"]),
            cpus=None if fields["cpus"] is None else [int(c) for c in fields["cpus"]],
            children=[_from_dict(child) for child in fields["children"]],
            cpu_seconds=_optional(fields.get("cpu_seconds"), float),
            pid=_optional(fields.get("pid"), int),
            rss=_optional(fields.get("rss"), int),
            handled=_optional(fields.get("handled"), int),
            handler_p99=_optional(fields.get("handler_p99"), float),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SerializationError(f"a malformed tree from a peer: {exc!r}") from None


def _optional(value: Any, kind: type[T]) -> T | None:
    """A field a peer may leave out (an older node): None, or a value of `kind`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return kind(value)  # type: ignore[call-arg]


def check_name(name: str) -> None:
    """An actor name: a non-empty string of printable characters, no '/' and no spaces."""
    if not isinstance(name, str):
        raise TypeError(f"an actor name must be a str, not {type(name).__name__}")
    if (
        not name
        or "/" in name
        or name in (".", "..")
        or not name.isprintable()
        or name.split(None, 1) != [name]  # any whitespace (str methods: no per-char loop)
    ):
        raise ValueError(
            f"an actor name must be non-empty, printable, without '/' or whitespace "
            f"(and not '.' or '..'): {name!r}"
        )


def _node(slot: Slot) -> TreeNode:
    runner = slot.runner
    thread, thread_id, cpus = runner.describe() if runner is not None else (None, None, None)
    handled = p99 = None
    if slot.system.metrics_on:
        seconds = slot.stats.seconds() if slot.stats is not None else HandlerSeconds()
        handled, p99 = seconds.count, seconds.quantile(0.99)
    return TreeNode(
        path=slot.path,
        kind=slot.kind,
        status=slot.status,
        restarts=slot.restarts,
        mailbox=depth_of(slot),
        thread=thread,
        thread_id=thread_id,
        cpus=cpus,
        children=[_node(child) for child in slot.children],
        cpu_seconds=runner.cpu_seconds() if runner is not None else None,
        pid=runner.pid() if runner is not None else None,
        rss=runner.rss() if runner is not None else None,
        handled=handled,
        handler_p99=p99,
    )
