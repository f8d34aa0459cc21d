"""Bounded mailboxes with overflow policies and a system lane.

A mailbox belongs to a slot (the logical actor), not to an instance, so it
outlives restarts. Items are `(message, reply)` pairs; `reply` is the asker's
future or None for a tell.

Hot path: a put appends to a deque and wakes the consumer only when it is
parked (one wake-up per burst). The consumer drains many items per wake-up.
Puts from a thread other than the owner loop's take no lock either (a deque
append is atomic) and wake the owner loop with one `call_soon_threadsafe`
per burst. The price: the capacity check and the append are two steps, so
producers on *other* threads can overshoot the capacity by at most one
message each; producers on the owner loop never do.

Blocked senders ("block" policy) queue FIFO as `_Handoff`s: as space frees,
the consumer appends their items for them, oldest first, and wakes each
sender's loop. While any sender is blocked, `offer` refuses, so a newcomer
under "block" queues behind them (under "drop_old" a newcomer evicts the
oldest queued message instead, which is that policy's point). A sender that
timed out or was cancelled before its turn enqueues nothing. A sender on
another thread is woken while the consumer is still draining rather than
after it.

The whole protocol lives here, behind these methods:

- producers: `offer` (the fast path: enqueue if there is room and nobody
  waits), `put_nowait` (apply the policy now), `put` (wait for space), and
  `put_system` (the unbounded system lane);
- the consumer, on the owner loop only: `take` (pop the oldest item, which
  must exist, and admit blocked senders; while none waits the hot paths pop
  the deque directly), `next_signal`, `wait` (go idle: a `Consumer` is called when
  something arrives; what an actor's dispatcher uses) or `park` (a future
  to await: what a supervisor's task uses);
- ending: `close`, `finish`, `reopen`, `drop_queued`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections import deque
from collections.abc import Callable
from threading import get_ident
from typing import Any, Protocol

from ..errors import ActorStopped, AskTimeout, MailboxFull
from .clock import Clock
from .replies import ThreadFuture, settle

Item = tuple[Any, "asyncio.Future[Any] | None"]

BLOCK, DROP_NEW, DROP_OLD, FAIL = "block", "drop_new", "drop_old", "fail"


class Signal:
    """A system-lane signal, compared by identity (one shared constant each)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<signal {self.name}>"


STOP_DRAIN = Signal("stop_drain")  # final stop: handle what is queued, then end (mailbox closed)
STOP_NOW = Signal("stop_now")  # end after the current message; the mailbox is kept (restart-stop)
STOP_SELF = Signal("stop_self")  # context.stop(): end after the current message, reason normal


class DeadLetterSink(Protocol):
    """Where a mailbox's refused tells go (the actor system; one shared by all
    mailboxes, so a mailbox holds no callback of its own)."""

    def dead_letter(self, path: str, message: Any, reason: str) -> None:
        """`message`, a tell to the actor at `path`, was dropped or refused."""


class Consumer(Protocol):
    """Who reads a mailbox while it is idle: told once when something arrives."""

    def wake(self) -> None:
        """On the owner loop, from a task or a callback: something arrived."""

    def wake_now(self) -> None:
        """On the owner loop, from a plain callback (no task running): something
        arrived, and the consumer may serve it right here, in this loop pass."""


class _Parked:
    """A consumer that is a future to await (`Mailbox.park`)."""

    __slots__ = ("fut",)

    def __init__(self, fut: asyncio.Future[None]) -> None:
        self.fut = fut

    def wake(self) -> None:
        if not self.fut.done():
            self.fut.set_result(None)

    wake_now = wake


_POLICIES = {p: p for p in (BLOCK, DROP_NEW, DROP_OLD, FAIL)}
_NEW_DEQUE = threading.Lock()  # guards only the lazy creation of a system lane or putter queue


class Mailbox:
    """A bounded FIFO of user messages plus an unbounded system lane."""

    __slots__ = (
        "_loop",
        "_putters",
        "_tid",
        "_waiter",
        "_wake_pending",
        "capacity",
        "closed",
        "dropped",
        "path",
        "policy",
        "queue",
        "sink",
        "swept",
        "system",
    )

    def __init__(self, path: str, capacity: int, policy: str, sink: DeadLetterSink) -> None:
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
        self.sink = sink  # its dead_letter(path, message, reason) gets refused tells
        self.queue: deque[Item] = deque()
        self.system: deque[Any] | None = None  # created on first use: most stay empty
        self.closed = False
        self.swept = False  # finished for good: whatever is appended now gets rejected
        self.dropped = 0
        self._putters: deque[_Handoff] | None = None
        self._waiter: Consumer | None = None  # the idle consumer, told when something arrives
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

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop that consumes this mailbox (None until bound)."""
        return self._loop

    def on_owner_thread(self) -> bool:
        """True when called from the thread that runs the consumer's loop."""
        return threading.get_ident() == self._tid

    def must_wait(self) -> bool:
        """True if a `put` now would wait: "block" policy, open, and no room for a newcomer."""
        return (
            self.policy is BLOCK
            and not self.closed
            and (len(self.queue) >= self.capacity or bool(self._putters))
        )

    # -- producers -------------------------------------------------------

    def offer(self, item: Item) -> bool:
        """The fast path, from any thread: enqueue if open, not full and nobody waits.

        False means nothing was done: the caller applies the policy with
        `put_nowait` or waits with `put`.
        """
        q = self.queue
        if self.closed or len(q) >= self.capacity or self._putters:
            return False
        if get_ident() == self._tid:
            q.append(item)
            waiter = self._waiter
            if waiter is not None:  # `self._wake()`, inlined: an ask's hot path
                self._wake_pending = False
                self._waiter = None
                waiter.wake()
        else:
            self._append_foreign(item)  # another thread's actor: no lock, no hop
        return True

    def offer_quietly(self, item: Item) -> bool:
        """`offer` on the owner loop without waking the consumer: the caller
        wakes it once, after a batch, with `wake_now`."""
        q = self.queue
        if self.closed or len(q) >= self.capacity or self._putters:
            return False
        q.append(item)
        return True

    def wake_now(self) -> None:
        """From a plain loop callback on the owner loop: wake an idle consumer
        and let it serve at once, in this loop pass (if no task is running)."""
        if self._waiter is not None:
            self._wake_from_callback()

    def put_nowait(self, item: Item) -> bool:
        """Enqueue now or apply the overflow policy; safe from any thread.

        Returns False when the item was dropped or dead-lettered. Raises
        `MailboxFull` under "block" and "fail" when full, or while senders wait.
        """
        if self.offer(item):
            return True
        if self.closed:
            self._reject(item, "stopped")
            return False
        policy = self.policy
        if policy is DROP_OLD:
            self._evict_for(item)
            return True
        if policy is DROP_NEW:
            self._drop(item)
            return False
        raise MailboxFull(f"mailbox of {self.path} is full ({self.capacity})")

    def _evict_for(self, item: Item) -> None:
        """ "drop_old": the oldest queued message makes room for `item`."""
        try:
            old: Item | None = self.queue.popleft()
        except IndexError:  # the consumer emptied it meanwhile
            old = None
        if threading.get_ident() == self._tid:
            self.queue.append(item)
            if self._waiter is not None:
                self._wake()
        else:
            self._append_foreign(item)
        if old is not None:
            self._drop(old)

    def _appended(self) -> None:
        """After `tell`'s append found a consumer to wake or the mailbox swept."""
        if get_ident() == self._tid:
            waiter = self._waiter
            if waiter is not None:
                # `self._wake()`, inlined: a ring hop's or an async ask's hot path
                self._wake_pending = False
                self._waiter = None
                waiter.wake()
            return  # swept: `finish` sweeps again on this loop
        if self.swept:
            self.reject_all()  # finished while we appended: nobody will read it
        elif self._waiter is not None and not self._wake_pending:
            self._wake_threadsafe()

    def _append_foreign(self, item: Item) -> None:
        self.queue.append(item)
        if self.swept:
            self.reject_all()  # finished while we appended: nobody will read it
        elif self._waiter is not None and not self._wake_pending:
            self._wake_threadsafe()

    async def put(self, item: Item, clock: Clock, timeout: float | None = None) -> bool:
        """Enqueue, waiting for space under "block" (FIFO among waiters).

        A waiting sender queues a `_Handoff`; as space frees, the consumer
        appends the waiting items in order. Raises `AskTimeout` if `timeout`
        passes first and `MailboxFull` under "fail". Returns False when the item
        was dropped or rejected (mailbox closed before or while waiting).
        """
        if self.offer(item):
            return True
        if self.policy is not BLOCK or self.closed:
            return self.put_nowait(item)
        handoff = _Handoff(item, asyncio.get_running_loop().create_future())
        putters = self._putter_queue()
        putters.append(handoff)
        if not self._check_in(putters, handoff):
            self._reject(item, "stopped")
            return False
        timer = None
        if timeout is not None:
            timer = clock.call_later(timeout, _expire_grant, handoff.done, self.path, timeout)
        try:
            return await handoff.done
        except BaseException:
            _take_back(putters, handoff)  # if it was dequeued, its taker handled the item
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def put_blocking(self, item: Item, timeout: float | None) -> bool:
        """`put` from a plain thread with no event loop, blocking it while it waits.

        The same protocol as `put` (a `_Handoff` whose `done` the thread blocks
        on), and the same outcomes. When this returns, the item is in the
        mailbox or refused, so whatever the thread sends next comes after it.
        """
        if self.offer(item):
            return True
        if self.policy is not BLOCK or self.closed:
            return self.put_nowait(item)
        done = ThreadFuture()
        handoff = _Handoff(item, done)  # type: ignore[arg-type] # it quacks like a future
        putters = self._putter_queue()
        putters.append(handoff)
        if not self._check_in(putters, handoff):
            self._reject(item, "stopped")
            return False
        try:
            return bool(done.result(timeout))
        except concurrent.futures.TimeoutError:
            if _take_back(putters, handoff):
                raise AskTimeout(f"no mailbox space at {self.path} within {timeout}s") from None
        # The consumer (or `close`) dequeued it just now; it settles `done` in
        # the same synchronous step, so this wait ends at once.
        return bool(done.result())

    def _check_in(self, putters: deque[_Handoff], handoff: _Handoff) -> bool:
        """After a sender queued `handoff`: False if it must give up at once."""
        if self.closed:  # close() may have drained the putters before our append
            return not _take_back(putters, handoff)
        if len(self.queue) < self.capacity:
            # Space freed after our check (or nobody was ahead of us): the
            # consumer may be parked and never grant, so grant now.
            if threading.get_ident() == self._tid:
                self._grant()
            elif self._loop is not None:
                try:
                    self._loop.call_soon_threadsafe(self._grant_if_open)
                except RuntimeError:  # the owner loop is closed: nobody will ever grant
                    return not _take_back(putters, handoff)
        return True

    def _putter_queue(self) -> deque[_Handoff]:
        putters = self._putters
        if putters is None:
            with _NEW_DEQUE:  # two threads must not each create one
                putters = self._putters
                if putters is None:
                    putters = self._putters = deque()
        return putters

    def put_system(self, signal: Any) -> None:
        """Append to the system lane: never bounded, never blocked."""
        lane = self.system
        if lane is None:
            with _NEW_DEQUE:  # a stop from the system loop may race the actor's own
                lane = self.system
                if lane is None:
                    lane = self.system = deque()
        lane.append(signal)
        self.wake_consumer()

    # -- consumer (owner loop only) ----------------------------------------

    def take(self) -> Item:
        """Pop the oldest item (the queue must not be empty), then give the
        freed room to the oldest sender waiting for it, if any.

        The hot paths inline it: `queue.popleft()` while `_putters` is empty.
        """
        item = self.queue.popleft()
        if self._putters:
            self._grant()
        return item

    def next_signal(self) -> Any:
        """Pop the oldest system-lane signal, or None."""
        lane = self.system
        return lane.popleft() if lane else None

    def remove_signals(self, match: Callable[[Any], bool]) -> list[Any]:
        """Take the system-lane signals that `match` out of the lane, in order."""
        lane = self.system
        found = [signal for signal in lane or () if match(signal)]
        for signal in found:
            lane.remove(signal)  # type: ignore[union-attr]
        return found

    def wait(self, consumer: Consumer) -> bool:
        """Go idle: `consumer` is told (once) when a message or a signal arrives.

        False if one is already there (nothing stays registered): serve it.
        Called by the running consumer only, so no wake-up is pending for it.
        """
        if self._putters:
            self._grant()  # a sender blocked while we took with a pop that did not grant
        self._waiter = consumer
        # Re-check after publishing the consumer: a foreign thread may have
        # appended between the consumer's emptiness check and now (lost wake-up
        # guard). One that saw the consumer schedules a wake-up that then finds
        # none (or a later idle one: a spurious wake-up, which consumers allow).
        if self.queue or self.system:
            self._waiter = None
            return False
        return True

    def unwait(self, consumer: Consumer) -> None:
        """`consumer` no longer waits (its incarnation was killed while idle)."""
        if self._waiter is consumer:
            self._waiter = None

    def park(self) -> asyncio.Future[None] | None:
        """A future for a consumer *task* to await until a message or a signal
        arrives, or None if one is already there."""
        loop = self._loop
        assert loop is not None
        waiter = loop.create_future()
        return waiter if self.wait(_Parked(waiter)) else None

    def _grant(self) -> None:
        putters = self._putters
        assert putters is not None
        q = self.queue
        handed = False
        while putters and len(q) < self.capacity:
            try:
                putter = putters.popleft()
            except IndexError:  # a sender on another thread took itself back
                break
            if putter.done.done():
                continue  # it timed out or was cancelled: it enqueues nothing
            q.append(putter.item)
            settle(putter.done, True)
            handed = True
        if handed and self._waiter is not None:
            self._wake()

    def _grant_if_open(self) -> None:
        if self._putters and not self.closed:
            self._grant()

    def _wake(self) -> None:
        self._wake_pending = False
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter.wake()

    def _wake_from_callback(self) -> None:
        waiter = self._take_waiter()
        if waiter is not None:
            waiter.wake_now()  # the consumer may serve right now, in this loop pass

    def _take_waiter(self) -> Consumer | None:
        """Clear the pending wake-up; the idle consumer, if one waits."""
        self._wake_pending = False
        waiter, self._waiter = self._waiter, None
        return waiter

    def _wake_threadsafe(self) -> None:
        if not self._wake_pending and self._loop is not None:
            self._wake_pending = True
            try:
                self._loop.call_soon_threadsafe(self._wake_from_callback)
            except RuntimeError:
                self._wake_pending = False  # loop closed: nobody to wake

    # -- ending ----------------------------------------------------------

    def close(self, wake: bool = True) -> None:
        """Refuse new messages: tells become dead letters, asks get ActorStopped.
        `wake=False`: the caller signals or ends the consumer itself right after."""
        if self.closed:
            return  # a stop closes early and finalize closes again: once is enough
        self.closed = True
        putters = self._putters
        while putters:  # popleft, not a for loop: other threads may append meanwhile
            try:
                putter = putters.popleft()
            except IndexError:
                break
            self._reject(putter.item, "stopped")
            settle(putter.done, False)
        if wake:
            self.wake_consumer()

    def finish(self) -> None:
        """Closed for good: fail what is queued now and what racing producers add later."""
        self.close()
        self.swept = True
        self.reject_all()
        if self._loop is not None and threading.get_ident() != self._tid:
            # A put on the owner thread that saw `closed` still False may append
            # after our sweep; the owner loop sweeps once more after it.
            try:
                self._loop.call_soon_threadsafe(self._sweep_again)
            except RuntimeError:
                pass  # the owner loop is closed: no put can come from it

    def _sweep_again(self) -> None:
        if self.swept:
            self.reject_all()

    def reopen(self) -> None:
        """Accept messages again (a stopped supervised slot that is restarted)."""
        self.closed = False
        self.swept = False

    def drop_queued(self, reason: str) -> int:
        """Fail or dead-letter every queued message (a restart that drops the
        mailbox), then admit blocked senders into the freed space, in order."""
        n = self.reject_all(reason)
        if self._putters and not self.closed:
            self._grant()
        return n

    def reject_all(self, reason: str = "stopped") -> int:
        """Fail every queued ask with ActorStopped, dead-letter every tell."""
        n = 0
        q = self.queue
        while q:
            self._reject(q.popleft(), reason)
            n += 1
        return n

    def wake_consumer(self) -> None:
        """Wake the parked consumer, from any thread."""
        if self._waiter is not None:
            if threading.get_ident() != self._tid:
                self._wake_threadsafe()
            else:
                self._wake()

    def _reject(self, item: Item, reason: str) -> None:
        msg, reply = item
        if reply is not None:
            settle(
                reply,
                exc=ActorStopped(
                    f"{self.path} is stopped"
                    if reason == "stopped"
                    else f"{self.path} dropped its queued messages ({reason})"
                ),
            )
        else:
            self.sink.dead_letter(self.path, msg, reason)

    def _drop(self, item: Item) -> None:
        self.dropped += 1
        msg, reply = item
        if reply is not None:
            settle(reply, exc=MailboxFull(f"mailbox of {self.path} is full; message dropped"))
        else:
            self.sink.dead_letter(self.path, msg, "mailbox_full")


class _Handoff:
    """A sender waiting for space. Whoever dequeues it (the consumer granting
    space, or `close`) takes over its item; `done` then tells the sender True
    (enqueued) or False (rejected). Equality is identity, so `deque.remove`
    runs no Python code and is atomic against other threads."""

    __slots__ = ("done", "item")

    def __init__(self, item: Item, done: asyncio.Future[bool]) -> None:
        self.item = item
        self.done = done


def _take_back(putters: deque[Any], handoff: _Handoff) -> bool:
    """Remove our own handoff; False if the consumer or `close` dequeued it first."""
    try:
        putters.remove(handoff)
    except ValueError:
        return False
    return True


def _expire_grant(done: asyncio.Future[bool], path: str, timeout: float) -> None:
    if not done.done():
        done.set_exception(AskTimeout(f"no mailbox space at {path} within {timeout}s"))


async def tell(ref: Any, message: Any) -> None:
    """`LocalActorRef.tell`: the hot path of the library, kept in this module.

    It is the ref's method (`ref.mailbox` is its mailbox) but defined here, so
    the fast path (open, room, nobody waiting: append and wake) is one
    function with no further call, and every put still lives in this module.
    """
    mb = ref.mailbox
    q = mb.queue
    if not mb.closed and len(q) < mb.capacity and not mb._putters:  # noqa: SLF001 (ours)
        # An append is safe from any thread; the thread matters only when there
        # is a consumer to wake or the mailbox was finished meanwhile, which a
        # flood (the consumer busy) never finds: no get_ident() per message then.
        q.append((message, None))
        if mb._waiter is not None or mb.swept:  # noqa: SLF001 (this module's own Mailbox)
            mb._appended()  # noqa: SLF001
        return
    await ref.tell_slowly(message)
