"""TLS on tcp:// (API.md section 6, docs/remote.md#tls): `ActorSystem(..., ssl=...)`
with trustme certificates, over real TCP on 127.0.0.1."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from certs import Certs
from natsserver import shared

from contracts.probe import Add, Echo, Greet
from mycelium_actors import ActorSystem, TransportError
from mycelium_actors.testing import capture_events, events_named

from .nodeapp import Counter

TCP = "tcp://127.0.0.1:0"


@pytest.fixture(scope="module")
def certs() -> Certs:
    return Certs()


@pytest.fixture
def node(certs: Certs) -> Callable[..., AbstractAsyncContextManager[ActorSystem]]:
    """A listening node "b" with a Counter at /c; `ssl`: its contexts (default:
    a server context, and a client context trusting our CA); on tcp:// unless
    `listen` says otherwise."""

    @asynccontextmanager
    async def start(ssl: Any = "tls", **options: Any) -> AsyncIterator[ActorSystem]:
        if ssl == "tls":
            ssl = (certs.server_context(), certs.client_context())
        options.setdefault("listen", TCP)
        async with ActorSystem("b", ssl=ssl, **options) as system:
            await system.spawn(Counter, name="c")
            yield system

    return start


async def ask_echo(node: ActorSystem, **caller: Any) -> Any:
    async with ActorSystem("a", **caller) as a:
        ref = await a.remote(node.address, "/c")
        await ref.tell(Add(1))
        return await ref.ask(Echo("sealed"))


async def test_a_round_trip_over_tls(node, certs: Certs) -> None:
    async with node() as b:
        assert b.address is not None and b.address.startswith("tcp://127.0.0.1:")
        assert await ask_echo(b, ssl=certs.client_context()) == "sealed"


async def test_tls_nodes_talk_both_ways(node, certs: Certs) -> None:
    """A reply-to ref crosses back: the server connects to the client, with TLS too."""
    async with node() as b:
        both = (certs.server_context(), certs.client_context())
        async with ActorSystem("a", listen=TCP, ssl=both) as a:
            here = await a.spawn(Counter, name="here")
            ref = await a.remote(b.address, "/c")
            assert await ref.ask(Greet(reply_to=here, text="back")) == "back"


@pytest.mark.parametrize(
    ("with_cert", "connects"), [(True, True), (False, False)], ids=["client cert", "none"]
)
async def test_mutual_tls_wants_a_client_certificate(
    node, certs: Certs, with_cert: bool, connects: bool
) -> None:
    async with node(ssl=certs.server_context(mutual=True)) as b:
        caller = {"ssl": certs.client_context(with_cert=with_cert)}
        if connects:
            assert await ask_echo(b, **caller) == "sealed"
        else:
            with pytest.raises(TransportError, match="client certificate"):
                await ask_echo(b, **caller)


async def test_a_node_with_a_certificate_from_another_ca_is_refused(node, certs: Certs) -> None:
    async with node() as b:
        other = certs.client_context(ca=trustme.CA())
        with pytest.raises(TransportError, match="certificate was refused"):
            await ask_echo(b, ssl=other)


async def test_a_plaintext_client_is_refused_by_a_tls_node(node) -> None:
    async with node() as b:
        with pytest.raises(TransportError, match=r"closed .* before it sent anything.*TLS"):
            await ask_echo(b)


async def test_a_tls_client_is_refused_by_a_plaintext_node(node, certs: Certs) -> None:
    with capture_events() as events:
        async with node(ssl=None) as b:
            with pytest.raises(TransportError, match="does it listen with TLS"):
                await ask_echo(b, ssl=certs.client_context())
    (refused,) = events_named(events, "transport.frame_refused")
    assert "speaks TLS" in refused["reason"]


@pytest.mark.parametrize(
    ("client_secret", "refusal"),
    [("s3cret", None), (None, "secret is required"), ("wrong", "did not prove")],
)
async def test_the_shared_secret_still_holds_over_tls(
    node, certs: Certs, client_secret: str | None, refusal: str | None
) -> None:
    async with node(secret="s3cret") as b:
        caller = {"ssl": certs.client_context(), "secret": client_secret}
        if refusal is None:
            assert await ask_echo(b, **caller) == "sealed"
        else:
            with pytest.raises(TransportError, match=refusal):
                await ask_echo(b, **caller)


async def test_a_tls_node_still_reaches_a_unix_node(node, certs: Certs, tmp_path: Path) -> None:
    """A client context is for tcp://: the unix adapter ignores it (its socket file
    is private), so a TLS node can still talk to a local unix node."""
    async with node(ssl=None, listen=f"unix://{tmp_path}/b.sock") as b:
        assert await ask_echo(b, ssl=certs.client_context()) == "sealed"


@pytest.mark.parametrize("scheme", ["unix", "memory", "nats"])
async def test_listening_with_tls_is_refused_off_tcp(
    certs: Certs, tmp_path: Path, scheme: str
) -> None:
    url = {
        "unix": f"unix://{tmp_path}/n.sock",
        "memory": "memory://tls-refused",
        "nats": shared(tmp_path).url,
    }[scheme]
    with pytest.raises(TransportError, match=r"with ssl=: TLS is for tcp://"):
        async with ActorSystem("n", listen=url, ssl=certs.server_context()):
            pass


def test_ssl_takes_a_server_and_a_client_context_in_any_order(certs: Certs) -> None:
    server, client = certs.server_context(), certs.client_context()
    for given in (server, client, (server, client), [client, server]):
        ActorSystem("n", ssl=given)  # no error; no loop needed until it starts


def _legacy_context() -> ssl.SSLContext:
    with pytest.deprecated_call():
        return ssl.SSLContext(ssl.PROTOCOL_TLS)


@pytest.mark.parametrize(
    ("given", "error", "match"),
    [
        ("cert.pem", TypeError, "ssl takes an ssl.SSLContext"),
        (42, TypeError, "ssl takes an ssl.SSLContext"),
        ((None,), TypeError, "ssl takes ssl.SSLContext objects"),
        ((), ValueError, "one or two contexts"),
        ("legacy", ValueError, "PROTOCOL_TLS has no single role"),
        ("two clients", ValueError, "two PROTOCOL_TLS_CLIENT contexts"),
        ("three", ValueError, "one or two contexts"),
    ],
)
def test_a_bad_ssl_argument_is_refused(
    certs: Certs, given: Any, error: type[Exception], match: str
) -> None:
    client = certs.client_context()
    given = {
        "legacy": _legacy_context,
        "two clients": lambda: (client, certs.client_context()),
        "three": lambda: (certs.server_context(), client, client),
    }.get(given, lambda: given)()
    with pytest.raises(error, match=match):
        ActorSystem("n", ssl=given)
