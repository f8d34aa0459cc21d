"""The worker process: `python -m mycelium_actors.workers.child`, started by a
`Subprocess` executor, never by hand.

It reads its bootstrap from stdin (the parent's `sys.path`, the contract
modules the parent registered, the actor's class as "module:qualname" and
its constructor arguments as codec bodies, the socket path and the one-time
secret), then runs an `ActorSystem` of its own that listens on that Unix
socket (in a directory only this user can enter) and requires the secret.
The served actor lives in that system at the same path as in the parent,
with an owner that reports how each incarnation ends to the parent and lets
the parent's supervisor decide; the parent's stand-in starts and stops it
through the host actor (`protocol.HOST`).

Unless the parent runs with `metrics=False`, a reporter actor
(`protocol.FIGURES`) answers the parent's long poll with the served actor's
figures when they changed, at most once per report interval
(docs/observability.md, "Actors in worker processes").

The parent holds the other end of stdin: when it goes away (even killed -9)
the read returns EOF and the worker exits, from a watchdog thread that does
not need the event loop (a handler may be busy for a long time).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any

import msgspec

from .. import logs
from ..errors import SerializationError
from ..kernel.actor import Actor, handler
from ..kernel.executor import DEFAULT_EXECUTOR
from ..kernel.exits import Exit
from ..kernel.mailbox import STOP_DRAIN, STOP_NOW
from ..kernel.ref import ActorRef
from ..kernel.slot import Slot
from ..kernel.stats import BOUNDS
from ..kernel.system import ActorSystem
from ..remote.node import NetworkNode
from ..remote.refs import RemoteActorRef
from ..wire import exceptions
from ..wire.codec import Codec, RefHook
from .protocol import (
    CLOSING,
    EXITS,
    FIGURES,
    HOST,
    LOG_MARK,
    NO_HEARTBEAT,
    PARENT_REF,
    READY,
    REPORT_INTERVAL,
    STOP,
    Figures,
    NextExit,
    NextFigures,
    Start,
    Stop,
    read_bootstrap,
)

#: Seconds the worker gives its own shutdown once the parent is gone.
ORPHAN_GRACE = 2.0


class _Worker:
    """The served slot and what the host actors share."""

    def __init__(self, system: ActorSystem, slot: Slot) -> None:
        self.system = system
        self.slot = slot
        self.exits: asyncio.Queue[list[Any]] = asyncio.Queue()
        self.directives: dict[str, str] = {}
        self.started_once = False
        self.finished = asyncio.Event()
        self.stopped = asyncio.Event()  # the parent stopped the actor for good
        self.reporter: _Reporter | None = None  # None: the parent runs without metrics

    def report_now(self) -> None:
        """An incarnation ended: the figures go to the parent without waiting."""
        if self.reporter is not None:
            self.reporter.now.set()

    # -- the slot's Owner (kernel.slot.Owner) ---------------------------------------

    def child_exited(self, slot: Slot, exit: Exit) -> None:
        error = b"" if exit.exc is None else exceptions.encode_error(exit.exc, True)
        self.report_now()
        self.exits.put_nowait([exit.kind, error, exit.escalate])

    def start_timeout(self, slot: Slot) -> float | None:
        return None  # the parent bounds the start (Subprocess.start_timeout)

    def directive_for(self, slot: Slot, exc: BaseException) -> str | None:
        if not self.directives:
            return None
        for cls in type(exc).__mro__:
            found = self.directives.get(f"{cls.__module__}:{cls.__qualname__}")
            if found is not None:
                return found
        return None

    async def terminate(self, slot: Slot) -> None:
        """`ref.stop()` inside the worker: a stop for good of the parent's slot.
        The parent stops it as any stop for good (what is queued on both sides
        is served, then `on_stop` here); this waits until that is done."""
        self.exits.put_nowait([STOP, b"", False])
        await self.stopped.wait()

    async def restart_stopped(self, slot: Slot) -> None:
        raise RuntimeError("a worker's actor is restarted by its parent")


class _Host(Actor):
    """Starts and stops the served incarnation for the parent's stand-in."""

    def __init__(self, worker: _Worker) -> None:
        super().__init__()
        self.worker = worker

    @handler
    async def start(self, msg: Start) -> list[Any]:
        worker = self.worker
        slot = worker.slot
        worker.directives = {
            **{name: "resume" for name in msg.resume},
            **{name: "stop" for name in msg.stop},
            **{name: "escalate" for name in msg.escalate},
        }
        if slot.mailbox.closed or slot.status == "stopped":
            slot.revive()
        worker.stopped.clear()
        if worker.started_once:
            slot.status = "restarting"
        worker.started_once = True
        try:
            await slot.start()
        except Exception as exc:  # the constructor or on_start raised: the parent's crash
            return ["error", exceptions.encode_error(exc, True)]
        return ["ok", b""]

    @handler
    async def stop(self, msg: Stop) -> str:
        slot = self.worker.slot
        if msg.drain:
            slot.mailbox.close()
        exit = await slot.stop_incarnation(STOP_DRAIN if msg.drain else STOP_NOW, None)
        if msg.drain:
            self.worker.stopped.set()
        self.worker.report_now()
        return exit.kind


class _Exits(Actor):
    """Answers one `NextExit` at a time, when an incarnation ended on its own."""

    def __init__(self, worker: _Worker) -> None:
        super().__init__()
        self.worker = worker

    @handler
    async def next_exit(self, msg: NextExit) -> list[Any]:
        return await self.worker.exits.get()


class _Reporter:
    """The served actor's figures for the parent's `system.metrics()`: answers
    one `NextFigures` at a time, once the figures differ from the last answer,
    no sooner than `interval` seconds after it unless an incarnation ended. Idle,
    it looks at the figures once per interval (here, with no traffic)."""

    def __init__(self, slot: Slot, interval: float) -> None:
        self.slot = slot
        self.interval = interval
        self.last: Figures | None = None
        self.sent_at = -math.inf
        self.now = asyncio.Event()  # report without waiting for the interval
        self.closing = False

    def figures(self) -> Figures:
        slot = self.slot
        stats = slot.stats
        depth = slot.mailbox.depth
        if stats is None:  # no handler ran yet
            return Figures([0] * (len(BOUNDS) + 1), 0.0, 0, depth, depth)
        seconds = stats.seconds()  # every bucket, the first one worked out
        return Figures(
            list(seconds.counts), seconds.sum, stats.failed, depth, max(stats.high, depth)
        )

    async def next(self) -> Figures | None:
        loop = asyncio.get_running_loop()
        while not self.closing:
            urgent = self.now.is_set()
            self.now.clear()
            figures = self.figures()
            changed = figures != self.last
            wait = self.sent_at + self.interval - loop.time() if changed else self.interval
            if changed and (urgent or wait <= 0):
                self.last, self.sent_at = figures, loop.time()
                return figures
            try:
                async with asyncio.timeout(wait):
                    await self.now.wait()
            except TimeoutError:
                pass
        return None

    def close(self) -> None:
        """The worker shuts down: the waiting poll is answered None."""
        self.closing = True
        self.now.set()


class _Figures(Actor):
    """Answers the parent's `NextFigures` (see `_Reporter`)."""

    def __init__(self, reporter: _Reporter) -> None:
        super().__init__()
        self.reporter = reporter

    @handler
    async def next_figures(self, msg: NextFigures) -> Figures | None:
        return await self.reporter.next()


class _LogForwarder(logging.Handler):
    """Log records to the parent, one marked line each on stderr (the parent
    logs them through its own configuration, with this process's pid bound).

    The library's own lifecycle events about the served actor and the link are
    the parent's to log (it logs them at the actor's path); warnings and worse
    from the library, and everything from other loggers, go up."""

    def __init__(self) -> None:
        super().__init__()
        self._encoder = msgspec.json.Encoder()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            if record.name == logs.NAME:
                event = str(getattr(record, "event", ""))
                if record.levelno < logging.WARNING or event.startswith(("actor.", "node.")):
                    return
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + self.formatter_exception(record)
            line = self._encoder.encode([record.levelno, record.name, text]).decode()
            sys.stderr.write(LOG_MARK + line + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)

    @staticmethod
    def formatter_exception(record: logging.LogRecord) -> str:
        return logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]


class _ChildRefs:
    """How refs cross the link on the worker's side: `PARENT_REF` + a path is an
    actor of the parent, reached over the connection the parent opened (the
    only one this node accepts); a ref over that connection goes back in that
    form. Anything else is the node protocol's (this node's actors have an
    address: the worker's socket)."""

    def __init__(self, node: NetworkNode) -> None:
        self.node = node
        self.fallback = node.codec.refs

    def encode(self, ref: ActorRef[Any]) -> str:
        if isinstance(ref, RemoteActorRef) and ref.address is None:
            return PARENT_REF + ref.path  # over an inbound connection: the parent's
        return self.fallback.encode(ref)

    def decode(self, address: str) -> ActorRef[Any]:
        if not address.startswith(PARENT_REF):
            return self.fallback.decode(address)
        parents = self.node.inbound()
        if not parents:
            raise SerializationError(f"cannot receive the ref {address!r}: the parent is gone")
        return parents[0].ref(address[len(PARENT_REF) :])


def _watch_parent(loop: asyncio.AbstractEventLoop, done: asyncio.Event) -> None:
    """In a thread: block on stdin until the parent closes it or dies, then end
    the worker (gracefully if the loop answers in time, else at once)."""
    try:
        while sys.stdin.buffer.read(65536):
            pass
    except (OSError, ValueError):
        pass
    try:
        loop.call_soon_threadsafe(done.set)
    except RuntimeError:
        pass  # the loop is closed: the worker is ending anyway
    threading.Event().wait(ORPHAN_GRACE)
    os._exit(0)


def _import_class(spec: str) -> type[Actor]:
    module_name, _, qualname = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, Actor)):
        raise TypeError(f"{spec} is not an Actor subclass")
    return obj


def _prepare(boot: dict[str, Any]) -> type[Actor]:
    for entry in boot["sys_path"]:
        if entry not in sys.path:
            sys.path.append(entry)
    cpus = boot.get("cpus")
    if cpus is not None:
        import psutil

        psutil.Process().cpu_affinity(cpus)
    root = logging.getLogger()
    root.setLevel(boot.get("log_level", logging.WARNING))
    root.addHandler(_LogForwarder())
    for name in boot["contract_modules"]:
        try:
            importlib.import_module(name)
        except Exception as exc:  # the parent's own script, a module of a test: not fatal
            logs.get_logger().warning("worker.contract_module", module=name, error=repr(exc))
    return _import_class(boot["actor"])


async def _serve(boot: dict[str, Any], cls: type[Actor]) -> None:
    codec = Codec()
    args = tuple(codec.decode_value(body) for body in boot["args"])
    kwargs = {key: codec.decode_value(body) for key, body in boot["kwargs"].items()}
    async with ActorSystem(
        f"worker-{os.getpid()}",
        listen=f"unix://{boot['socket']}",
        secret=boot["secret"],
        heartbeat_timeout=NO_HEARTBEAT,
        stall_warning=boot.get("stall_warning", 1.0),
        slow_handler=boot.get("slow_handler", 1.0),
        metrics=boot.get("metrics", True),
        tracing=boot.get("tracing", False),  # spans go to this process's tracer provider
    ) as system:
        slot = Slot(
            system,
            boot["path"],
            cls,
            args,
            kwargs,
            parent=None,
            executor=DEFAULT_EXECUTOR,
            shutdown=None,  # the parent bounds the stop and then terminates us
            mailbox_capacity=boot["mailbox"],
            mailbox_overflow="block",
        )
        node = system._node  # noqa: SLF001 (the worker's own node: its refs cross the link)
        assert isinstance(node, NetworkNode)
        refs = _ChildRefs(node)
        node.codec.refs = RefHook(refs.encode, refs.decode)
        worker = _Worker(system, slot)
        slot.owner = worker
        system.register(slot)
        await system.spawn(_Host, worker, name=HOST[1:])
        await system.spawn(_Exits, worker, name=EXITS[1:])
        if system.metrics_on:
            worker.reporter = _Reporter(slot, boot.get("report_interval", REPORT_INTERVAL))
            await system.spawn(_Figures, worker.reporter, name=FIGURES[1:])
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=_watch_parent, args=(loop, worker.finished), name="parent-watch", daemon=True
        ).start()
        sys.stdout.buffer.write(READY)
        sys.stdout.buffer.flush()
        await worker.finished.wait()
        # End the parent's long poll now: the system's stop would otherwise wait
        # for that handler until the shutdown time (the parent would kill us first).
        worker.exits.put_nowait([CLOSING, b"", False])
        if worker.reporter is not None:
            worker.reporter.close()


def _loop_factory(name: object) -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when the parent runs on it and this Python has it; asyncio's loop
    otherwise (a worker's interpreter may lack uvloop: it serves as well)."""
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is the parent's to handle
    boot = read_bootstrap(sys.stdin.buffer)
    cls = _prepare(boot)
    with asyncio.Runner(loop_factory=_loop_factory(boot.get("loop"))) as runner:
        runner.run(_serve(boot, cls))
    os._exit(0)  # the parent-watch thread still blocks on stdin


if __name__ == "__main__":
    main()
