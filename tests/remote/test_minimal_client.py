"""The node protocol as a spec: a minimal client written from docs/wire.md alone
drives a real node in another process.

Nothing here imports the library: the client speaks the protocol with the
stdlib (sockets, struct, hmac) and msgspec for MessagePack, and the messages
are the wire ids and fields of contracts/probe.yaml, as a client in another
language would write them. The node under test is `python -m tests.remote.nodeapp`
(its tree: /root/counter and /root/slow, a counter with a mailbox of 2).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT = 1.0  # the node's heartbeat timeout in these tests (default 5 s)
SECRET = b"s3cret"
# contracts/probe.yaml
ECHO, ADD, GET_TOTAL, FAIL, HOLD = 301, 302, 303, 304, 305
COUNTER = "/root/counter"


# -- the client ------------------------------------------------------------------------


class Refused(Exception):
    """The node said GOODBYE; `reason` is why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Closed(Exception):
    """The node closed the connection without a GOODBYE."""


class Failed(Exception):
    """An error reply: [origin, type name, message, traceback text]."""

    def __init__(self, origin: str, type_name: str, message: str, traceback: str) -> None:
        super().__init__(f"{origin} {type_name}: {message}")
        self.origin, self.type_name, self.message = origin, type_name, message
        self.traceback = traceback


def body(wire_id: int, fields: dict[str, Any]) -> bytes:
    """A message body: a 4-byte big-endian wire id, then a MessagePack map of the fields."""
    return struct.pack(">I", wire_id) + msgspec.msgpack.encode(fields)


def data(
    path: str, message: bytes, request: int | None = None, trace: dict[str, str] | None = None
) -> bytes:
    """A TELL frame (no request id) or an ASK frame: [u32 request id,] u16 path
    length, the UTF-8 path, the message body. With a W3C trace context
    (`traceparent`, maybe `tracestate`), inside a TRACED frame: `t`, u16 length
    of the context, the context as a MessagePack map, then that frame."""
    raw = path.encode()
    if request is None:
        frame = b"T" + struct.pack(">H", len(raw)) + raw + message
    else:
        frame = b"A" + struct.pack(">IH", request, len(raw)) + raw + message
    if trace is None:
        return frame
    context = msgspec.msgpack.encode(trace)
    return b"t" + struct.pack(">H", len(context)) + context + frame


def value(payload: bytes) -> Any:
    """A REPLY's status-0 payload: plain data (wire id 0), else (wire id, field map)."""
    wire_id = struct.unpack_from(">I", payload)[0]
    data = msgspec.msgpack.decode(payload[4:])
    return data if wire_id == 0 else (wire_id, data)


def proof(secret: bytes, role: bytes, first: bytes, second: bytes) -> bytes:
    return hmac.new(secret, role + b"|" + first + b"|" + second, hashlib.sha256).digest()


class Client:
    """One connection to a node. Blocking; every wait has a deadline.

    Its duties to stay connected: answer each PING with a PING (the node pings a
    peer it has sent nothing to for a quarter of its heartbeat timeout, and any
    frame counts as a sign of life), and keep at most 256 TELL/ASK frames per
    path without CREDIT.
    """

    WINDOW = 256

    def __init__(
        self,
        address: str,
        *,
        secret: bytes | None = None,
        version: int = 3,
        max_frame: int = 1 << 24,
        check_server: bool = True,
        answer_pings: bool = True,
        timeout: float = 5.0,
    ) -> None:
        self.timeout = timeout
        self.answer_pings = answer_pings
        self.sock = connect(address, timeout)
        self.buffer = bytearray()
        self.inflight: dict[str, int] = {}  # TELL/ASK frames per path not credited yet
        self.most_inflight = 0
        self.waits_for_credit = 0
        self.replies: dict[int, tuple[int, bytes]] = {}
        self.terminated: dict[str, str] = {}
        self.next_request = 0
        try:
            self.server = self._handshake(secret, version, max_frame, check_server)
        except BaseException:
            self.sock.close()
            raise

    def close(self) -> None:
        self.sock.close()

    # framing: a 4-byte big-endian length, then the frame; its first byte is its kind

    def send(self, frame: bytes) -> None:
        try:
            self.sock.sendall(struct.pack(">I", len(frame)) + frame)
        except (BrokenPipeError, ConnectionResetError):
            raise Closed("the node closed the connection") from None

    def control(self, kind: bytes, *items: Any) -> None:
        self.send(kind + msgspec.msgpack.encode(list(items)))

    def read(self, deadline: float) -> bytes:
        while True:
            if len(self.buffer) >= 4:
                size = struct.unpack_from(">I", self.buffer)[0]
                if len(self.buffer) >= 4 + size:
                    frame = bytes(self.buffer[4 : 4 + size])
                    del self.buffer[: 4 + size]
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame from the node in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 16)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise Closed("the node closed the connection")
            self.buffer += chunk

    def _handshake(
        self, secret: bytes | None, version: int, max_frame: int, check_server: bool
    ) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        nonce = os.urandom(16)
        incarnation = os.urandom(8).hex()
        # We do not listen: address nil, and a name of our choice; our proof is empty.
        hello = ["mycelium", version, "minimal-client", incarnation, None, nonce, b""]
        if version >= 2:  # version 1's HELLO had no max_frame
            hello.append(max_frame)
        self.control(b"H", *hello)
        frame = self.read(deadline)
        if frame[:1] == b"G":
            raise Refused(msgspec.msgpack.decode(frame[1:])[0])
        assert frame[:1] == b"H", frame
        items = msgspec.msgpack.decode(frame[1:])
        names = ("magic", "version", "name", "incarnation", "address", "nonce", "proof")
        server = dict(zip((*names, "max_frame"), items, strict=False))
        assert server["magic"] == "mycelium", server
        if server["version"] != 3:
            theirs = server["version"]
            self.control(b"G", f"protocol version {theirs!r} is not supported: we speak 3")
            raise Refused(f"the node speaks version {theirs!r}")
        mine = b""
        if secret is not None:
            expected = proof(secret, b"server", nonce, server["nonce"])
            if check_server and not hmac.compare_digest(expected, server["proof"]):
                raise Refused("the node did not prove the secret")
            mine = proof(secret, b"client", server["nonce"], nonce)
        self.control(b"V", mine)
        frame = self.read(deadline)  # nothing else is sent until WELCOME
        if frame[:1] == b"G":
            raise Refused(msgspec.msgpack.decode(frame[1:])[0])
        assert frame == b"K\x90", frame  # WELCOME: an empty array
        return server

    # what the node sends after the handshake: REPLY, CREDIT, TERMINATED, PING, GOODBYE

    def serve(self, frame: bytes) -> None:
        kind = frame[:1]
        if kind == b"R":
            request, status = struct.unpack_from(">IB", frame, 1)
            self.replies[request] = (status, frame[6:])
        elif kind == b"C":
            path, n = msgspec.msgpack.decode(frame[1:])[:2]
            self.inflight[path] = max(0, self.inflight.get(path, 0) - n)
        elif kind == b"P":
            if self.answer_pings:
                self.control(b"P")  # there is no PONG: any frame is a sign of life
        elif kind == b"X":
            path, reason = msgspec.msgpack.decode(frame[1:])[:2]
            self.terminated[path] = reason
        elif kind == b"G":
            raise Refused(msgspec.msgpack.decode(frame[1:])[0])
        else:
            raise AssertionError(f"a frame a node does not send to a client: {frame[:16]!r}")

    def pump_until(self, done: Callable[[], bool], timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.timeout)
        while not done():
            self.serve(self.read(deadline))

    def stay_up(self, seconds: float) -> None:
        """Read and serve frames for `seconds` (answering PINGs, if it does)."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.serve(self.read(deadline))
            except TimeoutError:
                return

    # requests

    def _room(self, path: str) -> None:
        if self.inflight.get(path, 0) >= self.WINDOW:
            self.waits_for_credit += 1
            self.pump_until(lambda: self.inflight[path] < self.WINDOW)
        self.inflight[path] = self.inflight.get(path, 0) + 1
        self.most_inflight = max(self.most_inflight, self.inflight[path])

    def tell(
        self, path: str, wire_id: int, trace: dict[str, str] | None = None, **fields: Any
    ) -> None:
        self._room(path)
        self.send(data(path, body(wire_id, fields), trace=trace))

    def ask_raw(self, path: str, message: bytes, trace: dict[str, str] | None = None) -> Any:
        """Send an ASK with the body `message`; the reply's value, or `Failed`."""
        self._room(path)
        request = self._request_id()
        self.send(data(path, message, request, trace))
        return self._reply(request)

    def ask(
        self, path: str, wire_id: int, trace: dict[str, str] | None = None, **fields: Any
    ) -> Any:
        return self.ask_raw(path, body(wire_id, fields), trace)

    def request(self, kind: bytes, *items: Any) -> Any:
        """STOP or QUERY: [request id, ...items], answered by a REPLY."""
        request = self._request_id()
        self.control(kind, request, *items)
        return self._reply(request)

    def watch(self, path: str) -> None:
        self.control(b"W", path)

    def settle(self) -> None:
        """Get back the credit of everything sent: a PING makes the node return
        all it owes (else it does at its next heartbeat check)."""
        self.control(b"P")
        self.pump_until(lambda: not any(self.inflight.values()))

    def _request_id(self) -> int:
        self.next_request = (self.next_request + 1) & 0xFFFFFFFF
        return self.next_request

    def _reply(self, request: int) -> Any:
        self.pump_until(lambda: request in self.replies)
        status, payload = self.replies.pop(request)
        if status == 0:
            return value(payload)
        raise Failed(*msgspec.msgpack.decode(payload))


def connect(address: str, timeout: float) -> socket.socket:
    if address.startswith("unix://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address.removeprefix("unix://"))
        return sock
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)


# -- the node under test ---------------------------------------------------------------


class Node:
    """`python -m tests.remote.nodeapp b URL ...`: a node in its own process."""

    def __init__(self, url: str, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.remote.nodeapp", "b", url, *extra],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        self.address = self.proc.stdout.readline().strip()  # bounded by the pytest timeout
        assert self.address.startswith(url.split(":")[0]), f"no node: {self.address!r}"

    def stop(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()  # the node shuts down when stdin closes
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.proc.stdout.close()


def start_node(folder: Path, scheme: str, secret: bool, *extra: str) -> Node:
    url = f"unix://{folder}/b-{secret}.sock" if scheme == "unix" else "tcp://127.0.0.1:0"
    if secret:
        extra = ("--secret", SECRET.decode(), *extra)
    return Node(url, "--heartbeat", str(HEARTBEAT), *extra)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """The address of the module's node of a scheme, with a secret or not
    (started on first use; shared by tests that leave its actors as they were)."""
    folder = tmp_path_factory.mktemp("nodes")
    started: dict[tuple[str, bool], Node] = {}

    def address(scheme: str = "unix", secret: bool = False) -> str:
        if (scheme, secret) not in started:
            started[scheme, secret] = start_node(folder, scheme, secret)
        return started[scheme, secret].address

    yield address
    for one in started.values():
        one.stop()


@pytest.fixture
def own_node(tmp_path: Path) -> Iterator[str]:
    """A node for one test (it stops or blocks an actor)."""
    one = start_node(tmp_path, "unix", False)
    yield one.address
    one.stop()


@pytest.fixture
def client() -> Iterator[Callable[..., Client]]:
    """Opens clients (`Client`'s arguments), closed after the test."""
    opened: list[Client] = []

    def open_client(address: str, **options: Any) -> Client:
        opened.append(Client(address, **options))
        return opened[-1]

    yield open_client
    for one in opened:
        one.close()


# -- the tests -------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["unix", "tcp"])
def test_handshake_gives_the_nodes_hello(
    node: Callable[..., str], client: Callable[..., Client], scheme: str
) -> None:
    address = node(scheme)
    hello = client(address).server
    assert hello["name"] == "b" and hello["address"] == address
    assert len(hello["incarnation"]) == 16 and int(hello["incarnation"], 16) >= 0
    assert len(hello["nonce"]) == 16 and hello["proof"] == b""
    assert hello["max_frame"] == 16 * 1024 * 1024


@pytest.mark.parametrize(
    ("secret", "check_server", "refusal"),
    [
        (SECRET, True, None),
        (None, True, "a secret is required"),
        (b"wrong", False, "wrong secret"),  # sends its proof anyway: the node refuses it
        (b"wrong", True, "the node did not prove the secret"),  # the client refuses first
    ],
)
def test_handshake_with_a_secret(
    node: Callable[..., str],
    client: Callable[..., Client],
    secret: bytes | None,
    check_server: bool,
    refusal: str | None,
) -> None:
    address = node(secret=True)
    if refusal is None:
        assert client(address, secret=secret).ask(COUNTER, ECHO, text="hi") == "hi"
        return
    with pytest.raises(Refused) as refused:
        client(address, secret=secret, check_server=check_server)
    assert refused.value.reason == refusal


@pytest.mark.parametrize("version", [1, 2])
def test_a_node_of_another_version_is_refused_with_goodbye(
    node: Callable[..., str], client: Callable[..., Client], version: int
) -> None:
    with pytest.raises(Refused) as refused:
        client(node(), version=version)
    assert refused.value.reason == (
        f"protocol version {version} is not supported: this node speaks version 3"
    )


@pytest.mark.parametrize("scheme", ["unix", "tcp"])
def test_tells_and_asks_arrive_in_order(
    node: Callable[..., str], client: Callable[..., Client], scheme: str
) -> None:
    c = client(node(scheme))
    total = c.ask(COUNTER, GET_TOTAL)
    c.tell(COUNTER, ADD, n=2)
    assert c.ask(COUNTER, ADD, n=3) == total + 5  # after the tell
    assert c.ask(COUNTER, ECHO, text="hé") == "hé"


@pytest.mark.parametrize(
    ("path", "message", "origin", "type_name", "text"),
    [
        (COUNTER, body(FAIL, {"kind": "KeyError", "message": "k"}), "handler", "KeyError", "k"),
        (COUNTER, body(FAIL, {"kind": "Oops", "message": "o"}), "handler", "Oops", "o"),
        ("/root/nobody", body(ECHO, {"text": "x"}), "framework", "ActorStopped", "no actor at "),
        (COUNTER, body(999_999, {}), "framework", "SerializationError", "unknown wire id"),
        (COUNTER, body(ECHO, {"text": 5}), "framework", "SerializationError", "Echo.text"),
    ],
    ids=["builtin", "subclass", "no-actor", "unknown-id", "wrong-type"],
)
def test_a_failed_ask_replies_with_the_error_array(
    node: Callable[..., str],
    client: Callable[..., Client],
    path: str,
    message: bytes,
    origin: str,
    type_name: str,
    text: str,
) -> None:
    c = client(node())
    with pytest.raises(Failed) as failed:
        c.ask_raw(path, message)
    error = failed.value
    assert (error.origin, error.type_name) == (origin, type_name)
    assert error.message.startswith(text)
    assert (f"{type_name}:" in error.traceback) == (origin == "handler")
    assert c.ask(COUNTER, ECHO, text="still") == "still"  # the connection stays


def test_a_reply_over_the_clients_max_frame_is_an_error_reply(
    node: Callable[..., str], client: Callable[..., Client]
) -> None:
    c = client(node(), max_frame=256)
    with pytest.raises(Failed) as failed:
        c.ask(COUNTER, ECHO, text="x" * 1000)
    assert (failed.value.origin, failed.value.type_name) == ("framework", "SerializationError")
    assert c.ask(COUNTER, ECHO, text="small") == "small"


@pytest.mark.parametrize(
    ("op", "argument", "answer"),
    [
        ("discover", [None, None], [COUNTER, "/root/slow"]),  # actors, not supervisors
        ("discover", ["supervisors.probe:Counter", None], [COUNTER, "/root/slow"]),
        ("discover", [None, ECHO], [COUNTER, "/root/slow"]),
        ("discover", ["no.such:Class", None], []),
        ("publish", body(ECHO, {"text": "to all"}), 2),
    ],
)
def test_queries_are_answered_by_a_reply(
    node: Callable[..., str], client: Callable[..., Client], op: str, argument: Any, answer: Any
) -> None:
    got = client(node()).request(b"Q", op, argument)
    assert (sorted(got) if isinstance(answer, list) else got) == answer


def test_the_tree_query_answers_a_list_of_maps(
    node: Callable[..., str], client: Callable[..., Client]
) -> None:
    [root] = client(node()).request(b"Q", "tree", None)
    assert root["path"] == "/root" and root["kind"] == "supervisor"
    assert [child["path"] for child in root["children"]] == [COUNTER, "/root/slow"]


def test_stop_replies_nil_and_watchers_get_terminated(
    own_node: str, client: Callable[..., Client]
) -> None:
    c = client(own_node)
    c.watch("/root/nobody")
    c.watch("/root/slow")
    c.pump_until(lambda: "/root/nobody" in c.terminated)
    assert c.terminated == {"/root/nobody": "stopped"}  # at once: nothing lives there
    assert c.request(b"S", "/root/slow") is None  # once it has stopped
    c.pump_until(lambda: "/root/slow" in c.terminated)
    assert c.terminated["/root/slow"] == "shutdown"  # stopped from outside
    assert c.request(b"S", "/root/nobody") is None


@pytest.mark.parametrize("answer_pings", [True, False])
def test_answering_pings_keeps_the_connection_up(
    node: Callable[..., str], client: Callable[..., Client], answer_pings: bool
) -> None:
    c = client(node(), answer_pings=answer_pings)
    if answer_pings:
        c.stay_up(3 * HEARTBEAT)
        assert c.ask(COUNTER, ECHO, text="alive") == "alive"
    else:
        with pytest.raises(Closed):  # no GOODBYE: a silent peer is cut after the timeout
            c.stay_up(5 * HEARTBEAT)


def test_credit_paces_more_than_256_tells(
    node: Callable[..., str], client: Callable[..., Client]
) -> None:
    c = client(node())
    total = c.ask(COUNTER, GET_TOTAL)
    for _ in range(1000):
        c.tell(COUNTER, ADD, n=1)
    assert c.most_inflight == Client.WINDOW and c.waits_for_credit > 0
    c.settle()
    assert c.ask(COUNTER, GET_TOTAL) == total + 1000
    assert c.inflight[COUNTER] == 1  # an ask takes a slot until its credit
    c.settle()


@pytest.mark.parametrize(("tells", "cut"), [(250, False), (300, True)])
def test_a_peer_with_over_256_messages_waiting_for_a_full_mailbox_is_cut_off(
    own_node: str, client: Callable[..., Client], tells: int, cut: bool
) -> None:
    c = client(own_node)
    c.tell("/root/slow", HOLD, seconds=1.0)  # busy; its mailbox holds 2, the rest wait
    frame = data("/root/slow", body(ECHO, {"text": "x"}))
    c.sock.sendall((struct.pack(">I", len(frame)) + frame) * tells)  # credit ignored
    if cut:
        with pytest.raises(Closed):  # no GOODBYE: a protocol error closes the connection
            c.stay_up(5.0)
    else:  # read after the tells: a cut would have come first
        assert c.ask(COUNTER, ECHO, text="up") == "up"


@pytest.mark.parametrize("request_id", [None, 7], ids=["TELL", "ASK"])
@pytest.mark.parametrize("path", [COUNTER, "root/counter"])
def test_a_relative_path_closes_the_connection(
    node: Callable[..., str], client: Callable[..., Client], request_id: int | None, path: str
) -> None:
    c = client(node())
    c.send(data(path, body(ECHO, {"text": "x"}), request_id))
    if path.startswith("/"):
        assert c.ask(COUNTER, ECHO, text="after") == "after"
    else:
        with pytest.raises(Closed):  # a protocol error: closed, no GOODBYE
            c.ask(COUNTER, ECHO, text="after")


# W3C Trace Context's own example: trace id, then the caller's span id.
TRACE_ID, CALLER_SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
TRACE = {"traceparent": f"00-{TRACE_ID}-{CALLER_SPAN}-01", "tracestate": "congo=t61rcWkgMzE"}


@pytest.mark.parametrize("tracing", [True, False], ids=["node-traces", "node-does-not"])
def test_traced_tells_and_asks_are_handled_in_children_of_the_callers_span(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, client: Callable[..., Client], tracing: bool
) -> None:
    # The node's process writes its finished spans to this file, one JSON array per
    # line: [name, trace id, parent span id, actor path] (tests/spans.py).
    spans = tmp_path / "spans.jsonl"
    monkeypatch.setenv("MYCELIUM_TEST_SPANS", str(spans))
    node = start_node(tmp_path, "unix", False, *(["--tracing"] if tracing else []))
    try:
        c = client(node.address)
        c.tell(COUNTER, ADD, trace=TRACE, n=2)
        assert c.ask(COUNTER, ADD, trace={"traceparent": TRACE["traceparent"]}, n=1) == 3
    finally:
        node.stop()
    reported = [json.loads(line) for line in spans.read_text().splitlines()] if tracing else []
    assert reported == [["handle Add", TRACE_ID, CALLER_SPAN, COUNTER]] * (2 if tracing else 0)
