"""Running a tree from the command line: load it, configure logging, serve until
a signal, shut down in order, and the exit code that says how it ended."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import ssl as _ssl
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

import attrs
import click
import structlog

from .. import metrics
from ..errors import MyceliumError
from ..kernel.actor import Actor
from ..kernel.system import ActorSystem
from ..supervision.spec import Supervisor
from .loader import LoadError, load_target
from .render import render_live_tree

LOG_LEVELS = ["debug", "info", "warning", "error"]


def fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def load_tree(target: str, factory: bool, app_dir: str) -> Supervisor:
    """Load the tree named by `target`; exits 2 with one line on any load problem."""
    try:
        obj = load_target(target, app_dir)
    except LoadError as exc:
        fail(str(exc))
    except Exception:
        traceback.print_exc()
        fail(f"importing {target.partition(':')[0]!r} raised (traceback above)")
    if factory:
        if not callable(obj):
            fail(f"{target!r} is not callable, so --factory cannot call it")
        try:
            obj = obj()
        except Exception:
            traceback.print_exc()
            fail(f"the factory {target!r} raised (traceback above)")
    if not isinstance(obj, Supervisor):
        fail(f"{target!r} is {_what(obj)}, not a Supervisor tree{_hint(obj)}")
    return obj


def _what(obj: object) -> str:
    if isinstance(obj, type) and issubclass(obj, Actor):
        return "an Actor class"
    name = type(obj).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def _hint(obj: object) -> str:
    # An Actor class is callable too, but --factory would build an actor, not a tree.
    if isinstance(obj, type) and issubclass(obj, Actor):
        return f" (wrap it: Supervisor('app', children=[Child({obj.__name__})]))"
    return " (use --factory for a function that builds it)" if callable(obj) else ""


def configure_logging(log_format: str, level: str) -> None:
    """Structlog to stderr: console lines, or one JSON object per line.

    An actor crash is expected in a supervised tree: it is one line (its
    `exc_type`, `error` and `restarts`) unless the level is debug, which adds
    the traceback. Tracebacks are plain text, never with local variables
    (rich's would print them, secrets included, and take tens of ms each).
    """
    debug = level == "debug"
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    if not debug:
        processors.append(_crash_in_one_line)
    if log_format == "json":
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
            )
        )
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def _crash_in_one_line(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    if event.get("event") == "actor.crashed":
        event.pop("exc_info", None)  # exc_type and error say it; --log-level debug shows it all
    return event


async def run_tree(
    tree: Supervisor,
    status_every: float | None,
    listen: str | None = None,
    secret: str | None = None,
    ssl: tuple[_ssl.SSLContext, ...] | None = None,
    metrics_port: int | None = None,
) -> int:
    """Bind (with `listen`), start `tree`, serve until a signal or a give-up; the exit status.

    With `metrics_port`, Prometheus metrics are served on loopback (logged as
    `metrics.listening` with `url`) before the tree starts; a bind failure exits 1."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0
    system = ActorSystem(tree.name, listen=listen, secret=secret, ssl=ssl)

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            _exit_now()
        # A second signal must act even if shutdown blocks the loop in sync code:
        # a plain handler runs in the main thread between bytecodes.
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: _exit_now())
        stop.set()

    def show_status() -> None:
        sys.stderr.write(render_live_tree(system.tree()) + "\n")
        sys.stderr.flush()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    loop.add_signal_handler(signal.SIGUSR1, show_status)
    async with contextlib.AsyncExitStack() as stack:
        try:  # binds the listener (and logs node.listening) before the tree starts
            await stack.enter_async_context(system)
            if metrics_port is not None:
                await metrics.serve(system, port=metrics_port)
        except (MyceliumError, ValueError, OSError) as exc:
            click.echo(f"error: {exc}", err=True)
            return 1
        status = await _serve(system, tree, stop, status_every, show_status)
    if status == 0 and system.gave_up is not None:
        click.echo(f"error: {system.gave_up}", err=True)
        return 1
    return status


async def _serve(
    system: ActorSystem,
    tree: Supervisor,
    stop: asyncio.Event,
    status_every: float | None,
    show_status: Callable[[], None],
) -> int:
    loop = asyncio.get_running_loop()
    log = structlog.get_logger("mycelium_actors.cli")
    starting = loop.create_task(system.start(tree))
    signalled = loop.create_task(stop.wait())
    await asyncio.wait({starting, signalled}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():  # a signal while on_start hangs: abandon the start
        starting.cancel()
        await asyncio.wait({starting})
        return 0
    signalled.cancel()
    if starting.exception() is not None:
        exc = starting.exception()
        if not isinstance(exc, MyceliumError):
            raise exc  # type: ignore[misc]
        click.echo(f"error: {exc}", err=True)
        return 1
    # The loop it really runs on (`uvloop` or `asyncio`), not the one asked for.
    running_on = type(loop).__module__.partition(".")[0]
    log.info("cli.running", tree=tree.name, pid=os.getpid(), loop=running_on)
    ticker = None
    if status_every is not None:
        ticker = loop.create_task(_tick(status_every, show_status))
    stopped = loop.create_task(system.wait_stopped())
    signalled = loop.create_task(stop.wait())
    await asyncio.wait({stopped, signalled}, return_when=asyncio.FIRST_COMPLETED)
    for task in (ticker, stopped, signalled):
        if task is not None:
            task.cancel()
    log.info("cli.stopping", reason="signal" if stop.is_set() else "stopped")
    return 0


async def live_tree(
    url: str,
    secret: str | None,
    ssl: tuple[_ssl.SSLContext, ...] | None = None,
    as_json: bool = False,
) -> str:
    """The live tree of the node at `url`, drawn as SIGUSR1 draws it (or as JSON:
    a list of nodes with the fields of `TreeNode`); `MyceliumError` (or
    `TimeoutError`) when it cannot be read."""
    async with ActorSystem("status", secret=secret, ssl=ssl) as system:
        nodes = await system.remote_tree(url)
    if as_json:
        return json.dumps([attrs.asdict(node) for node in nodes], indent=2)
    return render_live_tree(nodes)


async def watch_tree(
    url: str,
    secret: str | None,
    ssl: tuple[_ssl.SSLContext, ...] | None,
    as_json: bool,
    interval: float,
) -> None:
    """`status --watch`: redraw the live tree of the node at `url` every `interval`
    seconds until cancelled (Ctrl-C), over one connection. On a terminal each
    drawing replaces the last; otherwise each starts with its header line (with
    `--json`, one JSON document per line). `MyceliumError` (or `TimeoutError`)
    when the node cannot be read."""
    clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() and not as_json else ""
    async with ActorSystem("status", secret=secret, ssl=ssl) as system:
        while True:
            nodes = await system.remote_tree(url)
            if as_json:
                text = json.dumps([attrs.asdict(node) for node in nodes])
            else:
                header = f"{url}  {time.strftime('%H:%M:%S')}  every {interval:g}s (Ctrl-C stops)"
                text = f"{clear}{header}\n{render_live_tree(nodes)}"
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            await asyncio.sleep(interval)


def read_secret(var: str | None) -> str | None:
    """The secret in the environment variable `var` (None without `--secret-env`);
    exits 2 with one line when it is unset or empty."""
    if var is None:
        return None
    value = os.environ.get(var)
    if not value:
        fail(f"--secret-env {var}: the environment variable {var} is {_unset(value)}")
    return value


def _unset(value: str | None) -> str:
    return "not set" if value is None else "empty"


def run_until_done(
    main: Coroutine[Any, Any, int],
    grace: float = 1.0,
    new_loop: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
) -> int:
    """`asyncio.run` on a loop from `new_loop`, except that a task ignoring
    cancellation cannot keep the process.

    asyncio.run cancels what is left and waits for all of it, forever. By then the
    system has given each actor its shutdown time plus `kill_grace` and logged
    `actor.abandoned`; leftovers get one more cancel and `grace` seconds.
    """
    loop = new_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_leftovers(loop, grace)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_leftovers(loop: asyncio.AbstractEventLoop, grace: float) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.wait(tasks, timeout=grace))
    abandoned = {id(task) for task in tasks if not task.done()}

    # An abandoned task is destroyed pending with the loop; it was logged already.
    def report(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if id(context.get("task")) not in abandoned:
            loop.default_exception_handler(context)

    loop.set_exception_handler(report)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "task failed during shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )


def _exit_now() -> None:
    sys.stderr.write("second signal: exiting at once\n")
    sys.stderr.flush()
    os._exit(130)


async def _tick(every: float, show: Any) -> None:
    while True:
        await asyncio.sleep(every)
        show()
