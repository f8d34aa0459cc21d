"""The certificate options of `run` and `status`: PEM files -> the `ssl.SSLContext`s
that `ActorSystem(ssl=...)` takes (docs/cli.md#tls)."""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .run import fail

F = TypeVar("F", bound=Callable[..., Any])

_FILE = click.Path(dir_okay=False)


def cert_options(*, serving: bool) -> Callable[[F], F]:
    """`--tls-cert`, `--tls-key`, `--tls-ca`; with `serving` (run), `--tls-client-ca` too."""
    options = [
        click.option(
            "--tls-cert",
            type=_FILE,
            metavar="FILE",
            help=(
                "This node's certificate chain (PEM): it listens on tcp:// with TLS, "
                "and shows it to nodes that want a client certificate."
                if serving
                else "A client certificate (PEM) for a node with mutual TLS."
            ),
        ),
        click.option(
            "--tls-key",
            type=_FILE,
            metavar="FILE",
            help="The private key of --tls-cert, if it is not in that file.",
        ),
        click.option(
            "--tls-ca",
            type=_FILE,
            metavar="FILE",
            help="CA certificates (PEM) to check the nodes it connects to (default: the system's).",
        ),
    ]
    if serving:
        options.append(
            click.option(
                "--tls-client-ca",
                type=_FILE,
                metavar="FILE",
                help="Mutual TLS: connecting nodes must show a certificate from these CAs.",
            )
        )

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def tls_contexts(
    cert: str | None,
    key: str | None,
    ca: str | None,
    client_ca: str | None = None,
    *,
    serving: bool,
) -> tuple[ssl.SSLContext, ...] | None:
    """The contexts for `ActorSystem(ssl=...)` (None: no option given).

    With any option, connecting to tcp:// is TLS (checked against `ca`, else
    the system's CAs, showing `cert` if given); with `serving` and `cert`,
    listening on tcp:// is TLS too (wanting a client certificate from
    `client_ca` if given). Exits 2 with one line for options that do not fit
    together or a file that does not load.
    """
    if key is not None and cert is None:
        fail("--tls-key needs --tls-cert")
    if client_ca is not None and cert is None:
        fail("--tls-client-ca needs --tls-cert (mutual TLS is for a node that listens with TLS)")
    if cert is None and ca is None:
        return None
    client = _loaded("--tls-ca", ca, lambda: ssl.create_default_context(cafile=ca))
    if cert is not None:
        _loaded("--tls-cert", cert, lambda: client.load_cert_chain(cert, key))
    if not serving or cert is None:
        return (client,)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _loaded("--tls-cert", cert, lambda: server.load_cert_chain(cert, key))
    if client_ca is not None:
        server.verify_mode = ssl.CERT_REQUIRED
        _loaded("--tls-client-ca", client_ca, lambda: server.load_verify_locations(client_ca))
    return (server, client)


T = TypeVar("T")


def _loaded(option: str, path: str | None, load: Callable[[], T]) -> T:
    try:
        return load()
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        if isinstance(exc, ssl.SSLError) and "PEM lib" in str(exc):  # OpenSSL's "no PEM here"
            reason = "no PEM certificate with its private key (the key may need --tls-key)"
        else:
            reason = re.sub(r" \(_ssl\.c:\d+\)$", "", getattr(exc, "strerror", None) or str(exc))
        fail(f"{option} {path}: {reason}")
