"""`ActorRef`: what callers hold, and the pykka-style proxy.

A ref names a logical actor (its slot): after a restart the same ref reaches
the new instance, because the slot and its mailbox outlive incarnations.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from threading import get_ident
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import ActorStopped, AskTimeout, MyceliumError
from .messages import ProxyCall

if TYPE_CHECKING:
    from .actor import Actor
    from .slot import Slot

A = TypeVar("A", bound="Actor")

_current_task = asyncio.current_task
_get_running_loop = asyncio.get_running_loop


class ActorRef(Generic[A]):
    """A handle on a local actor; built by the system, never by users."""

    __slots__ = ("__weakref__", "_clock", "_mailbox", "_slot", "_what", "name", "path")

    def __init__(self, slot: Slot) -> None:
        self._slot = slot
        self._mailbox = slot.mailbox
        self._clock = slot.system.clock
        self.path: str = slot.path
        self.name: str = slot.name
        self._what = f"ask to {slot.path}"

    def __repr__(self) -> str:
        return f"<ActorRef {self.path} {self._slot.status}>"

    @property
    def is_alive(self) -> bool:
        """True while the actor is starting, running or restarting."""
        return self._slot.status != "stopped"

    @property
    def actor_class(self) -> type[A]:
        return self._slot.actor_class  # type: ignore[return-value]

    async def tell(self, message: Any) -> None:
        """Enqueue `message`; under "block" wait (FIFO) while the mailbox is full.

        Under "drop_new"/"drop_old" a dropped message becomes a dead letter;
        under "fail" raises `MailboxFull`. A tell to a stopped actor is a dead letter.
        """
        mb = self._mailbox
        q = mb.queue
        if not mb.closed and len(q) < mb.capacity:
            if get_ident() == mb._tid:
                q.append((message, None))
                if mb._waiter is not None:
                    mb._wake()
                return
            if not mb._putters:
                mb._append_foreign((message, None))  # another thread's actor: no lock, no hop
                return
        if get_ident() != mb._tid and mb.try_put_foreign((message, None)):
            return
        await mb.put((message, None), self._clock)

    def tell_nowait(self, message: Any) -> None:
        """Enqueue now or apply the overflow policy; safe to call from any thread.

        Raises `MailboxFull` under "block" and "fail" when the mailbox is full.
        """
        self._mailbox.put_nowait((message, None))

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        """Send `message` and return the handler's reply.

        Raises the handler's exception; `AskTimeout` after `timeout` seconds
        (which also bounds a wait for mailbox space); `MailboxFull` if the
        message was refused or dropped; `ActorStopped` if the actor is stopped
        or stops for good before replying; `UnhandledMessage` if nothing
        handles it. An actor asking itself gets `MyceliumError` at once.
        """
        loop = _get_running_loop()
        task = self._slot.task
        if task is not None and task is _current_task(loop):
            raise MyceliumError(f"{self.path} asked itself; that would deadlock (use tell)")
        fut = loop.create_future()
        item = (message, fut)
        mb = self._mailbox
        if not mb.closed and len(mb.queue) < mb.capacity:
            # Arm the deadline before the message goes in: the wake-up is the
            # last thing done, so a consumer on another thread that wakes at
            # once does not have to wait for this thread to let go of the GIL.
            local = get_ident() == mb._tid
            if local or not mb._putters:
                deadline = None if timeout is None else self._clock.expire(fut, timeout, self._what)
                try:
                    if not local:
                        mb._append_foreign(item)  # another thread's actor: no lock, no hop
                    else:
                        mb.queue.append(item)
                        if mb._waiter is not None:
                            mb._wake()
                    return await fut
                finally:
                    if deadline is not None:  # let go of the future and its reply now
                        deadline.cancel()
        clock = self._clock
        started = clock.now()
        try:
            await mb.put(item, clock, timeout)  # waits for space, or rejects into `fut`
        except BaseException:
            # Gave up waiting (timeout, cancellation): if the item went in after
            # all, its reply finds `fut` done and is dropped, not left unread.
            fut.cancel()
            raise
        deadline = (
            None
            if timeout is None
            else clock.expire(fut, max(0.0, timeout - (clock.now() - started)), self._what)
        )
        try:
            return await fut
        finally:
            if deadline is not None:
                deadline.cancel()

    def ask_blocking(self, message: Any, timeout: float | None = 5.0) -> Any:
        """`ask` from a plain thread that runs no event loop (pykka's `ask().get()`)."""
        loop = self._mailbox._loop
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
        cf = asyncio.run_coroutine_threadsafe(self.ask(message, timeout), loop)
        try:
            return cf.result(None if timeout is None else timeout + 1.0)
        except concurrent.futures.TimeoutError:
            cf.cancel()
            raise AskTimeout(f"ask to {self.path} got no reply within {timeout}s") from None

    def proxy(self, timeout: float | None = 5.0) -> Any:
        """A proxy whose method calls run inside the actor: `await ref.proxy().m(x)`."""
        return ActorProxy(self, timeout)

    async def stop(self) -> None:
        """Stop for good, gracefully: messages already queued are handled first."""
        await self._slot.system._stop_from_outside(self._slot)


class ActorProxy(Generic[A]):
    """Calls methods of the actor's class by asking it (local refs only)."""

    __slots__ = ("_ref", "_timeout")

    def __init__(self, ref: ActorRef[A], timeout: float | None) -> None:
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
