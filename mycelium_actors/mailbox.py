"""Bounded mailboxes with overflow policies and a system lane.

A mailbox belongs to a slot (the logical actor), not to an instance, so it
outlives restarts. Items are `(message, reply)` pairs; `reply` is the asker's
future or None for a tell.

Hot path: a put appends to a deque and wakes the consumer only when it is
parked (one wake-up per burst). The consumer drains many items per wake-up.
Puts from a thread other than the owner loop's take a lock for the capacity
check and wake the owner loop with one `call_soon_threadsafe` per burst.

Blocked senders ("block" policy) queue FIFO; freed space is *granted* to the
oldest one, which then appends, so a cancelled sender enqueues nothing and
newcomers cannot overtake the queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from .clock import Clock
from .errors import ActorStopped, AskTimeout, MailboxFull

Item = tuple[Any, "asyncio.Future[Any] | None"]
DeadLetterSink = Callable[[Any, str], None]

BLOCK, DROP_NEW, DROP_OLD, FAIL = "block", "drop_new", "drop_old", "fail"

# Cross-thread puts lock the capacity check. Striped locks shared by all
# mailboxes keep an idle mailbox small (a Lock per mailbox costs 88 bytes).
_LOCKS = tuple(threading.Lock() for _ in range(64))
_POLICIES = {p: p for p in (BLOCK, DROP_NEW, DROP_OLD, FAIL)}


def settle(fut: asyncio.Future[Any], result: Any = None, exc: BaseException | None = None) -> None:
    """Complete a reply future from any thread; a no-op if it is already done."""
    loop = fut.get_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _settle_here(fut, result, exc)
    else:
        try:
            loop.call_soon_threadsafe(_settle_here, fut, result, exc)
        except RuntimeError:
            pass  # the asker's loop is closed: nobody is waiting any more


def _settle_here(fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if not fut.done():
        if exc is None:
            fut.set_result(result)
        else:
            fut.set_exception(exc)


class Mailbox:
    """A bounded FIFO of user messages plus an unbounded system lane."""

    __slots__ = (
        "_granted",
        "_loop",
        "_putters",
        "_tid",
        "_waiter",
        "_wake_pending",
        "capacity",
        "closed",
        "dead_letter",
        "dropped",
        "path",
        "policy",
        "queue",
        "system",
    )

    def __init__(self, path: str, capacity: int, policy: str, dead_letter: DeadLetterSink) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f"{path}: mailbox_capacity must be an int >= 1, not {capacity!r}")
        if policy not in (BLOCK, DROP_NEW, DROP_OLD, FAIL):
            raise ValueError(
                f"{path}: mailbox_overflow must be block, drop_new, drop_old or fail, "
                f"not {policy!r}"
            )
        self.path = path
        self.capacity = capacity
        self.policy = _POLICIES[policy]  # the interned constant: compared with `is`
        self.dead_letter = dead_letter
        self.queue: deque[Item] = deque()
        self.system: deque[Any] | None = None  # created on first use: most stay empty
        self.closed = False
        self.dropped = 0
        self._granted = 0
        self._putters: deque[asyncio.Future[None]] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tid = 0

    def bind(self, loop: asyncio.AbstractEventLoop, thread_id: int) -> None:
        """Attach the mailbox to the loop (and its thread) that consumes it."""
        self._loop = loop
        self._tid = thread_id

    @property
    def depth(self) -> int:
        return len(self.queue)

    @property
    def blocked(self) -> int:
        """How many senders wait for space ("block" policy)."""
        return len(self._putters or ())

    # -- producers -------------------------------------------------------

    def put_nowait(self, item: Item) -> bool:
        """Enqueue now or apply the overflow policy; safe from any thread.

        Returns False when the item was dropped or dead-lettered. Raises
        `MailboxFull` under "block" and "fail" when full.
        """
        if threading.get_ident() != self._tid:
            with _LOCKS[id(self) >> 4 & 63]:
                return self._put_local(item, foreign=True)
        return self._put_local(item, foreign=False)

    def _put_local(self, item: Item, foreign: bool) -> bool:
        q = self.queue
        if self.closed:
            self._reject(item, "stopped")
            return False
        if len(q) + self._granted < self.capacity:
            q.append(item)
        elif self.policy is DROP_OLD:
            old = q.popleft()
            q.append(item)
            self._drop(old)
        elif self.policy is DROP_NEW:
            self._drop(item)
            return False
        else:
            raise MailboxFull(f"mailbox of {self.path} is full ({self.capacity})")
        if self._waiter is not None:
            if foreign:
                self._wake_threadsafe()
            else:
                self._wake()
        return True

    async def put(self, item: Item, clock: Clock, timeout: float | None = None) -> bool:
        """Enqueue, waiting for space under "block" (FIFO among waiters).

        Raises `AskTimeout` if `timeout` passes first, `ActorStopped` if the
        mailbox closes while waiting, `MailboxFull` under "fail".
        """
        if threading.get_ident() != self._tid:
            return await self._put_from_foreign_thread(item, clock, timeout)
        if (
            self.policy is not BLOCK
            or self.closed
            or (len(self.queue) + self._granted < self.capacity and not self._putters)
        ):
            return self._put_local(item, foreign=False)
        loop = self._loop
        assert loop is not None
        grant: asyncio.Future[None] = loop.create_future()
        if self._putters is None:
            self._putters = deque()
        self._putters.append(grant)
        timer = None
        if timeout is not None:
            timer = clock.call_later(timeout, _expire_grant, grant, self.path, timeout)
        try:
            await grant
        except ActorStopped:
            self._reject(item, "stopped")  # closed while waiting: a dead letter, not an error
            return False
        except BaseException:
            if grant.done() and not grant.cancelled() and grant.exception() is None:
                self._granted -= 1  # we were granted space but won't use it
                self._grant()
            else:
                try:
                    self._putters.remove(grant)  # type: ignore[union-attr]
                except (ValueError, AttributeError):
                    pass
            raise
        finally:
            if timer is not None:
                timer.cancel()
        self._granted -= 1
        return self._put_local(item, foreign=False)

    def try_put_foreign(self, item: Item) -> bool:
        """From another thread: enqueue (or apply the policy) unless it must wait.

        False means "block" policy and no space: the caller has to `put()`.
        """
        with _LOCKS[id(self) >> 4 & 63]:
            if (
                self.policy is not BLOCK
                or self.closed
                or (len(self.queue) + self._granted < self.capacity)
            ):
                self._put_local(item, foreign=True)
                return True
        return False

    async def _put_from_foreign_thread(
        self, item: Item, clock: Clock, timeout: float | None
    ) -> bool:
        if self.try_put_foreign(item):
            return True
        loop = self._loop
        assert loop is not None
        try:
            cf = asyncio.run_coroutine_threadsafe(self.put(item, clock, timeout), loop)
        except RuntimeError:
            self._reject(item, "stopped")
            return False
        return await asyncio.wrap_future(cf)

    def put_system(self, signal: Any) -> None:
        """Append to the system lane: never bounded, never blocked."""
        if self.system is None:
            self.system = deque()
        self.system.append(signal)
        if self._waiter is not None:
            if threading.get_ident() != self._tid:
                self._wake_threadsafe()
            else:
                self._wake()

    # -- consumer --------------------------------------------------------

    async def wait(self) -> None:
        """Park the consumer until something arrives (consumer's loop only)."""
        loop = self._loop
        assert loop is not None
        waiter = loop.create_future()
        self._waiter = waiter
        # Re-check after publishing the waiter: a foreign thread may have
        # appended between our emptiness check and now (lost wake-up guard).
        if self.queue or self.system:
            self._waiter = None
            return
        try:
            await waiter
        finally:
            self._waiter = None

    def grant(self) -> None:
        """Give freed space to blocked senders; the consumer calls it after a pop."""
        if self._putters:
            self._grant()

    def _grant(self) -> None:
        putters = self._putters
        assert putters is not None
        while putters and len(self.queue) + self._granted < self.capacity:
            fut = putters.popleft()
            if not fut.done():
                self._granted += 1
                fut.set_result(None)

    def _wake(self) -> None:
        self._wake_pending = False
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _wake_threadsafe(self) -> None:
        if not self._wake_pending and self._loop is not None:
            self._wake_pending = True
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:
                self._wake_pending = False  # loop closed: nobody to wake

    # -- ending ----------------------------------------------------------

    def close(self) -> None:
        """Refuse new messages: tells become dead letters, asks get ActorStopped."""
        if self.closed:
            return  # a stop closes early and finalize closes again: once is enough
        self.closed = True
        putters, self._putters = self._putters or (), None
        for fut in putters:
            if not fut.done():
                fut.set_exception(ActorStopped(f"{self.path} stopped"))
        self.wake_consumer()

    def reopen(self) -> None:
        """Accept messages again (a stopped supervised slot that is restarted)."""
        self.closed = False

    def reject_all(self, reason: str = "stopped") -> int:
        """Fail every queued ask with ActorStopped, dead-letter every tell."""
        n = 0
        q = self.queue
        while q:
            self._reject(q.popleft(), reason)
            n += 1
        return n

    def wake_consumer(self) -> None:
        if self._waiter is not None:
            if threading.get_ident() != self._tid:
                self._wake_threadsafe()
            else:
                self._wake()

    def _reject(self, item: Item, reason: str) -> None:
        msg, reply = item
        if reply is not None:
            settle(reply, exc=ActorStopped(f"{self.path} is stopped"))
        else:
            self.dead_letter(msg, reason)

    def _drop(self, item: Item) -> None:
        self.dropped += 1
        msg, reply = item
        if reply is not None:
            settle(reply, exc=MailboxFull(f"mailbox of {self.path} is full; message dropped"))
        else:
            self.dead_letter(msg, "mailbox_full")


def _expire_grant(grant: asyncio.Future[None], path: str, timeout: float) -> None:
    if not grant.done():
        grant.set_exception(AskTimeout(f"no mailbox space at {path} within {timeout}s"))
