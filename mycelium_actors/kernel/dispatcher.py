"""The per-loop dispatcher: an idle actor costs no task, no frame, no future.

While an actor's mailbox is empty its incarnation is a `Server` registered
as the mailbox's consumer, and nothing else. A message to it puts the server
on its loop's `Dispatcher` ready queue; one callback per loop pass (`_pass`)
runs the ready servers, each for up to `BATCH` messages, until the queue is
empty or `BUDGET` seconds have passed, so timers and I/O still run and one
flooded actor cannot starve the others (it goes to the back of the queue).
The clock is read once per message (`clock_now`), after its handler, and once
as a turn starts, so the budget holds within a turn too, whatever a handler
costs; the same read times the handler for `handler.slow` and the metrics.

Sync handlers run inline, a run of them inside one `Context.run` of the
incarnation's `contextvars.Context`. The first async handler starts a *busy
spell*: a task, in that context, that serves the mailbox from there (async
handlers are awaited in it, sync ones called) and ends when the mailbox is
empty or the budget is spent. One task per busy spell, not per message; an
idle actor has none. On Python 3.12+ the spell's task starts eagerly, inside
the turn; on 3.11 it starts one loop pass later (and a wake-up of an actor
whose last message was async starts it directly, without a pass, unless a
spell runs: then it goes on the ready queue, for that spell to carry).

A spell whose mailbox is empty *carries* the ready queue's next actor if that
one's last message was async too (it would start a spell of its own): the
same task serves it, each step inside its own context (`_in_context`), and so
on while the budget lasts. A ring of async hops costs one task per budget, not
one per hop, and each async handler still runs in a task serving its actor.

A wake-up from another thread runs in a plain callback of the actor's loop
(`wake_now`), so the actor serves in that same pass, with no task's step to
run early.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
import time
import types
import weakref
from bisect import bisect_left
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from ..errors import ActorStopped
from .actor import AWAITS, Unhandled
from .context import Tick
from .exits import NORMAL, SHUTDOWN, Exit, for_asker, is_crash
from .mailbox import STOP_DRAIN, STOP_NOW, STOP_SELF
from .ref import serving
from .replies import Outbox, outbox_of, settle
from .stats import BOUNDS, HandlerStats

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Generator

    from .actor import Actor
    from .slot import Slot

#: Messages one actor handles per turn before the next ready actor's turn.
BATCH = 64
#: Seconds one dispatcher pass (or a busy spell's step) may run before it lets
#: the loop do timers and I/O; checked before each message.
BUDGET = 0.002
#: Whether tasks can start eagerly (`Task(..., eager_start=True)`, Python 3.12+).
EAGER = sys.version_info >= (3, 12)
#: The dispatcher's clock, read once per message (seconds, monotonic). Tests may
#: replace it with a fake; the budget and later per-handler figures read it.
clock_now = time.perf_counter

_current_task = asyncio.current_task
_SPELL_ON_WAKE = not EAGER  # 3.11: a wake-up of a tasked actor starts its spell directly

# Server states (compared by identity).
IDLE = "idle"  # registered as its mailbox's consumer; nothing runs
READY = "ready"  # on the ready queue
RUNNING = "running"  # in a dispatcher turn, no task
BUSY = "busy"  # a busy spell's task serves the mailbox
DONE = "done"  # serving is over: the incarnation ends (or has ended)

# What `Server._sync` returns, and markers (compared by identity).
_ASYNC = "async"  # the next handler is async: a spell serves from its item (in `first`)
_OVER = "over"  # the turn is over: idle, or back on the ready queue
_ENDED = "ended"  # serving ends: the Exit is in `first`
_PENDING = object()  # in `first` (3.11): a spell whose task has not started, nothing taken
_STALE = object()  # `_untick`: the tick belongs to an earlier incarnation
_UNMETERED = HandlerStats()  # what a turn counts into with metrics off: never read
_FIRST_BOUND = BOUNDS[0]  # runs up to this long are not counted one by one (stats.py)


class Dispatcher:
    """One per event loop: the ready queue and the pass that serves it."""

    __slots__ = ("__weakref__", "_context", "_loop", "_scheduled", "carrying", "ready", "spent")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.ready: deque[Server] = deque()
        self._scheduled = False  # a pass is scheduled or running
        self.spent = False  # a turn stopped at the pass's deadline: the pass ends
        # 3.11: a spell runs, so a wake-up of a tasked actor goes on the ready
        # queue, where the spell may carry it (a hint: wrong only while a spell's
        # handler waits, and then the ready queue serves it all the same).
        self.carrying = False
        # Passes run in an empty context, never in that of whoever scheduled them.
        self._context = contextvars.Context()

    def schedule(self, server: Server) -> None:
        """On the loop's thread: put `server` on the ready queue."""
        self.ready.append(server)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._pass, context=self._context)

    def defer(self, server: Server) -> None:
        """`server`'s turn spent the budget: back on the ready queue, and the
        pass ends; the next one comes after the loop's due timers and I/O."""
        self.ready.append(server)
        self.spent = True
        if not self._scheduled:
            self._scheduled = True
            self._next_pass()

    def _next_pass(self) -> None:
        # A timer due now, not `call_soon`: the loop runs the timers that fell
        # due meanwhile (they are older) before it, not one whole pass later.
        loop = self._loop
        loop.call_at(loop.time(), self._pass, context=self._context)

    def _pass(self) -> None:
        ready = self.ready
        deadline = clock_now() + BUDGET
        self.spent = False
        try:
            while ready:
                ready.popleft().turn(deadline)
                if self.spent:
                    break  # the rest waits for the next pass, after timers and I/O
        finally:
            if not ready:
                self._scheduled = False
            elif self.spent:
                self._next_pass()
            else:
                self._loop.call_soon(self._pass, context=self._context)


_DISPATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dispatcher] = (
    weakref.WeakKeyDictionary()
)
_NEW_DISPATCHER = threading.Lock()


def dispatcher_of(loop: asyncio.AbstractEventLoop) -> Dispatcher:
    """The dispatcher of `loop` (one per loop, made on first use)."""
    dispatcher = _DISPATCHERS.get(loop)
    if dispatcher is None:
        with _NEW_DISPATCHER:
            dispatcher = _DISPATCHERS.get(loop)
            if dispatcher is None:
                dispatcher = _DISPATCHERS[loop] = Dispatcher(loop)
    return dispatcher


class Server:
    """Serves one incarnation's mailbox: the hot path. Owner loop only.

    No task (but one per busy spell of async handlers), log call or isinstance
    per message; dispatch is one dict lookup on the message's type.
    """

    __slots__ = (
        "asker",
        "context",
        "dispatch",
        "dispatcher",
        "done",
        "draining",
        "first",
        "instance",
        "limit",
        "loop",
        "mailbox",
        "outbox",
        "slot",
        "state",
        "stats",
        "tasked",
    )

    def __init__(
        self,
        slot: Slot,
        instance: Actor,
        done: asyncio.Future[Exit],
        context: contextvars.Context,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.slot = slot
        self.instance = instance
        self.done = done  # on the starter's loop: settle() it
        self.context = context  # every handler runs in it, as in one task today
        self.loop = loop
        self.mailbox = slot.mailbox
        cls = type(instance)
        self.dispatch = cls._dispatch
        self.dispatcher = dispatcher_of(loop)
        self.state = RUNNING
        self.draining = False
        # The slot's figures (None until its first turn; `_UNMETERED` with
        # metrics off), and how long a handler may run before `_long` looks at
        # it: past `BOUNDS[0]` it goes in a bucket, past `slow_handler` it is logged.
        self.stats: HandlerStats | None = slot.stats if slot.system.metrics_on else _UNMETERED
        slow = slot.system.slow_handler
        self.limit = min(_FIRST_BOUND, slow) if slot.system.metrics_on else slow
        # Whether the last message served was async: the next turn starts a
        # spell at once (and on 3.11 a wake-up starts it without a pass).
        self.tasked = False
        # What `_sync` hands over (the first item of a spell, or the Exit that
        # ends serving); on 3.11 also a spell's first item until its task starts.
        self.first: Any = None
        # The last foreign asker's loop and its outbox (set together before use).
        self.asker: asyncio.AbstractEventLoop | None = None
        self.outbox = cast(Outbox, None)

    def begin(self) -> None:
        """After `on_start`: go idle, or onto the ready queue if messages wait."""
        self.state = IDLE
        if not self.mailbox.wait(self):
            self.state = READY
            self.dispatcher.schedule(self)

    # -- the mailbox's consumer --------------------------------------------

    def wake(self) -> None:
        if self.state is IDLE:
            if _SPELL_ON_WAKE and self.tasked and not self.dispatcher.carrying:
                self._start_spell(0.0)  # 3.11: the spell's task is the next step anyway
            else:
                self.state = READY
                # `self.dispatcher.schedule(self)`, inlined: an ask's hot path
                dispatcher = self.dispatcher
                dispatcher.ready.append(self)
                if not dispatcher._scheduled:  # noqa: SLF001 (this module's own)
                    dispatcher._scheduled = True  # noqa: SLF001
                    dispatcher._loop.call_soon(dispatcher._pass, context=dispatcher._context)  # noqa: SLF001

    def wake_now(self) -> None:
        if self.state is IDLE:
            if _current_task(self.loop) is None:
                self.state = READY
                self.turn(clock_now() + BUDGET)  # a plain callback: serve in this very pass
            else:
                self.wake()

    # -- serving -------------------------------------------------------------

    def turn(self, deadline: float) -> None:
        """Serve until `deadline`, BATCH messages or an empty mailbox (from the
        dispatcher or a plain callback).

        Sync handlers run in `_sync`, one `Context.run` for a run of them; the
        first async handler starts a busy spell, a task that serves from there.
        """
        if self.state is not READY:
            return  # killed while it waited its turn
        if self.tasked:
            self._start_spell(deadline)  # the last message was async: so is the next, likely
            return
        self.state = RUNNING
        try:
            over = self.context.run(self._sync, deadline)
        except (KeyboardInterrupt, SystemExit):
            self._interrupted()
            raise
        if over is _ASYNC:
            self._start_spell(deadline)
        elif over is _ENDED:
            exit, self.first = self.first, None
            self._end(exit)

    def _sync(self, deadline: float) -> object:
        """In the incarnation's context: serve while handlers are sync.

        Returns `_ASYNC` when the next handler is async (its item in `first`),
        `_OVER` when the turn is over (idle or requeued), `_ENDED` when serving
        ends (the Exit in `first`).

        The clock is read as the turn starts and after each handler: that read
        checks the budget before the next message and times the handler that
        just ran (`handler.slow`, the metrics). What metrics add per message is
        nothing while runs take up to 1 us (`limit`); the runs are counted
        from `left` and their total time from the turn's first and last reads,
        once per turn (see stats.py).
        """
        mb = self.mailbox
        queue = mb.queue
        popleft = queue.popleft
        instance = self.instance
        lookup = self.dispatch.get
        limit = self.limit
        stats = self.stats
        if stats is None:
            stats = self._first_stats()
        if len(queue) > stats.high:
            stats.high = len(queue)
        left = BATCH
        over = _OVER
        t = first = clock_now()  # the first handler's start; `t`: the latest read
        while True:
            if mb.system:
                exit = self._signal()
                if exit is not None:
                    self.first = exit
                    over = _ENDED
                    break
                continue
            if not queue:
                if self.draining:
                    self.first = SHUTDOWN
                    over = _ENDED
                    break
                self.state = IDLE
                if mb.wait(self):
                    break
                self.state = RUNNING
                continue
            if not left or t > deadline:
                self.state = READY
                if left:
                    self.dispatcher.defer(self)  # the budget is spent: the pass ends
                else:
                    self.dispatcher.schedule(self)  # to the back of the queue
                break
            left -= 1
            # `mb.take()`, inlined while no sender waits for room (checked each time)
            item = mb.take() if mb._putters else popleft()  # noqa: SLF001 (the hot path)
            message, reply = item
            mtype = type(message)  # (the watchdog reads it from this frame)
            fn, kind = lookup(mtype) or type(instance).dispatch_miss(mtype)
            if kind:
                if mtype is not Tick:
                    self.first = item
                    left += 1  # not served here
                    over = _ASYNC
                    break
                message = _untick(instance, message)  # a timer's message: maybe sync
                if message is _STALE:
                    left += 1  # nothing ran
                    continue
                mtype = type(message)
                fn, kind = lookup(mtype) or type(instance).dispatch_miss(mtype)
                if kind:
                    self.first = (message, reply)
                    left += 1
                    over = _ASYNC
                    break
            began = t
            try:
                result = fn(instance, message)
            except Unhandled:
                self.slot.unhandled(message, reply)
                left += 1  # no handler ran: not counted, and not timed
                t = clock_now()
                first += t - began
                continue
            except BaseException as exc:
                if not is_crash(exc):
                    raise
                exit = self._crashed(reply, exc)
                if exit is not None:
                    t = clock_now()
                    if t - began > limit:
                        self._long(t - began, mtype, True)
                    self.first = exit
                    over = _ENDED
                    break
            else:
                if reply is not None:
                    # `self._reply(reply, result)`, inlined: the sync ask's hot path
                    if reply.get_loop() is self.loop:
                        if not reply.done():
                            reply.set_result(result)
                    else:
                        self._answer_foreign(reply, result)
            # The one clock read per message: it ends this handler's run and is
            # the budget's check before the next one. A run longer than `limit`
            # goes to `_long`: its bucket, and `handler.slow` past `slow_handler`.
            t = clock_now()
            if t - began > limit:
                self._long(t - began, mtype, True)
        stats.handled += BATCH - left
        stats.sum += t - first
        return over

    # -- metrics ---------------------------------------------------------------

    def _first_stats(self) -> HandlerStats:
        """At the first turn of a metered slot: its figures, made now."""
        stats = self.slot.stats
        if stats is None:
            stats = self.slot.stats = HandlerStats()
        self.stats = stats
        return stats

    def _long(self, run: float, mtype: type, timed: bool) -> None:
        """A handler ran `run` seconds, longer than `limit`: its bucket (with
        metrics off, counted into `_UNMETERED`), and `handler.slow` past
        `slow_handler` if it is `timed` (one that awaits is not)."""
        stats = self.stats
        if stats is not None:
            k = bisect_left(BOUNDS, run)
            counts = stats.counts
            if counts is None or k >= len(counts):  # as long as the longest run's bucket
                counts = stats.counts = [*(counts or ()), *(0,) * (k + 1 - len(counts or ()))]
            counts[k] += 1
        if timed and run > self.slot.system.slow_handler:
            self._slow(run, mtype)

    # -- busy spells: async handlers -------------------------------------------

    def _start_spell(self, deadline: float) -> None:
        """Serve from here in a task: eager (it runs now, in this turn) on 3.12+,
        else from the next loop pass; either way in the incarnation's context."""
        self.state = BUSY
        if EAGER:
            asyncio.Task(  # type: ignore[call-arg]
                self._spell(deadline), loop=self.loop, context=self.context, eager_start=True
            )
        else:
            if self.first is None:
                self.first = _PENDING  # until its first step: a kill must know it never ran
            # `Task()` rather than `loop.create_task()`, as on 3.12: no task factory
            spell = self._spell(deadline)
            self.slot.task = asyncio.Task(spell, loop=self.loop, context=self.context)

    async def _spell(
        self, deadline: float, carrier: asyncio.Task[Any] | None = None
    ) -> Server | None:
        """A busy spell: serve the mailbox in this task until it is empty, the
        budget is spent (then back to the ready queue) or serving ends.

        When the mailbox is empty and the ready queue's next actor is tasked
        too (its last message was async), the spell carries it: the same task
        serves that actor from here (`_carry`), in its context, and so on
        while the budget lasts; an actor the task no longer serves has no task
        (API.md 5 holds: each async handler runs in a task serving its actor).
        A carried spell is given the task (`carrier`) and returns the next one to carry.

        Async handlers are awaited right here: no task per message, and
        `current_task()`, `asyncio.timeout()` and `TaskGroup` see this task,
        whose cancellation from outside kills the actor. The clock reads and
        the metrics are as in `_sync`: runs counted from `left` (`base` is what
        `left` would be with nothing served) and timed by the reads around them.
        """
        slot = self.slot
        # This one, or the one that carries this spell (no `cast()`: a call per spell).
        task: asyncio.Task[Any] = carrier or _current_task(self.loop)  # type: ignore[assignment]
        slot.task = task
        item, self.first = self.first, None
        t = first = clock_now()  # the first handler's start; `t`: the latest read
        if not EAGER:
            self.dispatcher.carrying = True
            if item is _PENDING:
                item = None
            if carrier is None:
                deadline = t + BUDGET  # started a loop pass after it was asked for
        mb = self.mailbox
        queue = mb.queue
        instance = self.instance
        lookup = self.dispatch.get
        limit = self.limit
        stats = self.stats
        if stats is None:
            stats = self._first_stats()
        if len(queue) > stats.high:
            stats.high = len(queue)
        left = BATCH
        base = BATCH if item is None else BATCH + 1  # `item` was taken by the turn
        kind = AWAITS
        exit: Exit | None = None
        nxt: Server | None = None  # the next actor this task serves
        try:
            while True:
                if item is None:
                    if mb.system:
                        exit = self._signal()
                        if exit is not None:
                            break
                        continue
                    if not queue:
                        if self.draining:
                            exit = SHUTDOWN
                            break
                        if task.cancelling():
                            raise asyncio.CancelledError  # killed from its own step
                        stats.handled += base - left
                        stats.sum += t - first
                        base = left
                        first = t
                        slot.task = None
                        self.tasked = kind > 0
                        self.state = IDLE  # the spell is over: no task while idle
                        if mb.wait(self):
                            if not EAGER:
                                self.dispatcher.carrying = False
                            if self.dispatcher.ready:
                                nxt = self._carry(t, deadline)
                                if nxt is not None and carrier is None:
                                    break  # this spell's task carries the next ones
                            return nxt
                        self.state = BUSY
                        slot.task = task
                        continue
                    if not left:
                        if self.dispatcher.ready:
                            stats.handled += base
                            stats.sum += t - first
                            base, first = left, t  # (counted: a kill below adds nothing)
                            self._requeue(task, kind > 0)  # the others' turn
                            return None
                        left = BATCH  # nobody else is ready: go on
                        base += BATCH
                    if t > deadline:
                        stats.handled += base - left
                        stats.sum += t - first
                        base, first = left, t
                        self._requeue(task, kind > 0, spent=True)
                        return None
                    left -= 1
                    item = mb.take() if mb._putters else queue.popleft()  # noqa: SLF001 (inlined)
                message, reply = item
                mtype = type(message)  # (the watchdog reads it from this frame)
                fn, kind = lookup(mtype) or type(instance).dispatch_miss(mtype)
                began = t
                try:
                    if not kind:
                        result = fn(instance, message)
                    elif kind == AWAITS:
                        if mtype is Tick:  # (its handler awaits) a timer's message:
                            message = _untick(instance, message)  # serve it next, as is
                            if message is _STALE:
                                item = None
                                left += 1  # nothing ran
                            else:
                                item = (message, reply)
                            continue
                        # It may suspend: mark the invocation, in this task's context
                        # (tasks it starts inherit it), for the self-ask check. A
                        # NOWAIT handler cannot await anything, so it goes without:
                        # a ContextVar.set per message would cost more than the rest.
                        slot.handling = item
                        serving.set((slot, item))
                        try:
                            result = await fn(instance, message)
                        finally:
                            slot.handling = None
                            if len(queue) > stats.high:
                                stats.high = len(queue)  # what piled up while it awaited
                    else:
                        result = await fn(instance, message)
                except Unhandled:
                    slot.unhandled(message, reply)
                    left += 1  # no handler ran: not counted, and not timed
                    item = None
                    t = clock_now()
                    first += t - began
                    continue
                except BaseException as exc:
                    if not is_crash(exc):
                        left += 1  # killed (or the program ends): not a finished run
                        t = began
                        if reply is not None and isinstance(exc, asyncio.CancelledError):
                            killed = ActorStopped(f"{slot.path} was killed while handling it")
                            settle(reply, exc=killed)  # the asker must not hang
                        raise
                    exit = self._crashed(reply, exc)
                    if exit is not None:
                        t = clock_now()
                        if t - began > limit:
                            self._long(t - began, mtype, kind != AWAITS)
                        break
                else:
                    if reply is not None:
                        self._reply(reply, result)
                item = None
                # The one clock read per message, as in `_sync` (a handler that
                # awaits is timed until it returns, but never `handler.slow`).
                t = clock_now()
                if t - began > limit:
                    self._long(t - began, mtype, kind != AWAITS)
        except asyncio.CancelledError:
            exit = None  # killed (a CancelledError raised by a handler was a crash above)
        except (KeyboardInterrupt, SystemExit):
            slot.task = None
            self._interrupted()
            raise
        if nxt is not None:  # (the first spell of its task: it drives the carried ones)
            while nxt is not None:
                spell = nxt._spell(deadline, task)  # noqa: SLF001
                if nxt.context is self.context:
                    nxt = await spell  # this task's own context (a ring came round)
                    continue
                # Its first step here (a spell that never suspends is over after it),
                # the rest through `_in_context`.
                run = nxt.context.run
                try:
                    out = run(spell.send, None)
                except StopIteration as stop:
                    nxt = stop.value
                else:
                    nxt = await _in_context(run, spell, out)
            return None
        stats.handled += base - left
        stats.sum += t - first
        slot.handling = None
        self.state = DONE
        await slot.end(self, exit)  # in this task: its hooks, if any, run here
        return None

    def _carry(self, t: float, deadline: float) -> Server | None:
        """This spell's actor went idle: the ready queue's next actor, if its
        last message was async (it would start a spell) and the budget lasts,
        goes to this task. The queue's order is kept: it is the next turn."""
        if t > deadline:
            return None
        ready = self.dispatcher.ready
        nxt = ready[0]
        if not nxt.tasked or nxt.state is not READY:
            return None  # a turn of the dispatcher's (or nothing, if it was killed)
        ready.popleft()
        nxt.state = BUSY
        return nxt

    def _interrupted(self) -> None:
        """A KeyboardInterrupt or SystemExit left a handler: no crash (supervision.md,
        case 49), it goes up to the runtime, which then shuts down. The actor stays
        servable, so what follows (its stop) is served, not waited out."""
        self.tasked = False
        self.state = IDLE
        self.wake()

    def _requeue(self, task: asyncio.Task[Any], tasked: bool, spent: bool = False) -> None:
        """A spell leaves the rest for a later turn (budget or batch spent)."""
        if task.cancelling():
            raise asyncio.CancelledError  # killed from its own step: `_spell` ends it
        self.slot.task = None
        self.tasked = tasked
        self.state = READY
        if not EAGER:
            self.dispatcher.carrying = False
        if spent:
            self.dispatcher.defer(self)
        else:
            self.dispatcher.schedule(self)

    # -- outcomes --------------------------------------------------------------

    def _slow(self, seconds: float, mtype: type) -> None:
        """A handler that does not await ran `seconds`, past `slow_handler`."""
        slot = self.slot
        slot.system.log_event(
            "handler.slow", slot.path, message_type=mtype.__qualname__, seconds=round(seconds, 3)
        )

    def _reply(self, reply: asyncio.Future[Any], result: Any) -> None:
        """Answer an asker: directly on this loop, through its outbox from another."""
        if reply.get_loop() is self.loop:
            if not reply.done():
                reply.set_result(result)
        else:
            self._answer_foreign(reply, result)

    def _answer_foreign(self, reply: asyncio.Future[Any], result: Any) -> None:
        """Another loop is another thread: one wake-up per burst of replies."""
        asker = reply.get_loop()
        if asker is not self.asker:
            self.asker, self.outbox = asker, outbox_of(asker)
        self.outbox.post(reply, result, None)

    def _crashed(self, reply: asyncio.Future[Any] | None, exc: BaseException) -> Exit | None:
        """A handler raised `exc` (a crash): its asker gets it, then the owner's
        directive. None: serving goes on (resume)."""
        stats = self.slot.stats
        if stats is not None:
            stats.failed += 1
        if reply is not None:
            settle(reply, exc=for_asker(exc))
        return self.slot.failed(exc)

    def _signal(self) -> Exit | None:
        signal = self.mailbox.next_signal()
        if signal is STOP_NOW:
            return SHUTDOWN
        if signal is STOP_SELF:
            return NORMAL
        if signal is STOP_DRAIN:
            self.draining = True
        return None

    def end_if_idle(self) -> bool:
        """A stop from its own loop, outside its turns: if nothing is queued and
        no handler runs, end serving now (SHUTDOWN, what a turn serving the stop
        signal would do) instead of signalling and waiting for a turn. An entry
        left on the ready queue finds it DONE and is skipped."""
        mb = self.mailbox
        if (self.state is not IDLE and self.state is not READY) or mb.queue or mb.system:
            return False
        if mb._waiter is self:  # noqa: SLF001 (the mailbox's consumer, unregistered)
            mb._waiter = None  # noqa: SLF001
        ready = self.dispatcher.ready
        if ready and ready[-1] is self:  # the usual case: the stop's close woke it just now
            ready.pop()
        self._end(SHUTDOWN)
        return True

    def _end(self, exit: Exit | None) -> None:
        """Serving is over (None: killed); the slot runs the rest of the incarnation."""
        self.state = DONE
        self.slot.serving_ended(self, exit)

    def kill(self) -> None:
        """Kill the incarnation (on the owner loop): cancel its spell's task, or
        end it here if none runs (idle, ready, or a spell that never started)."""
        state = self.state
        if state is DONE:
            self.slot.cancel_task()  # its end phase runs as the slot's task
            return
        if state is BUSY:
            task = self.slot.task
            first, self.first = self.first, None
            if first is None:
                if task is not None:
                    task.cancel()  # the kill lands in the running handler
                return
            # 3.11: the spell's task has not taken its first step, so it never will.
            if task is not None:
                task.cancel()
            self.slot.task = None
            if first is not _PENDING:
                # Taken but never started: it stays queued, for a restarted
                # incarnation or the dead letters (a kill consumes no message).
                self.mailbox.queue.appendleft(first)
        elif state is RUNNING:
            return  # not reachable: a kill comes from a task, never from a turn
        self.mailbox.unwait(self)
        self._end(None)


@types.coroutine
def _in_context(
    run: Callable[..., Any], coro: Coroutine[Any, Any, Server | None], out: Any
) -> Generator[Any, Any, Server | None]:
    """The rest of a carried spell `coro`, which yielded `out` in its first step:
    each step runs in its actor's context (`run` is that context's `run`). What it
    yields goes to the task, what the task sends or throws goes back in."""
    send = coro.send
    while True:
        try:
            value = yield out
        except GeneratorExit:
            run(coro.close)
            raise
        except BaseException as exc:
            try:
                out = run(coro.throw, exc)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
        else:
            try:
                out = run(send, value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]


def _untick(instance: Actor, tick: Tick) -> Any:
    """The message a timer tick carries, or `_STALE` if an earlier incarnation
    scheduled it (timers die with theirs). Unwrapped here rather than by the
    async `Actor._mycelium_tick`, so a tick to a sync handler needs no task."""
    if tick.context is not instance.context:
        return _STALE
    return tick.message
