"""How an incarnation ends (`Exit`), which exceptions count as crashes, and
waiting (bounded) for an incarnation to end."""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import MyceliumError
from .clock import Clock


class Exit:
    """Why an incarnation ended: normal, shutdown, crash, killed or gave_up."""

    __slots__ = ("escalate", "exc", "in_start", "kind")

    def __init__(
        self,
        kind: str,
        exc: BaseException | None = None,
        in_start: bool = False,
        escalate: bool = False,
    ):
        self.kind = kind
        self.exc = exc
        self.in_start = in_start
        self.escalate = escalate  # the owner should give up at once (a directive)

    @property
    def abnormal(self) -> bool:
        return self.kind in ("crash", "killed", "gave_up")

    def __repr__(self) -> str:
        return f"Exit({self.kind}{', ' + repr(self.exc) if self.exc else ''})"


NORMAL = Exit("normal")
SHUTDOWN = Exit("shutdown")
KILLED = Exit("killed")


def is_crash(exc: BaseException) -> bool:
    """Whether an exception escaping user code is a crash (supervision.md section 0).

    KeyboardInterrupt and SystemExit end the program. A CancelledError is a
    kill only when somebody cancelled the actor's task (the framework after a
    shutdown time, or an outside cancel); one raised by user code is a crash.
    """
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return False
    if isinstance(exc, asyncio.CancelledError):
        task = asyncio.current_task()
        return task is None or task.cancelling() == 0
    return True


def for_asker(exc: BaseException) -> BaseException:
    """What the asker of a crashed message receives: the exception itself, except
    what a future cannot carry, wrapped in a `MyceliumError` caused by it: a
    stray CancelledError (it would cancel the asker's own task) and a
    StopIteration (`Future.set_exception` refuses it before 3.13)."""
    if isinstance(exc, asyncio.CancelledError | StopIteration):
        error = MyceliumError(f"the handler raised {type(exc).__name__}")
        error.__cause__ = exc
        return error
    return exc


def exit_of(fut: asyncio.Future[Any]) -> Exit:
    """The `Exit` an incarnation's done future holds (cancelled: killed)."""
    if fut.cancelled():
        return KILLED
    exc = fut.exception()
    if exc is not None:
        return Exit("crash", exc)
    result: Exit = fut.result()
    return result


async def wait_done(clock: Clock, fut: asyncio.Future[Any], timeout: float | None) -> bool:
    """Wait until `fut` (an incarnation's end) is done or `timeout` passes on
    `clock`; True if done."""
    if fut.done():
        return True
    if timeout is None:
        await asyncio.wait((fut,))
        return True
    waiter: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def finish(value: bool) -> None:
        if not waiter.done():
            waiter.set_result(value)

    def on_done(_: Any) -> None:
        finish(True)

    fut.add_done_callback(on_done)
    timer = clock.call_later(timeout, finish, False)
    try:
        return await waiter
    finally:
        timer.cancel()
        fut.remove_done_callback(on_done)
