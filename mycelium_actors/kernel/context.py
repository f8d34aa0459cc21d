"""`ActorContext`: what an actor reaches through `self.context`.

One context per incarnation: its timers and piped tasks are cancelled when
the incarnation ends, and a tick that was already queued carries its
incarnation's context, so a restarted actor never handles a stale tick.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .. import logs
from .mailbox import STOP_SELF
from .ref import serving

if TYPE_CHECKING:
    from .actor import Actor
    from .clock import TimerHandle
    from .executor import Executor
    from .ref import ActorRef
    from .slot import Slot
    from .system import ActorSystem


class Tick:
    """A timer's message on its way: handled only by the incarnation that scheduled it."""

    __slots__ = ("context", "message")

    def __init__(self, context: ActorContext, message: Any) -> None:
        self.context = context
        self.message = message

    def __repr__(self) -> str:
        return f"<Tick {self.message!r}>"


class Scheduled:
    """A scheduled self-message; `cancel()` stops further deliveries."""

    __slots__ = ("_cancelled", "_handle")

    def __init__(self) -> None:
        self._handle: TimerHandle | None = None
        self._cancelled = False

    def arm(self, handle: TimerHandle) -> None:
        """The timer that delivers next (after `cancel()`, cancelled at once)."""
        self._handle = handle
        if self._cancelled:
            handle.cancel()

    def cancel(self) -> None:
        self._cancelled = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled


class ActorContext:
    """The running actor's view of itself and its system."""

    __slots__ = ("_log", "_pipes", "_slot", "_timers")

    def __init__(self, slot: Slot) -> None:
        self._slot = slot
        self._log: Any = None
        self._timers: set[Scheduled] | None = None  # created on first use
        self._pipes: set[asyncio.Task[Any]] | None = None

    @property
    def self_ref(self) -> ActorRef[Any]:
        return self._slot.ref

    @property
    def system(self) -> ActorSystem:
        return self._slot.system

    @property
    def path(self) -> str:
        return self._slot.path

    @property
    def parent(self) -> ActorRef[Any] | None:
        """The supervisor's or spawning actor's ref; None for a top-level actor."""
        parent = self._slot.parent
        return parent.ref if parent is not None else None

    @property
    def log(self) -> Any:
        """A structlog logger bound with this actor's path."""
        if self._log is None:
            self._log = logs.get_logger(path=self._slot.path)
        return self._log

    def stop(self) -> None:
        """Stop after the current message (reason `normal`).

        Queued messages stay for a restarted instance; if the actor is not
        restarted, queued asks fail with `ActorStopped` and tells become dead letters.
        """
        self._slot.mailbox.put_system(STOP_SELF)

    async def spawn(
        self,
        actor_class: type[Actor],
        *args: Any,
        name: str | None = None,
        executor: Executor | None = None,
        shutdown: float | None = 5.0,
        mailbox_capacity: int | None = None,
        mailbox_overflow: str | None = None,
        **kwargs: Any,
    ) -> ActorRef[Any]:
        """Start a child below this actor; it stops with this incarnation.

        A crash stops the child for good (use a supervisor for restarts).
        """
        return await self._slot.system.spawn_under(
            self._slot,
            actor_class,
            args,
            kwargs,
            name=name,
            executor=executor,
            shutdown=shutdown,
            mailbox_capacity=mailbox_capacity,
            mailbox_overflow=mailbox_overflow,
        )

    def watch(self, ref: ActorRef[Any]) -> None:
        """Receive `Terminated(ref)` once when that actor stops for good.

        Restarts are not reported; an actor that already stopped is reported at once.
        """
        ref.add_watcher(self._slot)

    def schedule_once(self, delay: float, message: Any) -> Scheduled:
        """Tell `message` to this actor after `delay` seconds."""
        scheduled = Scheduled()
        slot = self._slot
        timers = self._timer_set()
        tick = Tick(self, message)

        def fire() -> None:
            timers.discard(scheduled)
            if not scheduled.cancelled:
                slot.deliver(tick)

        scheduled.arm(slot.system.clock.call_later(delay, fire))
        timers.add(scheduled)
        return scheduled

    def _timer_set(self) -> set[Scheduled]:
        if self._timers is None:
            self._timers = set()
        return self._timers

    def schedule_every(self, interval: float, message: Any) -> Scheduled:
        """Tell `message` to this actor every `interval` seconds until cancelled."""
        if interval <= 0:
            raise ValueError(f"interval must be > 0, not {interval!r}")
        scheduled = Scheduled()
        slot = self._slot
        clock = slot.system.clock
        tick = Tick(self, message)

        def fire() -> None:
            if scheduled.cancelled:
                return
            scheduled.arm(clock.call_later(interval, fire))
            slot.deliver(tick)

        scheduled.arm(clock.call_later(interval, fire))
        self._timer_set().add(scheduled)
        return scheduled

    def pipe_to_self(
        self,
        awaitable: Awaitable[Any],
        wrap: Callable[[Any], Any] | None = None,
    ) -> asyncio.Task[None]:
        """Await `awaitable` beside the mailbox; tell `wrap(result or exception)` to self."""
        slot = self._slot

        async def pipe() -> None:
            try:
                outcome: Any = await awaitable
            except Exception as exc:
                outcome = exc
            message = wrap(outcome) if wrap is not None else outcome
            tracing = slot.system.tracing
            # This task's context is the caller's: its span is the handling span's parent.
            slot.deliver(message if tracing is None else tracing.wrap(message))

        # Not a task the handler awaits: its asks to this actor are allowed.
        context = contextvars.copy_context()
        context.run(serving.set, None)
        task = asyncio.get_running_loop().create_task(pipe(), context=context)
        if self._pipes is None:
            self._pipes = set()
        self._pipes.add(task)
        task.add_done_callback(self._pipes.discard)
        return task

    def cancel_all(self) -> None:
        """Cancel timers and piped tasks: the incarnation is over."""
        for scheduled in list(self._timers or ()):
            scheduled.cancel()
        self._timers = None
        for task in list(self._pipes or ()):
            task.cancel()
