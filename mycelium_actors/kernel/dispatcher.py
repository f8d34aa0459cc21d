"""The per-loop dispatcher: an idle actor costs no task, no frame, no future.

While an actor's mailbox is empty its incarnation is a `Server` registered
as the mailbox's consumer, and nothing else. A message to it puts the server
on its loop's `Dispatcher` ready queue; one callback per loop pass (`_pass`)
runs the ready servers, each for up to `BATCH` messages, until the queue is
empty or `BUDGET` seconds have passed, so timers and I/O still run and one
flooded actor cannot starve the others (it goes to the back of the queue).

Sync handlers run inline, a run of them inside one `Context.run` of the
incarnation's `contextvars.Context`. On Python 3.12+ an async handler is an
eager task on its own coroutine, in that context: one that does not suspend
is done before `Task()` returns and the turn goes on; one that suspends
continues serving from its done-callback. On 3.11 (no eager tasks) the first
async handler starts a *busy task* that serves the mailbox from there and
stays, parked on the mailbox, until the incarnation ends.

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
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from ..errors import ActorStopped
from .actor import Unhandled
from .exits import NORMAL, SHUTDOWN, Exit, for_asker, is_crash
from .mailbox import STOP_DRAIN, STOP_NOW, STOP_SELF
from .ref import serving
from .replies import Outbox, outbox_of, settle

if TYPE_CHECKING:
    from .actor import Actor
    from .slot import Slot

#: Messages one actor handles per turn before the next ready actor's turn.
BATCH = 64
#: Seconds one dispatcher pass may run before it lets the loop do timers and I/O.
BUDGET = 0.002
#: Whether tasks can start eagerly (`Task(..., eager_start=True)`, Python 3.12+).
EAGER = sys.version_info >= (3, 12)

_current_task = asyncio.current_task
_monotonic = time.monotonic

# Server states (compared by identity).
IDLE = "idle"  # registered as its mailbox's consumer; nothing runs
READY = "ready"  # on the ready queue
RUNNING = "running"  # in a dispatcher turn, no task
BUSY = "busy"  # a busy task serves the mailbox
DONE = "done"  # serving is over: the incarnation ends (or has ended)

# What `Server._sync` returns when no async handler is next.
_OVER = -1  # the turn is over: idle, or back on the ready queue
_ENDED = -2  # serving ends: the Exit is in `first`


class Dispatcher:
    """One per event loop: the ready queue and the pass that serves it."""

    __slots__ = ("__weakref__", "_context", "_loop", "_scheduled", "ready")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.ready: deque[Server] = deque()
        self._scheduled = False  # a pass is scheduled or running
        # Passes run in an empty context, never in that of whoever scheduled them.
        self._context = contextvars.Context()

    def schedule(self, server: Server) -> None:
        """On the loop's thread: put `server` on the ready queue."""
        self.ready.append(server)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._pass, context=self._context)

    def _pass(self) -> None:
        ready = self.ready
        deadline = _monotonic() + BUDGET
        turns = 0
        try:
            while ready:
                ready.popleft().turn()
                turns += 1
                if not turns & 15 and _monotonic() > deadline:
                    break  # the rest waits for the next pass, after timers and I/O
        finally:
            if ready:
                self._loop.call_soon(self._pass, context=self._context)
            else:
                self._scheduled = False


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

    No task (but an async handler's own), log call or isinstance per message;
    dispatch is one dict lookup on the message's type.
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
        "loop",
        "mailbox",
        "outbox",
        "slot",
        "state",
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
        # The item an async handler runs for; between `_sync` and `turn`, what
        # `_sync` hands over (that item, or the Exit that ends serving).
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
            self.state = READY
            self.dispatcher.schedule(self)

    def wake_now(self) -> None:
        if self.state is IDLE:
            self.state = READY
            if _current_task(self.loop) is None:
                self.turn()  # a plain callback: serve in this very pass
            else:
                self.dispatcher.schedule(self)

    # -- serving -------------------------------------------------------------

    def turn(self) -> None:
        """Serve up to BATCH messages (from the dispatcher or a plain callback).

        Sync handlers run in `_sync`, one `Context.run` for a run of them; an
        async handler breaks out of it, since its task enters the context itself.
        """
        if self.state is not READY:
            return  # killed while it waited its turn
        self.state = RUNNING
        run = self.context.run
        left = BATCH
        while True:
            left = run(self._sync, left)
            if left < 0:
                if left == _ENDED:
                    exit, self.first = self.first, None
                    self._end(exit)
                return
            if not EAGER:
                self._go_busy(left)  # 3.11: a task serves from this item on
                return
            if not self._run_async():
                return  # it suspended: its task's end serves on
            mb = self.mailbox
            if not mb.queue and not mb.system and not self.draining:
                self.state = IDLE  # the usual end of a turn, without entering the context
                if mb.wait(self):
                    return
                self.state = RUNNING

    def _sync(self, left: int) -> int:
        """In the incarnation's context: serve while handlers are sync.

        Returns the batch left when the next handler is async (its item in
        `first`, `serving` set for it), `_OVER` when the turn is over (idle or
        requeued), `_ENDED` when serving ends (the Exit in `first`).
        """
        slot = self.slot
        mb = self.mailbox
        queue = mb.queue
        instance = self.instance
        dispatch = self.dispatch
        loop = self.loop
        while True:
            if mb.system:
                exit = self._signal()
                if exit is not None:
                    self.first = exit
                    return _ENDED
                continue
            if not queue:
                if self.draining:
                    self.first = SHUTDOWN
                    return _ENDED
                self.state = IDLE
                if mb.wait(self):
                    return _OVER
                self.state = RUNNING
                continue
            if not left:
                self.state = READY
                self.dispatcher.schedule(self)  # to the back of the queue
                return _OVER
            left -= 1
            # `mb.take()`, inlined while no sender waits for room (checked each time)
            item = mb.take() if mb._putters else queue.popleft()  # noqa: SLF001 (the hot path)
            message, reply = item
            mtype = type(message)
            fn, is_async = dispatch.get(mtype) or type(instance).dispatch_miss(mtype)
            if is_async:
                serving.set((slot, item))  # in this context, which its task runs in
                slot.handling = item
                # 3.12+: the handler's coroutine, for the task `turn` makes; 3.11: the item.
                self.first = fn(instance, message) if EAGER else item
                return left
            try:
                result = fn(instance, message)
            except Unhandled:
                slot.unhandled(message, reply)
                continue
            except BaseException as exc:
                if not is_crash(exc):
                    raise
                if reply is not None:
                    settle(reply, exc=for_asker(exc))
                exit = slot.failed(exc)
                if exit is not None:
                    self.first = exit
                    return _ENDED
                continue
            if reply is not None:
                if reply.get_loop() is loop:
                    if not reply.done():
                        reply.set_result(result)
                else:
                    self._answer_foreign(reply, result)

    def _run_async(self) -> bool:
        """3.12+: run the async handler (its coroutine in `first`) as an eager
        task. True if it finished at once (its outcome is settled and serving
        goes on here), False if it suspended or serving ended."""
        coro, self.first = self.first, None
        slot = self.slot
        self.state = BUSY  # a kill from inside its first step cancels the current task
        task = asyncio.Task(coro, loop=self.loop, context=self.context, eager_start=True)  # type: ignore[call-arg]
        item = slot.handling
        if not task.done():
            self.first = item
            slot.task = task  # a kill cancels it
            task.add_done_callback(self._resumed)
            return False
        slot.handling = None
        self.state = RUNNING
        if task.cancelled() or task.exception() is not None:
            return self._outcome(task, item)
        reply = item[1]
        if reply is not None:
            if reply.get_loop() is self.loop:
                if not reply.done():
                    reply.set_result(task.result())
            else:
                self._answer_foreign(reply, task.result())
        return True

    def _resumed(self, task: asyncio.Task[Any]) -> None:
        """A plain callback: the async handler that suspended has finished."""
        slot = self.slot
        if slot.task is task:
            slot.task = None
        slot.handling = None
        item, self.first = self.first, None
        if self.state is not BUSY:
            return  # serving ended meanwhile
        self.state = RUNNING
        if self._outcome(task, item):
            self.state = READY
            self.turn()  # no task runs: go on serving in this very callback

    def _outcome(self, task: asyncio.Task[Any], item: Any) -> bool:
        """Settle the reply from a finished handler task; True: serving goes on."""
        reply = item[1]
        if task.cancelled():
            try:
                task.result()
            except asyncio.CancelledError as exc:
                error: BaseException = exc
            if task.cancelling():  # somebody cancelled it: the actor was killed
                if reply is not None:
                    killed = ActorStopped(f"{self.slot.path} was killed while handling it")
                    settle(reply, exc=killed)
                self._end(None)
                return False
        else:
            error = task.exception()  # type: ignore[assignment]
            if error is None:
                if reply is not None:
                    result = task.result()
                    if reply.get_loop() is self.loop:
                        if not reply.done():
                            reply.set_result(result)
                    else:
                        self._answer_foreign(reply, result)
                return True
            if isinstance(error, Unhandled):
                self.slot.unhandled(item[0], reply)
                return True
        if reply is not None:
            settle(reply, exc=for_asker(error))
        exit = self.slot.failed(error)
        if exit is not None:
            self._end(exit)
            return False
        return True

    def _answer_foreign(self, reply: asyncio.Future[Any], result: Any) -> None:
        """Another loop is another thread: one wake-up per burst of replies."""
        asker = reply.get_loop()
        if asker is not self.asker:
            self.asker, self.outbox = asker, outbox_of(asker)
        self.outbox.post(reply, result, None)

    def _signal(self) -> Exit | None:
        signal = self.mailbox.next_signal()
        if signal is STOP_NOW:
            return SHUTDOWN
        if signal is STOP_SELF:
            return NORMAL
        if signal is STOP_DRAIN:
            self.draining = True
        return None

    def _end(self, exit: Exit | None) -> None:
        """Serving is over (None: killed); the slot runs the rest of the incarnation."""
        self.state = DONE
        self.slot.serving_ended(self, exit)

    # -- the busy task (3.11) ---------------------------------------------------

    def _go_busy(self, left: int) -> None:
        """3.11 has no eager tasks: a *busy task* serves from the first async
        handler on, and stays (parked on the mailbox) while the actor lives, so
        the next message costs a future's wake-up rather than a new task."""
        self.state = BUSY
        task = self.loop.create_task(self._busy(left), context=self.context)
        if self.first is not None:
            self.slot.task = task  # not started yet: a kill must find it

    async def _busy(self, left: int) -> None:
        """Serve from the first async handler until the incarnation ends."""
        slot = self.slot
        slot.task = _current_task()
        item, self.first = self.first, None
        mb = self.mailbox
        queue = mb.queue
        instance = self.instance
        dispatch = self.dispatch
        loop = self.loop
        set_serving = serving.set
        exit: Exit | None = None
        try:
            while True:
                message, reply = item
                mtype = type(message)
                fn, is_async = dispatch.get(mtype) or type(instance).dispatch_miss(mtype)
                try:
                    if is_async:
                        slot.handling = item
                        set_serving((slot, item))
                        try:
                            result = await fn(instance, message)
                        finally:
                            slot.handling = None
                    else:
                        result = fn(instance, message)
                except Unhandled:
                    slot.unhandled(message, reply)
                except BaseException as exc:
                    if not is_crash(exc):
                        if reply is not None and isinstance(exc, asyncio.CancelledError):
                            # killed mid-message: the asker must not hang
                            settle(
                                reply, exc=ActorStopped(f"{slot.path} was killed while handling it")
                            )
                        raise
                    if reply is not None:
                        settle(reply, exc=for_asker(exc))
                    exit = slot.failed(exc)
                    if exit is not None:
                        break
                else:
                    if reply is not None:
                        if reply.get_loop() is loop:
                            if not reply.done():
                                reply.set_result(result)
                        else:
                            self._answer_foreign(reply, result)
                message = reply = result = item = None  # hold nothing while parked
                while True:
                    if mb.system:
                        exit = self._signal()
                        if exit is not None:
                            break
                        continue
                    if queue:
                        if left:
                            break
                        left = BATCH
                        await asyncio.sleep(0)  # batch used up: the loop's others go first
                        continue
                    if self.draining:
                        exit = SHUTDOWN
                        break
                    parked = mb.park()
                    if parked is not None:
                        await parked
                        left = BATCH
                if exit is not None:
                    break
                left -= 1
                item = mb.take() if mb._putters else queue.popleft()  # noqa: SLF001 (inlined)
        except asyncio.CancelledError:
            exit = None  # killed (a CancelledError raised by the handler was a crash above)
        self.state = DONE
        await slot.end(self, exit)

    def kill(self) -> None:
        """Kill the incarnation (on the owner loop): cancel the running handler's
        task, or end it here if none runs (idle, ready, or a busy task that
        never started)."""
        state = self.state
        if state is DONE:
            self.slot.cancel_task()  # its end phase runs as the slot's task
            return
        if state is BUSY:
            task = self.slot.task
            if EAGER and task is None:
                # From inside the first step of the handler's eager task, which
                # has not returned its task yet: it is the current one.
                task = _current_task(self.loop)
            if self.first is None or EAGER:
                if task is not None:
                    task.cancel()  # the kill lands in the running handler
                return
            if task is not None:
                task.cancel()  # it never started (3.11), so it never will
            item, self.first = self.first, None
            if item[1] is not None:
                settle(item[1], exc=ActorStopped(f"{self.slot.path} was killed"))
        elif state is RUNNING:
            return  # not reachable: a kill comes from a task, never from a turn
        self.mailbox.unwait(self)
        self._end(None)
