"""docs/remote.md: two nodes in one process, over a Unix socket in a temp dir.

Run it with `python -m examples.docs.remote_tour`. Each function starts its own
systems; what they return is what the page says happens.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs

from contracts.probe import Add, Echo, Fail, GetTotal, Greet, Hold
from mycelium_actors import (
    Actor,
    ActorRef,
    ActorStopped,
    ActorSystem,
    Child,
    RemoteError,
    SerializationError,
    Supervisor,
    Terminated,
    TransportError,
    handler,
)
from supervisors.probe import Counter as ProbeCounter


class Counter(ProbeCounter):
    """The probe counter (supervisors/probe.py), which also fails on demand."""

    @handler
    def fail(self, msg: Fail) -> None:
        raise {"KeyError": KeyError, "Custom": CustomError}[msg.kind](msg.message)

    @handler
    async def hold(self, msg: Hold) -> str:
        await asyncio.sleep(msg.seconds)
        return "held"

    @handler
    async def greet(self, msg: Greet) -> Any:
        return await msg.reply_to.ask(Echo(msg.text))  # a ref that came in a message


class CustomError(Exception):
    """Not in the fixed table: it arrives as RemoteError."""


tree = Supervisor("root", children=[Child(Counter, name="counter")])


@asynccontextmanager
async def socket_dir() -> AsyncIterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield tmp


async def basics() -> dict[str, Any]:
    async with socket_dir() as tmp:
        async with (
            ActorSystem("a", listen=f"unix://{tmp}/a.sock") as a,
            ActorSystem("b", listen=f"unix://{tmp}/b.sock") as b,
        ):
            await b.start(tree)
            counter = await a.remote(f"unix://{tmp}/b.sock/root/counter")
            await counter.tell(Add(n=2))
            total = await counter.ask(Add(n=3))  # FIFO: after the tell
            same = await a.remote(b.address or "", "/root/counter")
            local = await a.spawn(Counter, name="local")
            greeted = await counter.ask(Greet(reply_to=local, text="hello back"))
            errors = []
            try:
                await counter.ask(Fail(kind="KeyError", message="nope"))
            except KeyError:  # in the fixed table: rebuilt as itself
                errors.append("KeyError")
            try:
                await counter.ask(Fail(kind="Custom", message="nope"))
            except RemoteError as exc:  # anything else
                errors.append("RemoteError")
                remote_type = exc.type_name
            missing = await a.remote(b.address or "", "/root/nobody")
            try:
                await missing.ask(Echo(text="anyone?"))
            except ActorStopped:
                errors.append("ActorStopped")
            return {
                "address": counter.address == f"unix://{tmp}/b.sock/root/counter",
                "total": total,
                "equal": same == counter,
                "greeted": greeted,
                "errors": errors,
                "remote_type": remote_type,
                "nodes": [node.name for node in a.nodes()],
            }


async def secrets() -> dict[str, str]:
    outcome = {}
    async with socket_dir() as tmp:
        node = f"unix://{tmp}/b.sock"
        url = f"{node}/root/counter"
        async with ActorSystem("b", listen=node, secret="s3cret") as b:
            await b.start(tree)
            for secret in (None, "wrong", "s3cret"):
                async with ActorSystem("a", secret=secret) as a:
                    try:
                        outcome[str(secret)] = await (await a.remote(url)).ask(Echo(text="in"))
                    except TransportError as exc:
                        outcome[str(secret)] = str(exc).removeprefix(f"cannot connect to {node}: ")
    return outcome


def tls_contexts(cert: str, key: str, ca: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A node's two contexts, from PEM files: one to listen, one to connect."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)  # PROTOCOL_TLS_SERVER
    server.load_cert_chain(cert, key)
    server.verify_mode = ssl.CERT_REQUIRED  # mutual TLS: a peer shows a certificate too
    server.load_verify_locations(ca)  # ... signed by our CA
    client = ssl.create_default_context(cafile=ca)  # PROTOCOL_TLS_CLIENT: checks the host
    client.load_cert_chain(cert, key)  # shown to a node that asks for one
    return server, client


async def tls(cert: str, key: str, ca: str) -> dict[str, str]:
    outcome = {}
    contexts = tls_contexts(cert, key, ca)
    async with ActorSystem("b", listen="tcp://127.0.0.1:0", ssl=contexts, secret="s3cret") as b:
        await b.start(tree)
        url = f"{b.address}/root/counter"
        for name, given in (("tls", contexts), ("plaintext", None)):
            async with ActorSystem("a", ssl=given, secret="s3cret") as a:
                try:
                    outcome[name] = await (await a.remote(url)).ask(Echo(text="sealed"))
                except TransportError as exc:
                    outcome[name] = str(exc).removeprefix(f"cannot connect to {b.address}: ")
    return outcome


class Watcher(Actor):
    """Watches a remote ref and keeps what it is told."""

    def __init__(self, target: ActorRef[Any]) -> None:
        super().__init__()
        self.target = target
        self.notices: list[str] = []

    async def on_start(self) -> None:
        self.context.watch(self.target)

    @handler
    def terminated(self, msg: Terminated) -> None:
        self.notices.append(f"{msg.ref.path} {msg.reason}")

    @handler
    def seen(self, _: GetTotal) -> list[str]:
        return self.notices


async def node_loss() -> dict[str, Any]:
    async with socket_dir() as tmp, ActorSystem("a") as a:
        b_url = f"unix://{tmp}/b.sock"
        async with ActorSystem("b", listen=b_url) as b:
            await b.start(tree)
            counter = await a.remote(b_url, "/root/counter")
            watcher = await a.spawn(Watcher, counter)  # its watch goes out first
            await counter.ask(Echo(text="sync"))
        # b has shut down: it stopped its actors (the watcher is told), then said goodbye
        while counter.is_alive:
            await asyncio.sleep(0.01)  # the goodbye is on its way
        notices = await watcher.ask(GetTotal())
        try:
            await counter.ask(Echo(text="anyone?"))
        except TransportError as exc:  # nobody listens at b_url now
            asked = type(exc).__name__
        async with ActorSystem("b", listen=b_url) as b:  # back at the same address
            await b.start(tree)
            again = await counter.ask(Echo(text="reconnected"))  # the next use reconnects
        return {"asked": asked, "notices": notices, "again": again}


async def cluster() -> dict[str, Any]:
    async with socket_dir() as tmp:
        async with (
            ActorSystem("a") as a,
            ActorSystem("b", listen=f"unix://{tmp}/b.sock") as b,
        ):
            await a.spawn(Counter, name="here")
            await b.start(tree)
            await a.remote(f"unix://{tmp}/b.sock", "/root/counter")  # connects a to b
            found = await a.discover_cluster(Counter)
            accepted = await a.publish_cluster(Add(n=10))
            totals = [await ref.ask(GetTotal()) for ref in found]
            return {
                "found": [ref.address or ref.path for ref in found],
                "accepted": accepted,
                "totals": totals,
            }


@attrs.frozen
class NotAContract:
    text: str


async def serialize_local() -> str:
    async with ActorSystem("test", serialize_local=True) as system:
        ref = await system.spawn(Counter, name="counter")
        try:
            await ref.tell(NotAContract("hi"))
        except SerializationError as exc:
            return type(exc).__name__
    return "sent"


async def main() -> None:
    for tour in (basics, secrets, node_loss, cluster, serialize_local):
        print(tour.__name__, await tour())
    import trustme  # throwaway certificates for 127.0.0.1 (pip install trustme)

    with tempfile.TemporaryDirectory() as tmp:
        ca = trustme.CA()
        issued = ca.issue_cert("127.0.0.1")
        files = [f"{tmp}/{name}.pem" for name in ("cert", "key", "ca")]
        for pem, path in zip(
            (issued.cert_chain_pems[0], issued.private_key_pem, ca.cert_pem), files, strict=True
        ):
            pem.write_to_path(path)
        print("tls", await tls(*files))


if __name__ == "__main__":
    asyncio.run(main())
