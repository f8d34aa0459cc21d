"""What an operator must see is at warning or above (API.md 8): a refused
handshake with its reason, a node going down, a message that does not decode,
a node listening beyond loopback without a secret, a lost NATS server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from natsserver import NatsServer

from contracts.probe import Add, Echo, GetTotal
from mycelium_actors import ActorSystem, SerializationError, TransportError
from mycelium_actors.remote import node as remote_node
from mycelium_actors.testing import capture_events, events_named, eventually
from mycelium_actors.transports.urls import tcp_exposed
from mycelium_actors.wire.codec import Codec
from mycelium_actors.wire.registry import wire_id

from .nodeapp import Counter


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[ActorSystem]:
    """A node with a secret and a counter at /c."""
    async with ActorSystem("guarded", listen=f"unix://{tmp_path}/g.sock", secret="s3") as system:
        await system.spawn(Counter, name="c")
        yield system


@pytest.mark.parametrize(
    "secret, refuser, reason",
    [
        (None, "guarded", "a secret is required"),  # the guarded node refuses
        ("guess", "intruder", "wrong secret (or none): it did not prove the shared secret"),
    ],
    ids=["no secret", "a wrong secret"],
)
async def test_a_refused_handshake_is_a_warning_with_the_reason(
    guarded: ActorSystem, secret: str | None, refuser: str, reason: str
) -> None:
    """The side that finds the mismatch says why (with a wrong secret, the caller
    checks the listener's proof first and hangs up)."""
    with capture_events() as events:
        async with ActorSystem("intruder", secret=secret) as intruder:
            with pytest.raises(TransportError, match=re.escape(reason)):
                await intruder.remote(f"{guarded.address}/c")
        await eventually(lambda: bool(events_named(events, "node.refused", system="guarded")))
    refused = events_named(events, "node.refused", system=refuser)
    assert [(e["log_level"], e["reason"]) for e in refused][:1] == [("warning", reason)]


async def test_node_down_is_a_warning_with_the_reason(guarded: ActorSystem) -> None:
    with capture_events() as events:
        async with ActorSystem("visitor", secret="s3") as visitor:
            assert await (await visitor.remote(f"{guarded.address}/c")).ask(Echo("hi")) == "hi"
        await eventually(lambda: bool(events_named(events, "node.down", system="guarded")))
    [down] = events_named(events, "node.down", system="guarded")
    assert down["log_level"] == "warning" and "goodbye" in down["reason"]
    [own] = events_named(events, "node.down", system="visitor")  # its own shutdown: no news
    assert own["log_level"] == "info" and own["reason"] == "this node shut down"


def mismatched_body() -> bytes:
    """An `Add` as a peer with another version of the contract sends it (no `n`)."""
    return wire_id(Add).to_bytes(4, "big") + Codec().encode(Echo("seven"))[4:]


@pytest.mark.parametrize("kind", ["tell", "ask"])
async def test_an_undecodable_message_is_a_warning_with_its_wire_id_and_the_field_error(
    guarded: ActorSystem, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ActorSystem("sender", secret="s3") as sender:
        ref: Any = await sender.remote(f"{guarded.address}/c")
        with capture_events() as events:
            if kind == "tell":
                ref._peer.send(ref._tell_head + mismatched_body())
                await eventually(lambda: guarded.dead_letters == 1)
            else:
                monkeypatch.setattr(ref._peer.node.codec, "encode", lambda m: mismatched_body())
                with pytest.raises(SerializationError, match="missing required field n"):
                    await ref.ask(Add(7))
                monkeypatch.undo()
        assert await ref.ask(Add(2)) == 2  # the node keeps serving, the connection too
    [event] = events_named(events, "message.undecodable", path="/c")
    assert (event["log_level"], event["wire_id"], event["kind"]) == ("warning", wire_id(Add), kind)
    assert event["error"] == "Add: object missing required field n"
    dead = [(d["reason"], d["message_type"]) for d in events_named(events, "dead_letter")]
    if kind == "tell":  # counted as a dead letter; an asker gets the error instead
        assert dead == [("undecodable", f"wire id {wire_id(Add)}")]
    else:
        assert dead == [] and guarded.dead_letters == 0


@pytest.mark.parametrize(
    "url, exposed",
    [
        ("tcp://0.0.0.0:7001", True),
        ("tcp://192.168.1.20:7001", True),
        ("tcp://[::]:7001", True),
        ("tcp://node.example.com:7001", True),
        ("tcp://127.0.0.1:7001", False),
        ("tcp://[::1]:0", False),
        ("tcp://localhost:7001", False),
        ("tcp://:0", False),  # no host: loopback
        ("unix:///tmp/x.sock", False),
        ("nats://127.0.0.1:4222", False),
    ],
)
def test_which_listen_urls_are_exposed(url: str, exposed: bool) -> None:
    assert tcp_exposed(url) is exposed


@pytest.mark.parametrize("secret", [None, "s3"])
async def test_listening_exposed_without_a_secret_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, secret: str | None
) -> None:
    # Tests bind loopback only: the node is told 127.0.0.1 is exposed.
    monkeypatch.setattr(remote_node, "tcp_exposed", lambda url: True)
    with capture_events() as events:
        async with ActorSystem("open", listen="tcp://127.0.0.1:0", secret=secret):
            pass
    warned = events_named(events, "node.exposed")
    assert [e["log_level"] for e in warned] == (["warning"] if secret is None else [])
    if warned:
        assert "secret" in warned[0]["reason"]


async def test_a_loopback_node_without_a_secret_is_not_warned_about() -> None:
    with capture_events() as events:
        async with ActorSystem("closed", listen="tcp://127.0.0.1:0"):
            pass
    assert not events_named(events, "node.exposed")


async def test_a_lost_nats_server_is_one_warning_then_one_info_when_back(
    tmp_path: Path,
) -> None:
    server = NatsServer(tmp_path)
    try:
        with capture_events() as events:
            async with ActorSystem("lonely", listen=server.url):
                server.stop()
                await eventually(lambda: bool(events_named(events, "transport.nats_lost")))
                await asyncio.sleep(1.6)  # three reconnect attempts fail meanwhile
                server.start()
                await eventually(lambda: bool(events_named(events, "transport.nats_back")), 10)
        nats = [(e["event"], e["log_level"]) for e in events if e["event"].startswith("transport")]
        assert [n for n in nats if n[1] != "debug"] == [
            ("transport.nats_lost", "warning"),
            ("transport.nats_back", "info"),
        ]
        assert nats.count(("transport.nats_error", "debug")) >= 2  # the retries, for debug
    finally:
        server.stop()


@pytest.mark.parametrize("closing", ["sender", "receiver"])
async def test_delivered_tells_are_not_dead_letters_when_the_connection_closes(
    tmp_path: Path, closing: str
) -> None:
    """Credit comes back in batches, so delivered tells may still count as in flight:
    a node that closes settles that first (the receiver returns its credit, the
    sender asks for it, within a bound), so only undelivered tells are dead letters."""
    with capture_events() as events:
        async with ActorSystem("receiver", listen=f"unix://{tmp_path}/r.sock") as receiver:
            counter = await receiver.spawn(Counter, name="c")
            sender = ActorSystem("sender")
            await sender.__aenter__()
            ref = await sender.remote(f"{receiver.address}/c")
            for _ in range(10):  # fewer than a credit batch
                await ref.tell(Add(1))

            async def all_handled() -> bool:
                return bool(await counter.ask(GetTotal()) == 10)

            await eventually(all_handled)
            if closing == "sender":
                await sender.shutdown()
            else:
                await receiver.shutdown()
                await eventually(lambda: not sender.nodes())
                await sender.shutdown()
    assert sender.dead_letters == 0
    assert not events_named(events, "dead_letter")
