"""The per-loop dispatcher: an idle actor costs no task, no frame, no future.

While an actor's mailbox is empty its incarnation is a `Server` registered
as the mailbox's consumer, and nothing else. A message to it puts the server
on its loop's `Dispatcher` ready queue; one callback per loop pass (`_pass`)
runs the ready servers, each for up to `BATCH` messages, until the queue is
empty or `BUDGET` seconds have passed, so timers and I/O still run and one
flooded actor cannot starve the others (it goes to the back of the queue).

A sync handler runs inline, in the incarnation's `contextvars.Context`. The
first async handler of a turn starts a *busy task* that serves the mailbox
from there (async handlers awaited at its top level, so `current_task()`,
`asyncio.timeout()`, `TaskGroup` and cancellation work as in any task) until
the mailbox is empty or its batch is used up; then the actor is idle again
(or back on the ready queue) and the task ends. On Python 3.12+ the task is
started eagerly: a handler that does not suspend costs no loop pass and the
task is done before `Task()` returns. On 3.11 the busy task is an ordinary
task: one loop pass to start it, per busy period rather than per message.

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

from .actor import Unhandled
from .errors import ActorStopped
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

    No task, log call or isinstance per message; dispatch is one dict lookup
    on the message's type.
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
        "miss",
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
        self.miss = cls.dispatch_miss
        self.dispatcher = dispatcher_of(loop)
        self.state = RUNNING
        self.draining = False
        self.first: Any = None  # the item a busy task that has not run yet starts with
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
        """Serve up to BATCH messages; sync handlers inline (dispatcher only)."""
        if self.state is not READY:
            return  # killed while it waited its turn
        self.state = RUNNING
        slot = self.slot
        mb = self.mailbox
        queue = mb.queue
        instance = self.instance
        dispatch = self.dispatch
        miss = self.miss
        run = self.context.run
        loop = self.loop
        left = BATCH
        while True:
            if mb.system:
                exit = self._signal()
                if exit is not None:
                    self._end(exit)
                    return
                continue
            if not queue:
                if self.draining:
                    self._end(SHUTDOWN)
                    return
                self.state = IDLE
                if mb.wait(self):
                    return
                self.state = RUNNING
                continue
            if not left:
                self.state = READY
                self.dispatcher.schedule(self)  # to the back of the queue
                return
            left -= 1
            item = mb.take()  # read each time: it changes while senders wait for room
            message, reply = item
            mtype = type(message)
            fn, is_async = dispatch.get(mtype) or miss(mtype)
            if is_async:
                self._go_busy(item, left)
                return
            try:
                result = run(fn, instance, message)
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
                    self._end(exit)
                    return
                continue
            if reply is not None:
                if reply.get_loop() is loop:
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

    # -- the busy task ---------------------------------------------------------

    def _go_busy(self, item: Any, left: int) -> None:
        self.state = BUSY
        self.first = item
        if EAGER:
            task = asyncio.Task(
                self._busy(left),
                loop=self.loop,
                context=self.context,
                eager_start=True,  # type: ignore[call-arg]
            )
        else:
            task = self.loop.create_task(self._busy(left), context=self.context)
        if not task.done() and self.first is not None:
            self.slot.task = task  # not started yet (3.11): a kill must find it

    async def _busy(self, left: int) -> None:
        """Serve from the first async handler until idle or out of batch."""
        slot = self.slot
        slot.task = _current_task()
        item, self.first = self.first, None
        mb = self.mailbox
        queue = mb.queue
        instance = self.instance
        dispatch = self.dispatch
        miss = self.miss
        loop = self.loop
        set_serving = serving.set
        exit: Exit | None = None
        try:
            while True:
                message, reply = item
                mtype = type(message)
                fn, is_async = dispatch.get(mtype) or miss(mtype)
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
                message = reply = result = item = None  # hold nothing while idle
                while True:
                    if mb.system:
                        exit = self._signal()
                        if exit is not None:
                            break
                        continue
                    if queue:
                        break
                    if self.draining:
                        exit = SHUTDOWN
                        break
                    slot.task = None
                    self.state = IDLE
                    if mb.wait(self):
                        return
                    self.state = BUSY
                    slot.task = _current_task()
                if exit is not None:
                    break
                if not left:
                    slot.task = None
                    self.state = READY
                    self.dispatcher.schedule(self)
                    return
                left -= 1
                item = mb.take()
        except asyncio.CancelledError:
            exit = None  # killed (a CancelledError raised by the handler was a crash above)
        self.state = DONE
        await slot.end(self, exit)

    def kill(self) -> None:
        """Kill the incarnation (on the owner loop): cancel its busy task, or end it
        here if none runs (idle, ready, or a busy task that never started)."""
        state = self.state
        if state is DONE:
            self.slot.cancel_task()  # its end phase runs as the slot's task
            return
        if state is BUSY:
            task = self.slot.task
            if self.first is None:
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
