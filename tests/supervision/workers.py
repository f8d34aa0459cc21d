"""The shared `Worker` of supervision.md section 2 ("Notation"), its messages and a journal.

`Worker(label, journal=...)` writes one journal line per lifecycle step:

- `start:x`        every `on_start` attempt (also one that then fails)
- `startfail:x`    that attempt raised
- `stop:x`         `on_stop` began
- `stop-done:x`    a slow `on_stop` finished (`stop_delay`, `stop_gate`, `ignore_cancel`)
- `got:x:n`        `Record(n)` was handled
- `hold:x`         a gated message began waiting on its gate

Options (all keyword-only, none of them reserved by `Child`):
`fail_start` ("always" | "restarts" | a set of 1-based attempt numbers),
`ignore_start` (the same values as `fail_start`: `on_start` raises `Ignore`),
`start_delay` (seconds `on_start` sleeps first), `stop_delay` (seconds `on_stop`
sleeps), `stop_raises` (`on_stop` raises after journaling), `ignore_cancel`
(`on_stop` swallows the kill and waits until `journal.release` is set),
`stop_gate` (`on_stop` waits until that event is set).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

import attrs

from mycelium_actors import Actor, Ignore, Terminated, handler


class Journal:
    """Ordered lifecycle lines plus every exception a Worker raised on purpose."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.errors: list[BaseException] = []
        self.release = asyncio.Event()

    def write(self, line: str) -> None:
        self.lines.append(line)

    def raised(self, exc: BaseException) -> BaseException:
        self.errors.append(exc)
        return exc

    def count(self, line: str) -> int:
        return self.lines.count(line)

    def mark(self) -> int:
        """A position to read `since(mark)` from."""
        return len(self.lines)

    def since(self, mark: int) -> list[str]:
        return self.lines[mark:]

    def lifecycle(self, since: int = 0) -> list[str]:
        """Only the `start:` and `stop:` lines, from `since` on."""
        return [line for line in self.lines[since:] if line.split(":", 1)[0] in ("start", "stop")]

    def got(self, label: str) -> list[int]:
        """The `Record` numbers `label` handled, in order."""
        prefix = f"got:{label}:"
        return [int(line[len(prefix) :]) for line in self.lines if line.startswith(prefix)]

    def __repr__(self) -> str:
        return f"Journal({self.lines!r})"


# -- messages ------------------------------------------------------------------


@attrs.frozen
class Crash:
    """The handler raises `RuntimeError` (after waiting on `gate`, if given)."""

    gate: asyncio.Event | None = attrs.field(default=None, eq=False)


@attrs.frozen
class Hold:
    """The handler waits on `gate`, then returns normally."""

    gate: asyncio.Event = attrs.field(eq=False)


@attrs.frozen
class StopSelf:
    """The handler calls `context.stop()`."""


@attrs.frozen
class Ping:
    """Answered with `("pong", label)`."""


@attrs.frozen
class Record:
    """Journals `got:<label>:<n>`, counts it in the instance's state, answers `n`."""

    n: int


@attrs.frozen
class Count:
    """Answered with how many `Record`s this instance (not the slot) handled."""


@attrs.frozen
class Raise:
    """The handler raises `exc` (a fresh instance of that class)."""

    exc: type[Exception]


@attrs.frozen
class WhoAmI:
    """The handler puts the task running it into `seen`, then waits (forever unless
    `gate` is set): a task an outside cancel can hit while the incarnation runs it.
    (An idle actor runs no task at all.)"""

    seen: asyncio.Future[asyncio.Task[Any] | None] = attrs.field(eq=False)
    gate: asyncio.Event = attrs.field(factory=asyncio.Event, eq=False)


@attrs.frozen
class Watch:
    """Tells a `Watcher` to `context.watch(ref)`."""

    ref: Any = attrs.field(eq=False)


# -- actors --------------------------------------------------------------------


def _fails(fail_start: str | Collection[int] | None, attempt: int) -> bool:
    if fail_start is None:
        return False
    if fail_start == "always":
        return True
    if fail_start == "restarts":
        return attempt > 1
    assert not isinstance(fail_start, str), f"unknown fail_start {fail_start!r}"
    return attempt in fail_start


class Worker(Actor):
    """The journaling worker of the notation section."""

    def __init__(
        self,
        label: str,
        *,
        journal: Journal,
        fail_start: str | Collection[int] | None = None,
        start_delay: float = 0.0,
        stop_delay: float = 0.0,
        stop_raises: bool = False,
        ignore_cancel: bool = False,
        stop_gate: asyncio.Event | None = None,
        ignore_start: str | Collection[int] | None = None,
    ) -> None:
        super().__init__()
        self.label = label
        self.journal = journal
        self.fail_start = fail_start
        self.start_delay = start_delay
        self.stop_delay = stop_delay
        self.stop_raises = stop_raises
        self.ignore_cancel = ignore_cancel
        self.stop_gate = stop_gate
        self.ignore_start = ignore_start
        self.count = 0

    async def on_start(self) -> None:
        j, x = self.journal, self.label
        j.write(f"start:{x}")
        attempt = j.count(f"start:{x}")
        if self.start_delay:
            await asyncio.sleep(self.start_delay)
        if _fails(self.ignore_start, attempt):
            raise Ignore()
        if _fails(self.fail_start, attempt):
            j.write(f"startfail:{x}")
            raise j.raised(RuntimeError(f"on_start of {x} failed (attempt {attempt})"))

    async def on_stop(self) -> None:
        j, x = self.journal, self.label
        j.write(f"stop:{x}")
        if self.ignore_cancel:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                j.write(f"cancel-ignored:{x}")
                await j.release.wait()  # the test (or the journal fixture) releases it
            j.write(f"stop-done:{x}")
        elif self.stop_delay:
            await asyncio.sleep(self.stop_delay)
            j.write(f"stop-done:{x}")
        elif self.stop_gate is not None:
            await self.stop_gate.wait()
            j.write(f"stop-done:{x}")
        if self.stop_raises:
            raise j.raised(RuntimeError(f"on_stop of {x} failed"))

    @handler
    async def crash(self, msg: Crash) -> None:
        if msg.gate is not None:
            self.journal.write(f"hold:{self.label}")
            await msg.gate.wait()
        raise self.journal.raised(RuntimeError(f"crash {self.label}"))

    @handler
    async def hold(self, msg: Hold) -> None:
        self.journal.write(f"hold:{self.label}")
        await msg.gate.wait()

    @handler
    def stop_self(self, msg: StopSelf) -> None:
        self.context.stop()

    @handler
    def ping(self, msg: Ping) -> tuple[str, str]:
        return ("pong", self.label)

    @handler
    def record(self, msg: Record) -> int:
        self.journal.write(f"got:{self.label}:{msg.n}")
        self.count += 1
        return msg.n

    @handler
    def count_records(self, msg: Count) -> int:
        return self.count

    @handler
    def raise_(self, msg: Raise) -> None:
        raise msg.exc(f"{self.label} raised on request")

    @handler
    async def who_am_i(self, msg: WhoAmI) -> None:
        msg.seen.set_result(asyncio.current_task())
        await msg.gate.wait()


class Watcher(Actor):
    """Watches refs on request and journals `terminated:<path>` for each `Terminated`."""

    def __init__(self, *, journal: Journal) -> None:
        super().__init__()
        self.journal = journal

    @handler
    def watch(self, msg: Watch) -> None:
        self.context.watch(msg.ref)

    @handler
    def terminated(self, msg: Terminated) -> None:
        self.journal.write(f"terminated:{msg.ref.path}")

    @handler
    def ping(self, msg: Ping) -> str:
        return "pong"
