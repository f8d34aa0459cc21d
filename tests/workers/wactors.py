"""Actors and messages the worker-process tests run in child processes (a
module, not a test file, so a worker can import it by module:qualname)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import attrs

from mycelium_actors import Actor, ActorRef, handler, message


@message(id=2101)
@attrs.frozen
class Add:
    n: int


@message(id=2102)
@attrs.frozen
class Get:
    pass


@message(id=2103)
@attrs.frozen
class Crash:
    text: str


@message(id=2104)
@attrs.frozen
class Pid:
    pass


@message(id=2105)
@attrs.frozen
class Sleep:
    seconds: float


@message(id=2106)
@attrs.frozen
class DieHard:
    """The worker kills its own process with SIGKILL while handling it."""


@message(id=2107)
@attrs.frozen
class Log:
    text: str


@message(id=2108)
@attrs.frozen
class Spawned:
    """Spawns a child in the worker's own system and looks it up: its path."""


@message(id=2109)
@attrs.frozen
class Block:
    """A sync handler that holds the worker's loop for `seconds`."""

    seconds: float


@message(id=2110)
@attrs.frozen
class Shout:
    """Writes `text` to the worker's stderr."""

    text: str


@message(id=2111)
@attrs.frozen
class Queued:
    """After `seconds`, answers how many messages wait in the actor's mailbox there."""

    seconds: float


@message(id=2112)
@attrs.frozen
class StopMe:
    """The actor stops itself through its own ref (`ref.stop()`), inside the worker."""


@message(id=2113)
@attrs.frozen
class Greet:
    """Tells `to` a `Note`, then asks it `Get()`: answers what it answered."""

    to: ActorRef[Any]


@message(id=2114)
@attrs.frozen
class Note:
    text: str


@message(id=2115)
@attrs.frozen
class Introduce:
    """Tells `to` a `Here` holding the worker's own ref."""

    to: ActorRef[Any]


@message(id=2116)
@attrs.frozen
class Here:
    ref: ActorRef[Any]


@message(id=2117)
@attrs.frozen
class Me:
    """Answered with `Here(own ref)`."""


@message(id=2118)
@attrs.frozen
class Back:
    """Answered with `Here(ref)`: the ref it got, sent back."""

    ref: ActorRef[Any]


@message(id=2119)
@attrs.frozen
class LoopKind:
    """Answers which event loop serves the actor: "asyncio" or "uvloop"."""


@message(id=2120)
@attrs.frozen
class Hold:
    """Holds the actor (an async handler) until the file `path` exists."""

    path: str


class Counter(Actor):
    """Counts `Add`s; `note` (a file path) records its lifecycle, one line per hook."""

    def __init__(self, start: int = 0, note: str | None = None) -> None:
        super().__init__()
        self.total = start
        self.note = note

    def _note(self, text: str) -> None:
        if self.note is not None:
            with Path(self.note).open("a") as f:
                f.write(f"{text} {os.getpid()}\n")

    async def on_start(self) -> None:
        self._note("start")

    async def on_stop(self) -> None:
        self._note("stop")

    @handler
    def add(self, msg: Add) -> None:
        self.total += msg.n

    @handler
    def get(self, msg: Get) -> int:
        return self.total

    @handler
    def crash(self, msg: Crash) -> None:
        raise KeyError(msg.text)

    @handler
    def pid(self, msg: Pid) -> int:
        return os.getpid()

    @handler
    def loop_kind(self, msg: LoopKind) -> str:
        return type(asyncio.get_running_loop()).__module__.partition(".")[0]

    @handler
    async def sleep(self, msg: Sleep) -> float:
        await asyncio.sleep(msg.seconds)
        return msg.seconds

    @handler
    def die_hard(self, msg: DieHard) -> None:
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)

    @handler
    def block(self, msg: Block) -> None:
        time.sleep(msg.seconds)

    @handler
    async def queued(self, msg: Queued) -> int:
        await asyncio.sleep(msg.seconds)
        ref: Any = self.context.self_ref
        return int(ref.mailbox.depth)

    @handler
    async def hold(self, msg: Hold) -> None:
        while not Path(msg.path).exists():
            await asyncio.sleep(0.01)

    @handler
    async def stop_me(self, msg: StopMe) -> None:
        await self.context.self_ref.stop()

    @handler
    async def greet(self, msg: Greet) -> int:
        await msg.to.tell(Note(f"hello from {os.getpid()}"))
        answer: int = await msg.to.ask(Get())
        return answer

    @handler
    async def introduce(self, msg: Introduce) -> None:
        await msg.to.tell(Here(self.context.self_ref))

    @handler
    def me(self, msg: Me) -> Here:
        return Here(self.context.self_ref)

    @handler
    def back(self, msg: Back) -> Here:
        return Here(msg.ref)

    @handler
    def shout(self, msg: Shout) -> None:
        print(msg.text, file=sys.stderr, flush=True)

    @handler
    def log(self, msg: Log) -> None:
        import logging

        logging.getLogger("wactors").warning("from the worker: %s", msg.text)

    @handler
    async def spawned(self, msg: Spawned) -> list[str | int]:
        ref = await self.context.spawn(Counter, name="inner")
        found = self.context.system.lookup(ref.path)
        assert found == ref
        return [ref.path, await ref.ask(Pid())]


class SlowStart(Actor):
    """`on_start` takes `delay` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def on_start(self) -> None:
        await asyncio.sleep(self.delay)

    @handler
    def pid(self, msg: Pid) -> int:
        return os.getpid()

    @handler
    def loop_kind(self, msg: LoopKind) -> str:
        return type(asyncio.get_running_loop()).__module__.partition(".")[0]


class FailingStart(Actor):
    """`on_start` always raises."""

    async def on_start(self) -> None:
        raise RuntimeError("cannot start")
