"""The `mycelium-actors` command line: its commands and options (`run.py` runs a tree).

Exit codes: 0 after a signal-driven shutdown, 1 when the tree fails to start
or its root gives up, 2 for a target that does not load or a bad option, 130
on a second signal.
"""

from __future__ import annotations

import asyncio
import math
import platform
import sys
from importlib.metadata import version
from typing import Any

import click
import structlog

from ..errors import MyceliumError
from .contracts import contracts
from .loops import loop_factory, loop_option
from .render import render_spec, rich_spec
from .run import (
    LOG_LEVELS,
    configure_logging,
    fail,
    live_tree,
    load_tree,
    read_secret,
    run_tree,
    run_until_done,
    watch_tree,
)
from .tls import cert_options, tls_contexts


def _positive_seconds(ctx: click.Context, param: click.Parameter, value: float | None) -> Any:
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a positive, finite number of seconds, not {value:g}")
    return value


@click.group()
@click.version_option(package_name="mycelium-actors")
def main() -> None:
    """Run and inspect mycelium-actors supervision trees."""


main.add_command(contracts)
_target = click.argument("target")
_factory = click.option(
    "--factory", is_flag=True, help="TARGET is a function that builds the tree."
)
_app_dir = click.option(
    "--app-dir", default=".", show_default=True, help="Folder added to the import path."
)
_secret_env = click.option(
    "--secret-env",
    metavar="VAR",
    help="Read the shared secret of the nodes from the environment variable VAR.",
)


@main.command()
@_target
@_factory
@_app_dir
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default="console",
    show_default=True,
    help="Log lines for people, or one JSON object per line (to stderr).",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS),
    default="info",
    show_default=True,
    help="The least severe events shown; debug adds crash tracebacks.",
)
@click.option(
    "--status-every",
    type=float,
    default=None,
    callback=_positive_seconds,
    help="Print the live tree every N s (N > 0).",
)
@click.option(
    "--listen",
    metavar="URL",
    help="Listen for other nodes at URL: tcp://host:port, unix:///path/x.sock, "
    "or nats://host:port to join a NATS cluster under the tree's name.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="N",
    help="Serve Prometheus metrics at http://127.0.0.1:N/metrics (0 picks a port; "
    "needs the `metrics` extra).",
)
@_secret_env
@cert_options(serving=True)
@loop_option
def run(
    target: str,
    factory: bool,
    app_dir: str,
    log_format: str,
    log_level: str,
    status_every: float | None,
    listen: str | None,
    metrics_port: int | None,
    secret_env: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_ca: str | None,
    tls_client_ca: str | None,
    loop_name: str,
) -> None:
    """Start the tree TARGET (module:attr) and run it until SIGINT or SIGTERM."""
    tree = load_tree(target, factory, app_dir)
    secret = read_secret(secret_env)
    ssl = tls_contexts(tls_cert, tls_key, tls_ca, tls_client_ca, serving=True)
    loop_name, new_loop = loop_factory(loop_name)
    configure_logging(log_format, log_level)
    structlog.get_logger("mycelium_actors.cli").debug(
        "cli.options",
        target=target,
        app_dir=app_dir,
        listen=listen,
        secret="set" if secret else None,
        loop=loop_name,
        python=platform.python_version(),
        version=version("mycelium-actors"),
    )
    main = run_tree(tree, status_every, listen, secret, ssl, metrics_port)
    raise SystemExit(run_until_done(main, new_loop=new_loop))


@main.command()
@click.argument("url")
@_secret_env
@cert_options(serving=False)
@click.option("--json", "as_json", is_flag=True, help="Print the tree as JSON, for scripts.")
@click.option("--watch", is_flag=True, help="Redraw the live tree until Ctrl-C.")
@click.option(
    "--interval",
    type=float,
    default=1.0,
    show_default=True,
    callback=_positive_seconds,
    metavar="S",
    help="Seconds between two drawings with --watch.",
)
@loop_option
def status(
    url: str,
    secret_env: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_ca: str | None,
    as_json: bool,
    watch: bool,
    interval: float,
    loop_name: str,
) -> None:
    """Print the live tree of the node listening at URL (depth, handled, p99
    handler time); with --watch, redraw it every --interval seconds."""
    secret = read_secret(secret_env)
    ssl = tls_contexts(tls_cert, tls_key, tls_ca, serving=False)
    _, new_loop = loop_factory(loop_name)
    configure_logging("console", "error")  # a refusal is the one `error:` line below
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            if watch:
                try:
                    runner.run(watch_tree(url, secret, ssl, as_json, interval))
                except KeyboardInterrupt:
                    raise SystemExit(0) from None
            drawing = runner.run(live_tree(url, secret, ssl, as_json))
    except (MyceliumError, TimeoutError, ValueError) as exc:
        fail(str(exc) or f"{url} did not answer in time", code=1)
    click.echo(drawing)


@main.command()
@_target
@_factory
@_app_dir
def tree(target: str, factory: bool, app_dir: str) -> None:
    """Print the declared tree TARGET without starting it (with rich on a terminal)."""
    spec = load_tree(target, factory, app_dir)
    if sys.stdout.isatty():
        try:
            from rich.console import Console
        except ImportError:
            pass
        else:
            Console().print(rich_spec(spec))
            return
    click.echo(render_spec(spec))
