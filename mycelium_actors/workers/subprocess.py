"""`Subprocess`: an executor that runs the actor in a worker process of its own.

The parent keeps the slot: its path, ref, mailbox, discovery and supervision.
The slot's incarnation here is a stand-in (`_StandIn`) whose `on_start` starts
the worker process if none runs and has it construct the actor and run
`on_start` there, and whose `on_stop` has it run `on_stop`. While it runs, a
relay (`_Relay`, the mailbox's consumer in place of the dispatcher) sends the
mailbox's messages in order over the node protocol: tells pipelined within
the protocol's window, asks answered by request id. The worker reports how an
incarnation ended on its own (`NextExit`); a crash there ends the relay with
that crash, so the parent's supervisor decides as for any child, and its
restart starts the actor again in the same process. The process dying ends the
relay as killed: the ask in flight fails with `ActorStopped` at once and the
next start makes a new process. Unless metrics are off, a second long poll
(`NextFigures`) brings the actor's figures from the worker into the slot's
`ReportedStats`, cumulated across processes (docs/observability.md, "Actors in
worker processes"). docs/design.md ("Worker processes") has the whole design.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from asyncio import _get_running_loop as _running_loop
from pathlib import Path
from typing import Any

import msgspec
import psutil

from .. import logs
from ..errors import (
    ActorStopped,
    AskTimeout,
    MailboxFull,
    SerializationError,
    TransportError,
)
from ..kernel.actor import Actor
from ..kernel.dispatcher import DONE
from ..kernel.executor import Executor, Runner, _valid_cpus
from ..kernel.exits import NORMAL, SHUTDOWN, Exit
from ..kernel.mailbox import STOP_DRAIN, STOP_NOW, STOP_SELF
from ..kernel.ref import ActorRef, LocalActorRef, check_timeout
from ..kernel.replies import resume, settle
from ..kernel.seams import DEFAULT_MAX_FRAME, NodeOptions
from ..kernel.slot import Slot
from ..kernel.stats import BOUNDS, ReportedStats
from ..kernel.system import ActorSystem
from ..remote.node import NetworkNode
from ..remote.refs import HereRef
from ..supervision.spec import Child
from ..wire import exceptions
from ..wire.codec import Codec, RefHook
from ..wire.registry import contract_modules
from . import protocol
from .protocol import (
    CLOSING,
    EXITS,
    FIGURES,
    HOST,
    LOG_MARK,
    NO_HEARTBEAT,
    PARENT_REF,
    PROTOCOL,
    READY,
    STOP,
    Figures,
    NextExit,
    NextFigures,
    Start,
    Stop,
    write_bootstrap,
)

#: The relay's state while it serves (compared by identity, like the dispatcher's).
RELAYING = "relaying"
#: Seconds a worker gets to exit after its stdin closes, then after SIGTERM, before SIGKILL.
EXIT_GRACE = 1.0
#: The capacity of the actor's mailbox inside the worker: above the protocol's window,
#: so a relayed message never waits for room there.
WORKER_MAILBOX = 1024
#: The directory holding this package (put on the child's PYTHONPATH).
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent.parent)


def _class_name(cls: type) -> str:
    """`cls` as "module:qualname"; `ValueError` if a child process could not import it."""
    qualname = cls.__qualname__
    if cls.__module__ == "__main__":
        raise ValueError(
            f"{qualname} is defined in __main__: a worker process imports the actor's class "
            "by module:qualname, so move it to a module"
        )
    if "<locals>" in qualname:
        raise ValueError(
            f"{qualname} is defined inside a function: a worker process imports the actor's "
            "class by module:qualname, so define it at a module's top level"
        )
    found: Any = importlib.import_module(cls.__module__)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if found is not cls:
        raise ValueError(f"{cls.__module__}:{qualname} does not name the class {cls!r}")
    return f"{cls.__module__}:{qualname}"


class Subprocess(Executor):
    """Run the actor in a child OS process started for it (API.md section 10).

    `cpus` pins the process with psutil; `env` adds to or overrides the
    parent's environment; `python` names another interpreter (checked for
    compatibility when first used); `start_timeout` bounds process start to
    `on_start` done.
    """

    def __init__(
        self,
        cpus: list[int] | tuple[int, ...] | None = None,
        env: dict[str, str] | None = None,
        python: str | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        self.cpus: list[int] | None = None if cpus is None else _valid_cpus(cpus)
        if env is not None:
            if not isinstance(env, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in env.items()
            ):
                raise TypeError(f"Subprocess: env must be a dict of str to str, not {env!r}")
            env = dict(env)
        self.env = env
        if python is not None and (not isinstance(python, str) or not python):
            raise TypeError(f"Subprocess: python must be a path or command name, not {python!r}")
        self.python = python
        if isinstance(start_timeout, bool) or not (
            isinstance(start_timeout, int | float) and 0 < start_timeout < float("inf")
        ):
            raise ValueError(
                f"Subprocess: start_timeout must be a positive number, not {start_timeout!r}"
            )
        self.start_timeout = float(start_timeout)
        self.codec = Codec()
        self._checked_python: str | None = None

    def __repr__(self) -> str:
        parts = [f"cpus={self.cpus}"]
        if self.env:
            parts.append(f"env={self.env!r}")
        if self.python:
            parts.append(f"python={self.python!r}")
        if self.start_timeout != 10.0:
            parts.append(f"start_timeout={self.start_timeout}")
        return f"Subprocess({', '.join(parts)})"

    def make_ref(self, slot: Slot) -> LocalActorRef[Any]:
        _class_name(slot.actor_class)  # ValueError at spawn, naming the class
        self.encode_args(slot)  # SerializationError at spawn
        return _WorkerRef(slot, sender_codec(slot.system, slot.path))

    def encode_args(self, slot: Slot) -> tuple[list[bytes], dict[str, bytes]]:
        try:
            return (
                [self.codec.encode_value(arg) for arg in slot.args],
                {key: self.codec.encode_value(value) for key, value in slot.kwargs.items()},
            )
        except SerializationError as exc:
            raise SerializationError(
                f"{slot.path}: constructor arguments of {slot.actor_class.__qualname__} cross "
                f"to a worker process as messages do ({exc})"
            ) from None

    async def attach(self, path: str) -> Runner:
        if self.cpus is not None:
            allowed = psutil.Process().cpu_affinity()
            missing = sorted(set(self.cpus) - set(allowed))
            if missing:
                raise ValueError(
                    f"{path}: Subprocess cpus {missing} do not exist or are not allowed for "
                    f"this process (allowed: {allowed})"
                )
        python = await self._interpreter()
        return _WorkerRunner(self, path, python)

    async def _interpreter(self) -> str:
        """The interpreter to start; another one is checked once: same Python
        version and the same mycelium-actors importable, else `ValueError`."""
        if self.python is None:
            return sys.executable
        if self._checked_python is not None:
            return self._checked_python
        found = shutil.which(self.python)
        if found is None:
            raise ValueError(f"Subprocess: python={self.python!r} is not an executable")
        probe = (
            "import sys; from mycelium_actors.workers import protocol; "
            "print(sys.version_info[0], sys.version_info[1], protocol.PROTOCOL)"
        )
        try:
            result = await asyncio.to_thread(
                subprocess.run,
                [found, "-c", probe],
                capture_output=True,
                text=True,
                timeout=self.start_timeout,
                env=_child_env(self.env),
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ValueError(f"Subprocess: python={self.python!r} cannot be run: {exc}") from None
        want = f"{sys.version_info[0]} {sys.version_info[1]} {PROTOCOL}"
        got = result.stdout.strip()
        if result.returncode != 0 or got != want:
            why = result.stderr.strip().splitlines()[-1:] or [got]
            raise ValueError(
                f"Subprocess: python={self.python!r} is not compatible with this parent "
                f"(it needs Python {sys.version_info[0]}.{sys.version_info[1]} with "
                f"mycelium-actors' worker protocol {PROTOCOL}; it answered: {why[0]!r})"
            )
        self._checked_python = found
        return found


def _child_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = _PACKAGE_ROOT + (os.pathsep + path if path else "")
    return env


def sender_codec(system: ActorSystem, path: str) -> Codec:
    """The codec that checks, at the sender, a message for the worker process(es)
    at `path`: what cannot cross the link is a `SerializationError` there."""
    refs = _ParentRefs(system, None, path)
    return Codec(refs=RefHook(refs.encode, refs.decode))


class _ParentRefs:
    """How refs cross a worker link on the parent's side (the parent does not
    listen: its actors have no address). A ref to an actor of the parent's
    system goes as `PARENT_REF` + its path, which the worker turns into a ref
    over the same link; that form coming back is the parent's own ref again.
    The address of the served actor in the worker is the parent's ordinary ref
    of the slot; any other address is the node protocol's (a ref over the link
    for another actor in the worker). `url` is None for the sender-side check,
    which only encodes."""

    def __init__(self, system: ActorSystem, url: str | None, path: str) -> None:
        self.system = system
        self.served = None if url is None else url + path
        self.path = path
        self.fallback: RefHook | None = None  # the node's own hook, once the link is up

    def encode(self, ref: ActorRef[Any]) -> str:
        if isinstance(ref, LocalActorRef) and self.system.lookup(ref.path) is ref:
            return PARENT_REF + ref.path
        address = ref.address
        if address is None:
            raise SerializationError(
                f"cannot send {ref!r} to the worker process of {self.path}: it is not an "
                "actor of this system, and its own system does not listen"
            )
        return address if self.fallback is None else self.fallback.encode(ref)

    def decode(self, address: str) -> ActorRef[Any]:
        if address.startswith(PARENT_REF):
            path = address[len(PARENT_REF) :]
            found = self.system.lookup(path)
            # Gone meanwhile: a ref that looks again at each use (ActorStopped then).
            return found if found is not None else HereRef(self.system, PARENT_REF, path)
        if address == self.served:
            found = self.system.lookup(self.path)
            if found is not None:
                return found
        if self.fallback is None:
            raise SerializationError(f"cannot receive the ref {address!r} here")
        return self.fallback.decode(address)


class _WorkerRef(LocalActorRef[Any]):
    """The ref of an actor in a worker process: a message that cannot cross to
    it is a `SerializationError` here, at the sender.

    While the relay is idle (parked, nothing queued, no stop pending) and the
    caller runs on its loop, a tell or ask goes straight onto the link from
    here, in the caller's own call: encoded once (the link's own encode is the
    sender-side check), with no hop through the mailbox and the relay's task,
    and in order (nothing is ahead of it). Otherwise the message is checked
    here and goes through the mailbox (then it is encoded again by the relay)."""

    __slots__ = ("_codec", "_wrap")

    def __init__(self, slot: Slot, codec: Codec) -> None:
        super().__init__(slot)
        self._codec = codec
        # A tracing system's message waits in the mailbox with its sender's trace
        # context (the relay sends it on in a TRACED frame); else as it is.
        tracing = slot.system.tracing
        self._wrap: Any = _as_is if tracing is None else tracing.wrap

    def _idle_relay(self) -> _Relay | None:
        """The relay, if a message may bypass the mailbox now (see the class doc)."""
        relay: Any = self._slot.server
        if type(relay) is not _Relay or relay.state is not RELAYING:
            return None
        parked = relay._parked  # noqa: SLF001 (the relay's own module)
        mb = self.mailbox
        if parked is None or parked.done() or mb.queue or mb.system or mb.closed:
            return None
        return relay if _running_loop() is relay.loop else None

    async def tell(self, message: Any) -> None:
        relay = self._idle_relay()
        if relay is None:
            self._codec.encode(message)
        elif relay.send_tell(message):
            return
        await super().tell(self._wrap(message))

    def tell_nowait(self, message: Any) -> None:
        relay = self._idle_relay()
        if relay is None:
            self._codec.encode(message)
        elif relay.send_tell(message):
            return
        super().tell_nowait(self._wrap(message))

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:
        relay = self._idle_relay()
        if relay is None:
            self._codec.encode(message)
            return await super().ask(self._wrap(message), timeout)
        if timeout is not None:
            check_timeout(timeout)
        fut = relay.loop.create_future()
        if not relay.send_ask(message, fut):
            return await super().ask(self._wrap(message), timeout)
        counters = self._slot.system.counters  # as `super().ask` counts (metrics().asks)
        counters.asks += 1
        deadline = self._clock.expire(fut, timeout, "ask to ", self.path) if timeout else None
        try:
            return await fut
        except AskTimeout:
            if deadline is not None and deadline.fut is None:  # ours fired
                counters.ask_timeouts += 1
            raise
        finally:
            if deadline is not None:
                deadline.cancel()

    def ask_blocking(self, message: Any, timeout: float | None = 5.0) -> Any:
        self._codec.encode(message)
        return super().ask_blocking(self._wrap(message), timeout)


def _as_is(message: Any) -> Any:
    return message


class _Process:
    """One worker process and the parent's link to it."""

    def __init__(self, runner: _WorkerRunner, slot: Slot) -> None:
        self.runner = runner
        self.system: ActorSystem = slot.system
        self.slot = slot
        self.path = slot.path
        self.dir = tempfile.mkdtemp(prefix="mycelium-")  # mode 0700: only this user enters
        self.socket = os.path.join(self.dir, "w.sock")
        self.url = f"unix://{self.socket}"
        self.secret = secrets.token_bytes(32)
        self.proc: subprocess.Popen[bytes] | None = None
        self.node: NetworkNode | None = None
        self.actor: Any = None  # the RemoteActorRef of the served actor
        self.host: Any = None
        self.dead = False
        self.log = logs.get_logger(path=slot.path)
        self._watch: asyncio.Task[None] | None = None
        self._reports: asyncio.Task[None] | None = None
        self.figures: Figures | None = None  # the last report of this process
        self.reported = 0  # reports received
        self._closed: asyncio.Future[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    async def start(self, slot: Slot) -> None:
        executor = self.runner.executor
        args, kwargs = executor.encode_args(slot)
        boot = {
            "sys_path": [os.path.abspath(p) if p else os.getcwd() for p in sys.path],
            "contract_modules": [m for m in contract_modules() if m != "__main__"],
            "actor": _class_name(slot.actor_class),
            "args": args,
            "kwargs": kwargs,
            "path": slot.path,
            "socket": self.socket,
            "secret": self.secret,
            "cpus": executor.cpus,
            "mailbox": WORKER_MAILBOX,
            "log_level": logging.getLogger().getEffectiveLevel(),
            # the worker's own system watches its loop as the parent's does
            "stall_warning": self.system.stall_warning,
            "slow_handler": self.system.slow_handler_setting,
            # a tracing parent's worker traces too: its handlers' spans continue the sender's
            "tracing": self.system.tracing is not None,
            # The worker runs the same kind of loop as this one (uvloop under uvloop).
            "loop": type(asyncio.get_running_loop()).__module__.partition(".")[0],
            # Without metrics here, the worker keeps and reports none.
            "metrics": self.system.metrics_on,
            "report_interval": protocol.REPORT_INTERVAL,
        }
        self.proc = proc = subprocess.Popen(
            [self.runner.python, "-m", "mycelium_actors.workers.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_child_env(executor.env),
            close_fds=True,
        )
        self.log = self.log.bind(pid=proc.pid)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        threading.Thread(
            target=_read_stderr,
            args=(proc.stderr, asyncio.get_running_loop(), self.path, proc.pid),
            name=f"mycelium-stderr-{proc.pid}",
            daemon=True,
        ).start()
        write_bootstrap(proc.stdin, boot)  # stdin stays open: its EOF tells the worker we died
        line = await asyncio.to_thread(proc.stdout.readline)
        if line != READY:
            code = await asyncio.to_thread(proc.wait)
            self.dead = True
            raise ActorStopped(
                f"{self.path}: the worker process {proc.pid} exited before it was ready "
                f"(exit code {code}; its stderr is in the log as worker.stderr)"
            )
        self.node = NetworkNode(
            self.system,
            NodeOptions(
                listen=None,
                secret=self.secret,
                heartbeat_timeout=NO_HEARTBEAT,
                max_frame=DEFAULT_MAX_FRAME,
                serialize_local=False,
            ),
        )
        refs = _ParentRefs(self.system, self.url, slot.path)
        refs.fallback = self.node.codec.refs
        self.node.codec.refs = RefHook(refs.encode, refs.decode)
        self.actor = await self.node.remote(self.url, slot.path)
        self.host = await self.node.remote(self.url, HOST)
        exits = await self.node.remote(self.url, EXITS)
        self._watch = asyncio.get_running_loop().create_task(self._watch_exits(exits))
        if self.system.metrics_on:
            figures = await self.node.remote(self.url, FIGURES)
            self._reports = asyncio.get_running_loop().create_task(self._watch_figures(figures))
        self.log.info("worker.started")

    async def _watch_exits(self, exits: Any) -> None:
        """The long poll: each answer is an incarnation that ended on its own; a
        lost connection is the process gone."""
        while True:
            try:
                kind, error, escalate = await _control_ask(exits, NextExit())
            except (TransportError, ActorStopped):
                break
            if kind == CLOSING:
                return  # an orderly shutdown: close() reaps the process
            if kind == STOP:
                self.runner.stop_requested(self)
                continue
            exc = exceptions.decode_error(error) if error else None
            self.runner.worker_exited(self, Exit(kind, exc, escalate=bool(escalate)))
        self.dead = True
        self._messages_died()
        self.runner.process_died(self)

    async def _watch_figures(self, figures: Any) -> None:
        """The other long poll: each answer is the actor's figures in the worker.
        It ends with the link (the exits poll sees the death) or the worker's
        shutdown (None)."""
        while True:
            try:
                report = await _control_ask(figures, NextFigures())
            except (TransportError, ActorStopped):
                return
            except Exception as exc:  # a report that does not decode: no more are read
                self.log.warning("worker.figures_refused", error=repr(exc))
                return
            if not isinstance(report, Figures):
                return  # None: the worker shuts down
            self._reported(report)

    def _reported(self, report: Figures) -> None:
        """Add what changed since this process's last report to the slot's
        figures (so they cumulate across processes, API.md 11: since the slot
        was created); the depth there is the latest."""
        last = self.figures
        before = last.counts if last is not None else [0] * (len(BOUNDS) + 1)
        failed = last.failed if last is not None else 0
        total = last.sum if last is not None else 0.0
        if (
            len(report.counts) != len(before)
            or report.failed < failed
            or any(now < then for now, then in zip(report.counts, before, strict=True))
        ):
            self.log.warning("worker.figures_refused", reason="not a later report of this worker")
            return
        stats = self.slot.stats
        if type(stats) is not ReportedStats:
            stats = self.slot.stats = ReportedStats()
        counts = stats.counts
        assert counts is not None  # a ReportedStats keeps every bucket
        for index, (now, then) in enumerate(zip(report.counts, before, strict=True)):
            counts[index] += now - then
        stats.handled += sum(report.counts) - sum(before)
        stats.sum += report.sum - total
        stats.failed += report.failed - failed
        stats.high = max(stats.high, report.high)
        stats.mailbox = report.mailbox
        self.figures = report
        self.reported += 1

    def _messages_died(self) -> None:
        """The process is gone, and what waited in its mailbox with it (unless a
        later process of the slot reports its own depth already)."""
        stats = self.slot.stats
        current = self.runner.process
        if type(stats) is ReportedStats and (current is self or current is None):
            stats.mailbox = 0

    async def control(self, message: Any) -> Any:
        """Ask the worker's host; the process dying meanwhile is `ActorStopped`."""
        try:
            return await _control_ask(self.host, message)
        except TransportError as exc:
            raise ActorStopped(f"{self.path}: the worker process died ({exc})") from None

    def kill(self) -> None:
        """SIGKILL, now (a stuck start, a kill, a process the link lost)."""
        self.dead = True
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                proc.kill()
            except ProcessLookupError:
                pass

    async def close(self) -> None:
        """End the process: close the link and its stdin (the worker then closes
        its system and exits), then SIGTERM, then SIGKILL, each after
        `EXIT_GRACE`; reap it and remove its directory."""
        if self._closed is not None:
            await asyncio.shield(self._closed)
            return
        self._closed = asyncio.get_running_loop().create_future()
        try:
            await self._close()
        finally:
            self._closed.set_result(None)

    async def _close(self) -> None:
        proc = self.proc
        if self._watch is not None:
            self._watch.cancel()  # how the process ends is ours to see from here
        if self._reports is not None:
            self._reports.cancel()
        if proc is not None:
            # An orderly end: our side of the link closes first (so its closing is
            # no news to log), then stdin: at its EOF the worker closes its system
            # and exits. Past the grace, SIGTERM, then SIGKILL.
            await self._close_link()
            if proc.stdin is not None:
                try:
                    proc.stdin.close()
                except OSError:
                    pass
            if not await _exited(proc, EXIT_GRACE):
                proc.terminate()
                if not await _exited(proc, EXIT_GRACE):
                    proc.kill()
                    await asyncio.to_thread(proc.wait)
                    self.log.warning("worker.killed", reason="it ignored SIGTERM")
            if proc.stdout is not None:
                proc.stdout.close()
        self.dead = True
        self._messages_died()
        await self._close_link()
        shutil.rmtree(self.dir, ignore_errors=True)

    async def _close_link(self) -> None:
        node, self.node = self.node, None
        if node is not None:
            await node.aclose()

    def stats(self) -> tuple[float, int] | None:
        """(CPU seconds, RSS bytes) of the process, from psutil."""
        if self.proc is None or self.dead:
            return None
        try:
            p = psutil.Process(self.proc.pid)
            with p.oneshot():
                times = p.cpu_times()
                return float(times.user + times.system), int(p.memory_info().rss)
        except psutil.Error:
            return None


async def _control_ask(ref: Any, message: Any) -> Any:
    """Ask one of the worker's control actors (no deadline: a death ends it).
    Sent with `ask_nowait`: the link's own asks are not the system's to count
    (`metrics().asks` counts its callers' asks)."""
    answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    ref.ask_nowait(message, answer)
    return await answer


async def _exited(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    try:
        await asyncio.to_thread(proc.wait, timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def _read_stderr(stream: Any, loop: asyncio.AbstractEventLoop, path: str, pid: int) -> None:
    """In a thread: each line of the worker's stderr is logged in the parent."""
    decoder = msgspec.json.Decoder()
    with stream:
        for raw in stream:
            text = raw.decode(errors="replace").rstrip("\n")
            try:
                loop.call_soon_threadsafe(_log_line, decoder, text, path, pid)
            except RuntimeError:
                return  # the parent's loop is closed: nobody to log to


def _log_line(decoder: Any, text: str, path: str, pid: int) -> None:
    if text.startswith(LOG_MARK):
        try:
            level, name, message = decoder.decode(text[len(LOG_MARK) :])
        except (msgspec.DecodeError, ValueError):
            pass
        else:
            if name == logs.NAME:
                logs.get_logger(pid=pid, worker=path).log(int(level), str(message))
            else:
                logging.getLogger(str(name)).log(
                    int(level), "%s [pid=%s]", message, pid, extra={"pid": pid, "worker": path}
                )
            return
    logs.get_logger().warning("worker.stderr", path=path, pid=pid, line=text)


class _WorkerRunner(Runner):
    """One slot's worker process, kept across restarts (a new one after a death)."""

    serves_elsewhere = True

    def __init__(self, executor: Subprocess, path: str, python: str) -> None:
        self.executor = executor
        self.path = path
        self.python = python
        self.loop = asyncio.get_running_loop()
        self.thread_id = threading.get_ident()
        self.process: _Process | None = None
        self.relaying: _Relay | None = None
        self._closing: list[asyncio.Task[None]] = []

    def submit(self, coro: Any) -> asyncio.Future[Any]:
        return self.loop.create_task(coro)

    def describe(self) -> tuple[str | None, int | None, list[int] | None]:
        cpus = self.executor.cpus
        return None, None, list(cpus) if cpus is not None else None

    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None and not process.dead else None

    def cpu_seconds(self) -> float | None:
        stats = self.process.stats() if self.process is not None else None
        return stats[0] if stats is not None else None

    def rss(self) -> int | None:
        stats = self.process.stats() if self.process is not None else None
        return stats[1] if stats is not None else None

    # -- the kernel's seam: the stand-in and the relay --------------------------------

    def stand_in(self, slot: Slot) -> Actor:
        return _StandIn(self, slot)

    def relay(
        self,
        slot: Slot,
        instance: Actor,
        done: asyncio.Future[Exit],
        context: contextvars.Context,
        loop: asyncio.AbstractEventLoop,
    ) -> Any:
        process = self.process
        assert process is not None
        relay = _Relay(self, process, slot, instance, done, context, loop)
        self.relaying = relay
        return relay

    # -- the process ---------------------------------------------------------------

    async def start_incarnation(self, slot: Slot) -> None:
        """Start the process if none runs, then the actor in it (construct, on_start)."""
        limit = self.executor.start_timeout
        process = self.process
        try:
            async with asyncio.timeout(limit):
                if process is None or process.dead:
                    if process is not None:
                        self._close_in_background(process)
                    process = self.process = _Process(self, slot)
                    await process.start(slot)
                spec = slot.spec
                names = (
                    [_names(spec.resume_on), _names(spec.stop_on), _names(spec.escalate_on)]
                    if isinstance(spec, Child)
                    else [[], [], []]
                )
                status, error = await process.control(Start(*names))
        except TimeoutError:
            if process is not None:
                process.kill()
            raise TimeoutError(
                f"{slot.path}: the worker did not start within {limit}s (Subprocess start_timeout)"
            ) from None
        if status != "ok":
            raise exceptions.decode_error(error)

    async def stop_incarnation(self, drain: bool) -> None:
        """`on_stop` in the worker (after what is queued there, if `drain`); past
        the slot's shutdown time the stand-in's task is cancelled: terminate."""
        process = self.process
        if process is None or process.dead:
            return
        try:
            await process.control(Stop(drain))
        except ActorStopped:
            return  # it died meanwhile
        except asyncio.CancelledError:
            process.kill()  # past the shutdown time: the worker's state is unknown
            self._close_in_background(process)
            raise

    def worker_exited(self, process: _Process, exit: Exit) -> None:
        relay = self.relaying
        if relay is not None and relay.process is process:
            relay.ended_there(exit)

    def stop_requested(self, process: _Process) -> None:
        """`ref.stop()` on the actor inside the worker: stop the slot for good,
        as a `ref.stop()` here would (through its supervisor, if any)."""
        relay = self.relaying
        if relay is not None and relay.process is process and relay.state is RELAYING:
            system = relay.slot.system
            system.run_in_background(system.stop_slot(relay.slot))

    def process_died(self, process: _Process) -> None:
        process.kill()  # reaped by close()
        relay = self.relaying
        if relay is not None and relay.process is process:
            relay.killed()
        self._close_in_background(process)

    def kill_process(self) -> None:
        process = self.process
        if process is not None:
            process.kill()

    def _close_in_background(self, process: _Process) -> None:
        task = self.loop.create_task(process.close())
        self._closing.append(task)
        task.add_done_callback(self._closing.remove)

    async def aclose(self) -> None:
        """The actor stopped for good: no process is left behind."""
        process, self.process = self.process, None
        if process is not None:
            await process.close()
        if self._closing:
            await asyncio.wait(list(self._closing), timeout=4 * EXIT_GRACE)


def _names(classes: Any) -> list[str]:
    return [f"{cls.__module__}:{cls.__qualname__}" for cls in classes or ()]


class _StandIn(Actor):
    """The parent's side of an incarnation: its hooks start and stop the real one."""

    def __init__(self, runner: _WorkerRunner, slot: Slot) -> None:
        super().__init__()
        self.runner = runner
        self.slot = slot
        self.ended = False  # the worker's incarnation ended on its own (reported)

    async def on_start(self) -> None:
        await self.runner.start_incarnation(self.slot)

    async def on_stop(self) -> None:
        if not self.ended:
            await self.runner.stop_incarnation(drain=self.slot.mailbox.closed)


def _died(path: str) -> ActorStopped:
    return ActorStopped(f"{path}: the worker process died while handling it")


class _Pending:
    """An ask the relay sent: where the peer puts its reply (or the link's
    loss, which is `ActorStopped` for the asker). Counts the relay's asks in
    flight."""

    __slots__ = ("relay", "reply")

    def __init__(self, relay: _Relay, reply: asyncio.Future[Any]) -> None:
        self.relay = relay
        self.reply = reply

    def done(self) -> bool:
        return self.reply is None

    def cancelled(self) -> bool:
        return False

    def set_result(self, value: Any) -> None:
        reply = self._answered()
        if type(reply) is asyncio.Future and reply.get_loop() is self.relay.loop:
            if reply.done():
                return  # the asker gave up
            resume(reply, value)  # from the peer's read: the asker's step runs now
        else:
            settle(reply, value)

    def set_exception(self, exc: BaseException) -> None:
        reply = self._answered()
        if isinstance(exc, TransportError):
            exc = _died(self.relay.slot.path)
        settle(reply, exc=exc)

    def _answered(self) -> asyncio.Future[Any]:
        reply, self.reply = self.reply, None  # type: ignore[assignment]
        relay = self.relay
        relay.asks -= 1
        if not relay.asks and relay.slot.handling is relay:
            relay.slot.handling = None
        return reply


class _Relay:
    """The mailbox's consumer while an incarnation runs in the worker: a task
    that sends the messages in order, tells and asks pipelined within the
    protocol's window (an ask's reply settles its asker when it comes, by
    request id), and ends like a `Server` ends, through `slot.serving_ended`."""

    def __init__(
        self,
        runner: _WorkerRunner,
        process: _Process,
        slot: Slot,
        instance: Actor,
        done: asyncio.Future[Exit],
        context: contextvars.Context,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.runner = runner
        self.process = process
        self.slot = slot
        self.instance = instance
        self.done = done
        self.context = context
        self.loop = loop
        self.mailbox = slot.mailbox
        self.state: str = RELAYING
        self.asks = 0  # asks sent and not answered yet
        self._parked: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    def send_tell(self, message: Any) -> bool:
        """Write a tell now (the mailbox bypassed); False if it must go through
        the mailbox after all (the window is full, the link is down).
        `SerializationError` for a message that cannot cross."""
        try:
            self.process.actor.tell_nowait(message)
        except (MailboxFull, TransportError):
            return False
        return True

    def send_ask(self, message: Any, reply: asyncio.Future[Any]) -> bool:
        """Write an ask now; its reply settles `reply`. As `send_tell`."""
        try:
            self.process.actor.ask_nowait(message, _Pending(self, reply))
        except (MailboxFull, TransportError):
            return False
        self.asks += 1
        self.slot.handling = self
        return True

    def begin(self) -> None:
        if self.process.dead:
            self.killed()
            return
        self._task = self.loop.create_task(self._pump(), context=self.context)

    async def _pump(self) -> None:
        mb = self.mailbox
        slot = self.slot
        system = slot.system
        target = self.process.actor
        draining = False
        exit: Exit | None = None
        while self.state is RELAYING:
            if mb.system:
                signal = mb.next_signal()
                if signal is STOP_NOW:
                    exit = SHUTDOWN
                    break
                if signal is STOP_SELF:
                    exit = NORMAL
                    break
                if signal is STOP_DRAIN:
                    draining = True
                continue
            if mb.queue:
                message, reply = mb.take()
                try:
                    if reply is None:
                        try:
                            target.tell_nowait(message)
                        except MailboxFull:  # the window is full: wait for credit
                            await target.tell(message)
                    elif not reply.done():  # else the asker gave up meanwhile
                        pending = _Pending(self, reply)
                        try:
                            target.ask_nowait(message, pending)
                        except MailboxFull:
                            await target.room()
                            target.ask_nowait(message, pending)
                        self.asks += 1
                        slot.handling = self  # asks in flight there (what least_busy counts)
                except SerializationError as exc:
                    if reply is not None:
                        settle(reply, exc=exc)
                    else:
                        system.dead_letter(slot.path, message, "unserializable")
                        system.log_event("worker.refused", slot.path, error=str(exc))
                except TransportError:
                    if reply is not None:
                        settle(reply, exc=_died(slot.path))
                    else:
                        system.dead_letter(slot.path, message, "connection_lost")
                continue
            if draining:
                exit = SHUTDOWN
                break
            parked = mb.park()
            if parked is not None:
                self._parked = parked
                await parked
                self._parked = None
        if self.state is RELAYING:
            self.state = DONE
            self._serving_ended(exit)

    def _serving_ended(self, exit: Exit | None) -> None:
        """`slot.serving_ended`, from a plain loop callback as the kernel expects
        (no task running: it may start the end of the incarnation as an eager
        task in the incarnation's context, which fails inside a running task on
        3.12 and later: the pump's own, or the long poll's)."""
        if asyncio.current_task(self.loop) is None:
            self.slot.serving_ended(self, exit)  # type: ignore[arg-type]
        else:
            self.loop.call_soon(self.slot.serving_ended, self, exit)  # type: ignore[arg-type]

    def _stop_pump(self) -> None:
        """The incarnation ended from outside the pump: wake it if it is parked
        (it then sees DONE and returns; an ask it awaits still gets its reply)."""
        self.state = DONE
        parked = self._parked
        if parked is not None and not parked.done():
            parked.set_result(None)

    def ended_there(self, exit: Exit) -> None:
        """The worker's incarnation ended on its own (a crash, context.stop())."""
        if self.state is not RELAYING:
            return
        self._stop_pump()
        assert isinstance(self.instance, _StandIn)
        self.instance.ended = True
        self._serving_ended(exit)

    def killed(self) -> None:
        """The process is gone: the incarnation was killed."""
        if self.state is not RELAYING:
            return
        self._stop_pump()
        assert isinstance(self.instance, _StandIn)
        self.instance.ended = True
        self._serving_ended(None)

    def kill(self) -> None:
        """The slot kills the incarnation (past its shutdown time): the process goes."""
        if self.state is DONE:
            self.slot.cancel_task()  # the end phase (on_stop) runs as the slot's task
            return
        self.runner.kill_process()
        self.killed()
