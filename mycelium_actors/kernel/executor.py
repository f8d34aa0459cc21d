"""Where an actor's incarnations run: the event-loop seam and `PinnedThread`.

An `Executor` is configuration (it may sit on a class or in a `Child` spec and
serve many actors); `attach()` gives each slot a `Runner`: the loop and thread
its incarnations run on. The default runs everything as tasks on the
system's loop. `PinnedThread` gives the slot its own OS thread and event loop,
pinned to CPUs with psutil; the thread lives until the actor stops for good.
"""

from __future__ import annotations

import abc
import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import psutil

from .. import logs

if TYPE_CHECKING:
    from .actor import Actor
    from .dispatcher import Server
    from .exits import Exit
    from .ref import LocalActorRef
    from .slot import Slot


class Runner(abc.ABC):
    """One slot's place to run: a loop, its thread, and how to submit work there."""

    loop: asyncio.AbstractEventLoop
    thread_id: int

    @abc.abstractmethod
    def submit(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """Run `coro` on `self.loop`; return a future on the *calling* loop that
        completes with the coroutine's result once it has really finished."""

    def describe(self) -> tuple[str | None, int | None, list[int] | None]:
        """(thread name, native thread id, cpus) for `system.tree()`."""
        return None, None, None

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) of the runner's own thread, or None."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """The actor stopped for good: release the thread, if any."""

    # -- the seam for runners whose incarnations live elsewhere (worker processes) --

    #: True for a runner that serves the actor outside this process: the slot
    #: then constructs `stand_in(slot)` instead of the actor's class (it never
    #: runs the class here) and serves the mailbox with `relay(...)` instead of
    #: the loop's dispatcher.
    serves_elsewhere: bool = False

    def stand_in(self, slot: Slot) -> Actor:
        """The local instance of an incarnation served elsewhere: its hooks start
        and stop the real one."""
        raise TypeError(f"{type(self).__name__} serves its actors here: it has no stand-in")

    def relay(
        self,
        slot: Slot,
        instance: Actor,
        done: asyncio.Future[Exit],
        context: contextvars.Context,
        loop: asyncio.AbstractEventLoop,
    ) -> Server:
        """The mailbox's consumer for an incarnation served elsewhere; it behaves
        as a `Server` towards the slot (`begin`, `state`, `kill`, `done`, ...)."""
        raise TypeError(f"{type(self).__name__} serves its actors here: the dispatcher does")

    def pid(self) -> int | None:
        """The id of the OS process the actor runs in, when that is not this one."""
        return None

    def rss(self) -> int | None:
        """Resident memory (bytes) of that process, when the actor has its own."""
        return None


class Executor(abc.ABC):
    """Makes runners for slots; the abstract seam thread executors plug into."""

    @abc.abstractmethod
    async def attach(self, path: str) -> Runner:
        """A runner for the actor at `path`; `ValueError` if it cannot be honoured."""

    def attach_now(self, path: str) -> Runner | None:
        """The runner `attach(path)` would give, if it has one ready without
        awaiting anything; None: call `attach`. Saves a spawn two coroutines."""
        return None

    def make_ref(self, slot: Slot) -> LocalActorRef[Any] | None:
        """The ref for a new slot using this executor, or None for the system's
        own; may raise (`ValueError`, `SerializationError`) to refuse the spawn."""
        return None


class _LoopRunner(Runner):
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.thread_id = threading.get_ident()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        return self.loop.create_task(coro)


class LoopExecutor(Executor):
    """Incarnations are tasks on the system's event loop (the default)."""

    def __init__(self) -> None:
        self._runners: dict[asyncio.AbstractEventLoop, _LoopRunner] = {}

    def attach_now(self, path: str) -> Runner | None:
        return self._runners.get(asyncio.get_running_loop())  # a closed loop runs nothing

    async def attach(self, path: str) -> Runner:
        loop = asyncio.get_running_loop()
        runner = self._runners.get(loop)
        if runner is None or runner.loop.is_closed():
            self._runners = {lp: r for lp, r in self._runners.items() if not lp.is_closed()}
            runner = self._runners[loop] = _LoopRunner()
        return runner

    def __repr__(self) -> str:
        return "LoopExecutor()"


DEFAULT_EXECUTOR = LoopExecutor()


def affinity_supported() -> bool:
    """Whether psutil can set CPU affinity on this platform (Linux, Windows, FreeBSD)."""
    return hasattr(psutil.Process, "cpu_affinity")


class _ThreadRunner(Runner):
    """An OS thread running its own event loop, optionally pinned to CPUs."""

    def __init__(self, name: str, cpus: list[int] | None) -> None:
        self.name = name
        self.cpus = cpus
        self.native_id: int | None = None
        self.users = 0
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._new_loop: Any = asyncio.new_event_loop

    async def start(self) -> None:
        # The thread runs the same kind of loop as the system (uvloop under
        # uvloop); a loop class that cannot be built without arguments falls
        # back to the policy's new_event_loop().
        self._new_loop = type(asyncio.get_running_loop())
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._error is not None:
            raise self._error

    def _main(self) -> None:
        try:
            loop: asyncio.AbstractEventLoop = self._new_loop()
        except TypeError:
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        self.thread_id = threading.get_ident()
        self.native_id = threading.get_native_id()
        try:
            if self.cpus is not None:
                me = psutil.Process(self.native_id)
                me.cpu_affinity(self.cpus)
                if sorted(me.cpu_affinity()) != sorted(self.cpus):
                    raise OSError(f"affinity of {self.name} reads back {me.cpu_affinity()}")
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            _drain_and_close(loop)

    def submit(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        caller = asyncio.get_running_loop()
        done: asyncio.Future[Any] = caller.create_future()

        def copy(task: asyncio.Task[Any]) -> None:
            if done.done():
                return
            if task.cancelled():
                done.cancel()
            elif task.exception() is not None:
                done.set_exception(task.exception())  # type: ignore[arg-type]
            else:
                done.set_result(task.result())

        def start() -> None:
            task = self.loop.create_task(coro)
            task.add_done_callback(lambda t: _call_soon(caller, copy, t))

        self.loop.call_soon_threadsafe(start)
        return done

    def describe(self) -> tuple[str | None, int | None, list[int] | None]:
        return self.name, self.native_id, list(self.cpus) if self.cpus is not None else None

    def cpu_seconds(self) -> float | None:
        for thread in psutil.Process().threads():
            if thread.id == self.native_id:
                return float(thread.user_time + thread.system_time)
        return None

    async def aclose(self) -> None:
        self.users -= 1
        if self.users > 0:
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:
            return  # already closed
        await asyncio.to_thread(self._thread.join, 2.0)
        if self._thread.is_alive():
            logs.get_logger().error(
                "executor.abandoned", thread=self.name, reason="thread did not stop"
            )


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Any, *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:
        pass  # the caller's loop is closed


def _drain_and_close(loop: asyncio.AbstractEventLoop) -> None:
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def _valid_cpus(cpus: object) -> list[int]:
    """`cpus` as a list: a non-empty list or tuple of distinct non-negative ints."""
    if not isinstance(cpus, list | tuple):
        raise TypeError(f"PinnedThread: cpus must be a list or tuple of ints, not {cpus!r}")
    for cpu in cpus:
        if not isinstance(cpu, int) or isinstance(cpu, bool):
            raise TypeError(f"PinnedThread: CPU numbers are ints, not {cpu!r} (in {cpus!r})")
        if cpu < 0:
            raise ValueError(f"PinnedThread: CPU numbers are not negative, not {cpu} (in {cpus!r})")
    if not cpus:
        raise ValueError("PinnedThread: cpus must name at least one CPU (or be None)")
    if len(set(cpus)) != len(cpus):
        twice = sorted({cpu for cpu in cpus if cpus.count(cpu) > 1})
        raise ValueError(f"PinnedThread: CPUs {twice} are named twice (in {cpus!r})")
    return list(cpus)


class PinnedThread(Executor):
    """Run the actor on its own OS thread with its own event loop, pinned to `cpus`.

    `cpus=None` gives a dedicated thread without pinning. With `shared=True`,
    every actor using this same `PinnedThread` object shares one thread (an
    affinity pool). On a platform without CPU affinity support (macOS) a
    dedicated thread still runs, unpinned, and a warning is logged.
    """

    def __init__(
        self, cpus: list[int] | tuple[int, ...] | None = None, *, shared: bool = False
    ) -> None:
        self.cpus: list[int] | None = None if cpus is None else _valid_cpus(cpus)
        self.shared = shared
        self._pool: _ThreadRunner | None = None

    def __repr__(self) -> str:
        return f"PinnedThread(cpus={self.cpus}{', shared=True' if self.shared else ''})"

    def _checked_cpus(self, path: str) -> list[int] | None:
        if self.cpus is None:
            return None
        if not affinity_supported():
            logs.get_logger().warning(
                "executor.unpinned", path=path, reason="CPU affinity is not supported here"
            )
            return None
        allowed = psutil.Process().cpu_affinity()
        missing = sorted(set(self.cpus) - set(allowed))
        if missing:
            raise ValueError(
                f"{path}: PinnedThread cpus {missing} do not exist or are not allowed for "
                f"this process (allowed: {allowed})"
            )
        return self.cpus

    async def attach(self, path: str) -> Runner:
        cpus = self._checked_cpus(path)
        if self.shared and self._pool is not None and self._pool.users > 0:
            self._pool.users += 1
            return self._pool
        name = f"mycelium-pool-{cpus}" if self.shared else f"mycelium:{path}"
        runner = _ThreadRunner(name, cpus)
        await runner.start()
        runner.users = 1
        if self.shared:
            self._pool = runner
        return runner
