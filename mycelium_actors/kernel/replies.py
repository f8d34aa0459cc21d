"""Completing futures from any thread: replies, admissions, wake-ups.

A future belongs to one event loop and may only be completed on it. `settle`
does that from anywhere: directly on the future's own loop, otherwise through
that loop's *outbox*. An outbox is the reply-side twin of a mailbox: a deque
that other threads append to, and one `call_soon_threadsafe` per burst (a
pending flag suppresses the rest) that drains it on the owning loop. An actor
answering a hundred asks from another loop in one drain wakes that loop once.

`resume` completes a future from a plain loop callback and runs the task
waiting on it right away instead of one loop pass later.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
import weakref
from collections import deque
from typing import Any

_current_task = asyncio.current_task
_get_running_loop = asyncio.get_running_loop

Reply = tuple["asyncio.Future[Any]", Any, "BaseException | None"]


def settle(fut: asyncio.Future[Any], result: Any = None, exc: BaseException | None = None) -> None:
    """Complete `fut` from any thread; a no-op if it is already done."""
    loop = fut.get_loop()
    try:
        running = _get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        if not fut.done():
            if exc is None:
                fut.set_result(result)
            else:
                fut.set_exception(exc)
    else:
        outbox_of(loop).post(fut, result, exc)


class ThreadFuture(concurrent.futures.Future[Any]):
    """A reply (or an admission) that a plain thread blocks on, with no loop of
    its own: any thread may complete it directly, so `get_loop()` names the
    loop of whoever asks (every completer then takes its direct path, and
    `settle` needs no outbox for it). Completing it once it is done (its
    waiter gave up) is a no-op, as with `settle`."""

    def get_loop(self) -> asyncio.AbstractEventLoop | None:
        try:
            return _get_running_loop()
        except RuntimeError:
            return None

    def set_result(self, result: Any) -> None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            super().set_result(result)

    def set_exception(self, exception: BaseException | None) -> None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            super().set_exception(exception)


class _StandInLoop:
    """All a pending future asks of its loop while it is built and given callbacks."""

    def get_debug(self) -> bool:
        return False


def _probe(fut: asyncio.Future[Any]) -> None:
    pass


def _lists_callbacks(cls: type[asyncio.Future[Any]]) -> bool:
    """Whether `cls` futures show pending callbacks as `_callbacks`: (fn, context) pairs."""
    try:
        fut = cls(loop=_StandInLoop())  # type: ignore[arg-type]
        context = contextvars.copy_context()
        fut.add_done_callback(_probe, context=context)
        listed = fut._callbacks == [(_probe, context)]
        return listed and fut.remove_done_callback(_probe) == 1 and not fut._callbacks
    except Exception:
        return False


# The bet: `Future._callbacks` (an implementation detail, the same in the C and
# Python futures of 3.11 to 3.13) lists what waits on a future. Future classes
# that pass the probe may take resume's early path; any other future, or every
# future if none passes, takes the ordinary one.
_EARLY_TYPES: frozenset[type] = frozenset(
    cls
    for cls in (asyncio.Future, getattr(asyncio.futures, "_PyFuture", None))
    if cls is not None and _lists_callbacks(cls)
)


def resume(fut: asyncio.Future[Any], result: Any = None, exc: BaseException | None = None) -> None:
    """Complete `fut`; called from a plain loop callback, also run its waiter now.

    Completing a future only schedules the step of the task awaiting it, one
    loop pass later: one more `select()`, which lets go of the GIL, and with a
    thread on the other side of a cross-thread message that is a GIL hand-off
    each way. From a callback, with no task running, that step can run right
    here instead. Anything else (no task awaiting, a plain done-callback,
    several callbacks, a task running, a future class not probed) takes the
    ordinary path. An exception from the early step goes to the loop's
    exception handler, as it would from the loop's own call: never to the caller.
    """
    callbacks = fut._callbacks if type(fut) in _EARLY_TYPES else None  # noqa: SLF001 (the probed bet)
    # current_task(loop), not current_task(): no get_running_loop(), which on
    # 3.11 makes a getpid() system call.
    if (
        callbacks
        and len(callbacks) == 1
        and isinstance(getattr(callbacks[0][0], "__self__", None), asyncio.Task)
        and _current_task(fut.get_loop()) is None
    ):
        step, context = callbacks[0]  # a task's wake-up method: only those run early
        fut.remove_done_callback(step)
        if exc is None:
            fut.set_result(result)
        else:
            fut.set_exception(exc)
        try:
            context.run(step, fut)  # the waiting task's own context, as the loop would
        except (SystemExit, KeyboardInterrupt):
            raise  # as asyncio's Handle does
        except BaseException as error:
            fut.get_loop().call_exception_handler(
                {
                    "message": "Exception in a task step run by replies.resume",
                    "exception": error,
                    "future": fut,
                }
            )
    elif exc is None:
        fut.set_result(result)
    else:
        fut.set_exception(exc)


class Outbox:
    """Completions for one loop, posted from other threads, drained on that loop."""

    __slots__ = ("_items", "_loop", "_pending")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)  # weak: the outbox must not keep its loop alive
        self._items: deque[Reply] = deque()
        self._pending = False

    def post(self, fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
        """From a thread other than the loop's: queue a completion, wake the loop once."""
        self._items.append((fut, result, exc))
        if not self._pending:
            self._pending = True
            loop = self._loop()
            try:
                if loop is None:
                    raise RuntimeError("loop is gone")
                loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                self._items.clear()

    def _drain(self) -> None:
        # Clear the flag first: a post that saw it set appended before this
        # point, so the loop below sees it; a later one schedules a new drain.
        self._pending = False
        items = self._items
        while items:
            fut, result, exc = items.popleft()
            if not fut.done():
                resume(fut, result, exc)


_OUTBOXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Outbox] = (
    weakref.WeakKeyDictionary()
)
_NEW_OUTBOX = threading.Lock()


def outbox_of(loop: asyncio.AbstractEventLoop) -> Outbox:
    """The outbox of `loop` (one per loop, made on first use)."""
    outbox = _OUTBOXES.get(loop)
    if outbox is None:
        with _NEW_OUTBOX:  # two threads must not each make one
            outbox = _OUTBOXES.get(loop)
            if outbox is None:
                outbox = _OUTBOXES[loop] = Outbox(loop)
    return outbox
