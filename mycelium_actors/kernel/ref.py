"""`ActorRef`: what callers hold; `LocalActorRef`, its in-process kind; the proxy.

`ActorRef` is the type users hold and annotate with: the calls of API.md
section 3 plus the hooks the kernel needs (`add_watcher`). Each transport
brings its own subclass; in one process a ref names a logical actor (its
slot), so after a restart the same ref reaches the new instance, because the
slot and its mailbox outlive incarnations.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import time
from abc import ABC, abstractmethod
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

from ..errors import ActorStopped, AskTimeout, MailboxFull, MyceliumError
from .mailbox import tell as mailbox_tell
from .messages import ProxyCall
from .replies import ThreadFuture

if TYPE_CHECKING:
    from .actor import Actor
    from .slot import Slot

A = TypeVar("A", bound="Actor")

_get_running_loop = asyncio.get_running_loop
_INF = math.inf

#: Which actor's handler (slot, invocation) the running task descends from:
#: set by the serving loop for async handlers and hooks, inherited by the
#: tasks they create. An ask to that same actor while that same invocation
#: still runs would wait for itself.
serving: ContextVar[tuple[Any, Any] | None] = ContextVar("mycelium_serving", default=None)


class Watcher(Protocol):
    """Something that can be told `Terminated` (a watching actor's slot)."""

    def deliver(self, message: Any) -> None: ...


def check_timeout(timeout: float | None) -> float | None:
    """A positive finite number of seconds, or None; else ValueError/TypeError."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, not {timeout!r}")
    if not 0.0 < timeout < _INF:  # also refuses nan
        raise ValueError(f"timeout must be a positive finite number of seconds, not {timeout!r}")
    return timeout


class ActorRef(ABC, Generic[A]):
    """A handle on an actor, local or remote; built by the system, never by users.

    Refs are equal when they name the same actor; a ref stays valid across
    restarts of its actor.
    """

    __slots__ = ("__weakref__", "name", "path")

    path: str
    name: str

    @property
    @abstractmethod
    def is_alive(self) -> bool:
        """True while the actor is starting, running or restarting (or reachable)."""

    @property
    def address(self) -> str | None:
        """The full URL of the actor, or None while its system does not listen."""
        return None

    @abstractmethod
    async def tell(self, message: Any) -> None:
        """Enqueue `message`; under "block" wait (FIFO) while the mailbox is full."""

    @abstractmethod
    def tell_nowait(self, message: Any) -> None:
        """Enqueue now or apply the overflow policy; safe to call from any thread."""

    @abstractmethod
    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        """Send `message` and return the handler's reply."""

    @abstractmethod
    def ask_blocking(self, message: Any, timeout: float | None = 5.0) -> Any:
        """`ask` from a plain thread that runs no event loop (pykka's `ask().get()`)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop the actor for good, gracefully."""

    @abstractmethod
    def add_watcher(self, watcher: Watcher) -> None:
        """Deliver `Terminated(self)` to `watcher` once, when the actor stops for good."""

    def proxy(self, timeout: float | None = 5.0) -> Any:
        """A proxy whose method calls run inside the actor (local refs only)."""
        raise MyceliumError(f"{self.path}: proxies work on local refs only")


class LocalActorRef(ActorRef[A]):
    """A ref to an actor of this process: its slot's mailbox, directly."""

    __slots__ = ("_clock", "_slot", "mailbox")

    def __init__(self, slot: Slot) -> None:
        self._slot = slot
        self.mailbox = slot.mailbox
        self._clock = slot.system.clock
        self.path = slot.path
        self.name = slot.name

    def __repr__(self) -> str:
        return f"<ActorRef {self.path} {self._slot.status}>"

    @property
    def is_alive(self) -> bool:
        """True while the actor is starting, running or restarting."""
        return self._slot.status != "stopped"

    @property
    def actor_class(self) -> type[A]:
        return self._slot.actor_class  # type: ignore[return-value]

    @property
    def address(self) -> str | None:
        """The full URL of the actor while its system listens, else None."""
        node = self._slot.system.address
        return None if node is None else node + self.path

    def owns_current_task(self) -> bool:
        """True if the caller runs inside this actor's current handler (or a task it made)."""
        current = serving.get()
        if current is None:
            return False
        slot, invocation = current
        return slot is self._slot and invocation is not None and invocation is slot.handling

    #: Enqueue `message`; under "block" wait (FIFO) while the mailbox is full.
    #: Under "drop_new"/"drop_old" a dropped message becomes a dead letter; under
    #: "fail" raises `MailboxFull`; a tell to a stopped actor is a dead letter. An
    #: actor waiting for room in its own mailbox would wait for itself: that
    #: raises `MyceliumError` at once. (Defined in `mailbox.py`: the hot path.)
    tell = mailbox_tell

    async def tell_slowly(self, message: Any) -> None:
        """`tell` when the mailbox is full, closed, or has senders waiting."""
        item = (message, None)
        mb = self.mailbox
        if mb.must_wait() and self.owns_current_task():
            raise MyceliumError(
                f"{self.path} told itself with its own mailbox full; waiting for room "
                "would deadlock (use tell_nowait or a larger mailbox)"
            )
        await mb.put(item, self._clock)

    def tell_nowait(self, message: Any) -> None:
        """Enqueue now or apply the overflow policy; safe to call from any thread.

        Raises `MailboxFull` under "block" and "fail" when the mailbox is full.
        """
        self.mailbox.put_nowait((message, None))

    def offer(self, message: Any, reply: asyncio.Future[Any] | None = None) -> bool:
        """For transports: enqueue `(message, reply)` if there is room and nobody
        waits for room; False changes nothing. `reply` gets the handler's outcome
        (a future, or an object with the same `get_loop`, `done`, `set_result`,
        `set_exception`)."""
        return self.mailbox.offer((message, reply))

    def offer_quietly(self, message: Any, reply: asyncio.Future[Any] | None = None) -> bool:
        """`offer` from the actor's own loop without waking it; `wake_now()` after a batch."""
        return self.mailbox.offer_quietly((message, reply))

    def wake_now(self) -> None:
        """From a plain loop callback on the actor's loop: let it serve in this pass."""
        self.mailbox.wake_now()

    def on_own_loop(self) -> bool:
        """True when the caller runs on the thread of the actor's loop."""
        return self.mailbox.on_owner_thread()

    async def put(self, message: Any, reply: asyncio.Future[Any] | None = None) -> bool:
        """For transports: enqueue, waiting for room under "block" (FIFO); other
        policies apply at once (a refusal fails `reply` or dead-letters a tell).
        False when the message was dropped or rejected."""
        item = (message, reply)
        try:
            return await self.mailbox.put(item, self._clock)
        except MailboxFull as exc:  # "fail": refused outright
            if reply is None:
                self._slot.system.dead_letter(self.path, message, "mailbox_full")
            elif not reply.done():  # a fresh error: the refusal, not where it was raised
                reply.set_exception(MailboxFull(*exc.args))
            return False

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        """Send `message` and return the handler's reply.

        Raises the handler's exception; `AskTimeout` after `timeout` seconds
        (which also bounds a wait for mailbox space); `MailboxFull` if the
        message was refused or dropped; `ActorStopped` if the actor is stopped
        or stops for good before replying; `UnhandledMessage` if nothing
        handles it. An actor asking itself from the handler that would wait
        for the answer gets `MyceliumError` at once, and so does an ask that
        closes a cycle of handlers waiting for each other (named in it).
        """
        if timeout is not None and (type(timeout) is not float or not 0.0 < timeout < _INF):
            check_timeout(timeout)
        self._slot.system.counters.asks += 1
        current = serving.get()
        if current is not None:
            return await self._ask_from_actor(current, message, timeout)
        # `return await self._ask(message, timeout)`, inlined: the hot path of
        # an ask from outside any handler saves a coroutine per ask.
        fut = _get_running_loop().create_future()
        item = (message, fut)
        mb = self.mailbox
        deadline = (
            self._clock.expire(fut, timeout, "ask to ", self.path) if timeout is not None else None
        )
        try:
            if not mb.offer(item):
                deadline = await self._ask_slow(item, timeout, deadline)
            return await fut
        except AskTimeout:
            if deadline is not None and deadline.fut is None:  # ours fired (not the handler's)
                self._slot.system.counters.ask_timeouts += 1
            raise
        finally:
            if deadline is not None:
                deadline.cancel()  # the reply is not kept alive until the deadline

    async def _ask(self, message: Any, timeout: float | None) -> Any:
        """The ask itself (`ask` inlines it): enqueue, then await the reply or
        the deadline."""
        fut = _get_running_loop().create_future()
        item = (message, fut)
        mb = self.mailbox
        clock = self._clock
        # Arm the deadline before the message goes in: a consumer on another
        # thread that wakes at once need not wait for this thread's GIL turn.
        deadline = clock.expire(fut, timeout, "ask to ", self.path) if timeout is not None else None
        try:
            if not mb.offer(item):
                deadline = await self._ask_slow(item, timeout, deadline)
            return await fut
        except AskTimeout:
            if deadline is not None and deadline.fut is None:  # ours fired (not the handler's)
                self._slot.system.counters.ask_timeouts += 1
            raise
        finally:
            if deadline is not None:
                deadline.cancel()  # the reply is not kept alive until the deadline

    async def _ask_slow(self, item: Any, timeout: float | None, deadline: Any) -> Any:
        """The mailbox is full, closed or has senders waiting: apply the policy or wait."""
        fut = item[1]
        if deadline is not None:
            deadline.cancel()  # the wait for space is bounded by `put`; re-armed after
        clock = self._clock
        started = clock.now()
        try:
            await self.mailbox.put(item, clock, timeout)  # waits for space, or rejects into fut
        except BaseException:
            # Gave up waiting (timeout, cancellation): if the item went in after
            # all, its reply finds `fut` done and is dropped, not left unread.
            fut.cancel()
            raise
        if timeout is None or fut.done():
            return None
        return clock.expire(fut, max(1e-9, timeout - (clock.now() - started)), "ask to ", self.path)

    async def _ask_from_actor(
        self, current: tuple[Any, Any], message: Any, timeout: float | None
    ) -> Any:
        """An ask made inside some actor's handler: refuse a self-deadlock and
        an ask that closes a cycle of waiting handlers, naming it."""
        asker, invocation = current
        slot = self._slot
        if invocation is not None and invocation is asker.handling:
            if asker is slot:
                raise MyceliumError(
                    f"{self.path} asked itself and waits for the answer; that would deadlock "
                    "(use tell, or pipe_to_self for work beside the mailbox)"
                )
            if slot.handling is not None and slot.asking:
                cycle = _cycle_from(slot, asker)
                if cycle is not None:
                    raise MyceliumError(
                        f"{asker.path} asked {self.path}, whose handler waits for {asker.path}: "
                        f"an ask cycle ({' -> '.join(cycle)}) would deadlock"
                    )
        waits = asker.asking
        if waits is None:
            waits = asker.asking = []
        entry = (invocation, slot)
        waits.append(entry)
        try:
            return await self._ask(message, timeout)
        except AskTimeout as exc:
            # A cycle closed by asks on two threads at once is seen by neither check.
            cycle = _cycle_from(slot, asker)
            if cycle is None:
                raise
            raise AskTimeout(f"{exc} (an ask cycle: {' -> '.join(cycle)})") from None
        finally:
            for i, waiting in enumerate(waits):
                if waiting is entry:  # by identity: comparing would compare messages
                    del waits[i]
                    break

    def ask_blocking(self, message: Any, timeout: float | None = 5.0) -> Any:
        """`ask` from a plain thread that runs no event loop (pykka's `ask().get()`).

        The message is enqueued from the calling thread before this waits, so
        a `tell_nowait` the same thread makes next comes after it, even if
        this ask times out. Raises `MyceliumError` when called on the loop
        that runs the actor.
        """
        check_timeout(timeout)
        counters = self._slot.system.counters
        counters.asks += 1
        loop = self.mailbox.loop
        try:
            running = _get_running_loop()
        except RuntimeError:
            running = None
        if running is not None and running is loop:
            raise MyceliumError(
                f"ask_blocking() on the loop that runs {self.path} would deadlock; "
                "use await ref.ask()"
            )
        if loop is None or loop.is_closed() or not loop.is_running():
            raise ActorStopped(f"{self.path}: its event loop is not running")
        reply = ThreadFuture()  # completed by whichever thread answers, directly
        item = (message, cast("asyncio.Future[Any]", reply))
        mb = self.mailbox
        left = timeout
        if not mb.offer(item):
            started = time.monotonic()
            mb.put_blocking(item, timeout)  # a refusal (stopped, dropped) fails `reply`
            if timeout is not None:
                left = max(0.0, timeout - (time.monotonic() - started))
        try:
            return reply.result(left)
        except concurrent.futures.TimeoutError:
            # A TimeoutError from the handler, or an answer just now: not ours to replace.
            if not reply.cancel():  # once cancelled, a late answer is dropped
                return reply.result()
            counters.ask_timeouts += 1
            raise AskTimeout(f"ask to {self.path} got no reply within {timeout}s") from None

    def proxy(self, timeout: float | None = 5.0) -> Any:
        """A proxy whose method calls run inside the actor: `await ref.proxy().m(x)`."""
        check_timeout(timeout)
        return ActorProxy(self, timeout)

    async def stop(self) -> None:
        """Stop for good, gracefully: messages already queued are handled first."""
        await self._slot.system.stop_slot(self._slot)

    def add_watcher(self, watcher: Watcher) -> None:
        """Deliver `Terminated(self)` to `watcher` once, when the actor stops for good."""
        self._slot.add_watcher(watcher)


def _cycle_from(target: Any, asker: Any) -> list[str] | None:
    """The paths of a cycle asker -> target -> ... -> asker of handlers that
    each await an ask of the next, if there is one (depth first)."""
    seen = {id(asker)}
    stack = [(target, [asker.path, target.path])]
    while stack:
        slot, chain = stack.pop()
        if id(slot) in seen:
            continue
        seen.add(id(slot))
        handling = slot.handling
        if handling is None or not slot.asking:
            continue
        for invocation, awaited in tuple(slot.asking):  # a copy: other threads may ask
            if invocation is not handling:
                continue  # asked by a handler that has returned (a task it left behind)
            if awaited is asker:
                return [*chain, asker.path]
            stack.append((awaited, [*chain, awaited.path]))
    return None


class ActorProxy(Generic[A]):
    """Calls methods of the actor's class by asking it (local refs only)."""

    __slots__ = ("_ref", "_timeout")

    def __init__(self, ref: LocalActorRef[A], timeout: float | None) -> None:
        self._ref = ref
        self._timeout = timeout

    def __getattr__(self, name: str) -> Any:
        cls = self._ref.actor_class
        attr = getattr(cls, name, None) if not name.startswith("_") else None
        if attr is None or not callable(attr) or isinstance(attr, type):
            raise AttributeError(
                f"{cls.__qualname__} has no public method {name!r} (proxies call methods only)"
            )
        ref, timeout = self._ref, self._timeout

        def call(*args: Any, **kwargs: Any) -> Any:
            return ref.ask(ProxyCall(name, args, kwargs), timeout=timeout)

        return call

    def __repr__(self) -> str:
        return f"<ActorProxy {self._ref.path}>"
