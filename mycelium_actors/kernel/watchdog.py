"""The stall watchdog: `loop.stalled` when a loop that serves actors stops turning.

One daemon thread per system (API.md 8, `ActorSystem(..., stall_warning=1.0)`).
Every `stall_warning / 4` seconds it posts a probe to each loop it watches
(`call_soon_threadsafe`: one callback, nothing on the per-message path) and
checks the one posted before. A probe still unanswered `stall_warning`
seconds after it was posted means the loop has not turned since: the
watchdog logs `loop.stalled` (warning), again once per `stall_warning` while
the block lasts, and `loop.resumed` (info, with the total) once the probe is
answered.

What the loop is serving is read only then, from the blocked thread's stack
(`sys._current_frames()`): the dispatcher frame serving a message holds the
server (its slot's path) and the message's type, an actor's hook runs in a
slot's frame. No marker is stored per message for it.

The loops watched are the system's and each `PinnedThread` loop; a worker
process runs its own system, so its own watchdog, whose warnings reach the
parent through the worker's log forwarding.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable

from . import slot as _slot_module
from .dispatcher import Server
from .slot import Slot

#: Probes per threshold: `blocked_for` is exact to `stall_warning / PROBES`.
PROBES = 4

# The frames that serve a message: their locals hold `self` (the Server) and `mtype`.
_SERVING = (Server._sync.__code__, Server._spell.__code__)  # noqa: SLF001 (read, not run)
_SLOT_FILE = _slot_module.__file__

#: `log(event, path, **fields)`: the system's lifecycle log (any thread).
Log = Callable[..., None]


def check_threshold(name: str, value: object) -> float | None:
    """`value` as a positive finite float, or None (off); a clear error otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a positive number of seconds or None, not {value!r}")
    if not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive number of seconds or None, not {value!r}")
    return float(value)


def serving(thread_id: int) -> tuple[str | None, str | None]:
    """(path, message type) of what the thread `thread_id` is running now, as
    far as its stack tells: the message a dispatcher serves, or an actor hook
    (path only); (None, None) for anything else."""
    frame = sys._current_frames().get(thread_id)  # noqa: SLF001 (the documented way)
    path: str | None = None
    while frame is not None:
        code = frame.f_code
        if code in _SERVING:
            local = frame.f_locals
            server = local.get("self")
            mtype = local.get("mtype")
            if isinstance(server, Server):
                name = mtype.__qualname__ if isinstance(mtype, type) else None
                return server.slot.path, name
        elif path is None and code.co_filename == _SLOT_FILE:
            owner = frame.f_locals.get("self")
            if isinstance(owner, Slot):
                # A hook (on_start, on_stop, ...) of this actor; none while it is made.
                path = getattr(owner, "path", None)
        frame = frame.f_back
    return path, None


class _Watched:
    """One loop under watch: its probe, and whether a stall was reported."""

    __slots__ = (
        "answered",
        "loop",
        "message_type",
        "next_log",
        "path",
        "posted",
        "stalled",
        "thread_id",
        "waiting",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, thread_id: int) -> None:
        self.loop = loop
        self.thread_id = thread_id
        self.waiting = False  # a probe is posted and not answered yet
        self.posted = 0.0  # when it was posted (monotonic)
        self.answered = 0.0  # when the last one was answered
        self.stalled = False  # `loop.stalled` was logged for the current block
        self.next_log = 0.0
        self.path: str | None = None  # what it was serving when the stall was logged
        self.message_type: str | None = None

    def answer(self) -> None:
        """On the watched loop: the probe ran, so the loop turns."""
        self.answered = time.monotonic()
        self.waiting = False


class Watchdog:
    """Watches the loops that serve one system's actors, from its own thread."""

    def __init__(self, threshold: float, log: Log, name: str) -> None:
        self.threshold = threshold
        self._log = log
        self._name = f"mycelium-watchdog:{name}"
        self._watched: dict[asyncio.AbstractEventLoop, _Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, loop: asyncio.AbstractEventLoop, thread_id: int) -> None:
        """Watch `loop`, run by the thread `thread_id` (once per loop; any thread)."""
        with self._lock:
            if self._stop.is_set() or loop in self._watched:
                return
            self._watched[loop] = _Watched(loop, thread_id)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """End the thread (it is a daemon: a system never stopped does not keep it)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(1.0)

    def _run(self) -> None:
        interval = self.threshold / PROBES
        while not self._stop.wait(interval):
            with self._lock:
                watched = list(self._watched.values())
            for entry in watched:
                self._check(entry)
            with self._lock:
                if not self._watched:  # every loop closed: a later watch() starts anew
                    self._thread = None
                    return

    def _check(self, entry: _Watched) -> None:
        loop = entry.loop
        now = time.monotonic()
        if loop.is_closed():
            with self._lock:
                self._watched.pop(loop, None)
            return
        if not entry.waiting:
            if entry.stalled:
                entry.stalled = False
                self._resumed(entry)
            entry.waiting = True
            entry.posted = now
            try:
                loop.call_soon_threadsafe(entry.answer)
            except RuntimeError:  # closed: it serves nothing any more
                with self._lock:
                    self._watched.pop(loop, None)
            return
        if not loop.is_running():
            return  # stopped between runs (a thread ending, a test's loop): not stalled
        blocked = now - entry.posted
        if blocked >= self.threshold and now >= entry.next_log:
            entry.stalled = True
            entry.next_log = now + self.threshold
            path, message_type = entry.path, entry.message_type = serving(entry.thread_id)
            self._log(
                "loop.stalled",
                path,
                message_type=message_type,
                blocked_for=round(blocked, 3),
                thread=_thread_name(entry.thread_id),
            )

    def _resumed(self, entry: _Watched) -> None:
        self._log(
            "loop.resumed",
            entry.path,
            message_type=entry.message_type,
            blocked_for=round(entry.answered - entry.posted, 3),
            thread=_thread_name(entry.thread_id),
        )


def _thread_name(thread_id: int) -> str | None:
    for thread in threading.enumerate():  # only when a stall is logged
        if thread.ident == thread_id:
            return thread.name
    return None
