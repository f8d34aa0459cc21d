"""Where an actor's incarnations run: the seam for thread executors.

An executor gives a slot an event loop (and its thread) and runs each
incarnation's coroutine there, reporting completion back on the system loop.
The default runs everything as tasks on the system's own loop.
"""

from __future__ import annotations

import abc
import asyncio
import threading
from collections.abc import Coroutine
from typing import Any


class Executor(abc.ABC):
    """Runs the incarnations of the slots attached to it."""

    @abc.abstractmethod
    async def attach(self, path: str) -> tuple[asyncio.AbstractEventLoop, int]:
        """Prepare to run the actor at `path`; return its loop and thread id.

        Raises `ValueError` for a configuration this machine cannot honour.
        """

    @abc.abstractmethod
    def submit(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """Run `coro` on the executor's loop; the result is a future on the caller's loop.

        Cancelling the returned future cancels the coroutine.
        """

    def describe(self) -> tuple[str | None, int | None, list[int] | None]:
        """(thread name, native thread id, cpus) for `system.tree()`."""
        return None, None, None

    async def aclose(self) -> None:
        """Release the executor's resources once its actor stopped for good."""


class LoopExecutor(Executor):
    """Incarnations are tasks on the system's event loop (the default)."""

    async def attach(self, path: str) -> tuple[asyncio.AbstractEventLoop, int]:
        return asyncio.get_running_loop(), threading.get_ident()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_task(coro)


DEFAULT_EXECUTOR = LoopExecutor()
