"""`system.events`: the lifecycle events of API.md 8, delivered to callbacks in code.

`unsubscribe = system.events.subscribe(callback)`: `callback(event)` runs on
the system's loop for each lifecycle event the system logs (`actor.started`,
`actor.stopped`, `actor.crashed`, `actor.restarted`, `supervisor.gave_up`,
`node.up`, `node.down`, ...), with the fields of the log event. Dead letters
are not delivered one by one (they are counted in `system.dead_letters`).

The system asks `active` before it builds an event, so with no subscriber an
event costs one attribute test; none of this is on the per-message path.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

Callback = Callable[[dict[str, Any]], object]


def exc_type_name(cls: type[BaseException]) -> str:
    """`ValueError` for a builtin, `app.bank.Overdrawn` for anything else."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def error_text(exc: BaseException) -> str:
    """`str(exc)` for a log line; an exception whose `str()` raises says so
    instead of breaking the path that logs it (a crash, a refusal)."""
    try:
        return str(exc)
    except Exception as failure:
        return f"<str() raised {type(failure).__name__}>"


class _Subscription:
    __slots__ = ("callback",)

    def __init__(self, callback: Callback) -> None:
        self.callback = callback


class Events:
    """The lifecycle events of one system, for code that wants them as dicts."""

    __slots__ = ("_failed", "_loop", "_subscriptions", "_thread_id")

    def __init__(self, failed: Callable[[Callback, BaseException], None]) -> None:
        self._subscriptions: tuple[_Subscription, ...] = ()  # replaced, never mutated
        self._failed = failed  # logs a callback that raised
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread_id = 0

    def __repr__(self) -> str:
        return f"<Events subscribers={len(self._subscriptions)}>"

    @property
    def active(self) -> bool:
        """True while someone is subscribed."""
        return bool(self._subscriptions)

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call `callback(event: dict)` for each lifecycle event; returns `unsubscribe()`.

        The callback runs on the system's loop, synchronously as the event
        happens (from another thread, at the loop's next turn): keep it short,
        and start a task for anything that awaits. A callback that raises is
        logged (`events.callback_failed`) and unsubscribed. `unsubscribe()`
        may be called more than once.
        """
        if not callable(callback):
            raise TypeError(f"subscribe() takes a callable, not {callback!r}")
        subscription = _Subscription(callback)
        self._subscriptions = (*self._subscriptions, subscription)

        def unsubscribe() -> None:
            self._drop(subscription)

        return unsubscribe

    def bind(self, loop: asyncio.AbstractEventLoop, thread_id: int) -> None:
        """The system started on `loop` (running in thread `thread_id`)."""
        self._loop = loop
        self._thread_id = thread_id

    def emit(self, event: dict[str, Any]) -> None:
        """Deliver `event` to every subscriber (on the system's loop)."""
        loop = self._loop
        if loop is None or threading.get_ident() == self._thread_id:
            self._deliver(event)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: dict[str, Any]) -> None:
        for subscription in self._subscriptions:
            try:
                subscription.callback(dict(event))  # a copy each: one cannot alter another's
            except Exception as exc:
                self._drop(subscription)
                self._failed(subscription.callback, exc)

    def _drop(self, subscription: _Subscription) -> None:
        self._subscriptions = tuple(s for s in self._subscriptions if s is not subscription)
