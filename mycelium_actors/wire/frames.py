"""Node-to-node frames: their kinds and layouts, and the handshake's proofs.

A transport carries frames; the first byte of each names its kind. Data
frames (TELL, ASK, REPLY) are binary with the message body from the codec (a
TRACED frame is a TELL or ASK behind its sender's W3C trace context);
control frames carry a small MessagePack array, one `msgspec.Struct`
(`array_like=True`) per kind below, decoded by one typed decoder per kind:
a malformed control frame is one `ProtocolError` naming the frame and the
field. `docs/wire.md` describes the layouts byte by byte. Errors in REPLY
frames are `wire.exceptions`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import msgspec

from ..errors import MyceliumError

MAGIC = "mycelium"
#: The node protocol's version. 2: HELLO carries the sender's max_frame. 3: TRACED
#: frames carry the sender's W3C trace context ahead of a TELL or ASK.
VERSION = 3

# Frame kinds (the first byte).
HELLO = 0x48  # H: Hello
AUTH = 0x56  # V: Auth
WELCOME = 0x4B  # K: Welcome
GOODBYE = 0x47  # G: Goodbye
TELL = 0x54  # T: u16 path length, path, body
ASK = 0x41  # A: u32 request id, u16 path length, path, body
REPLY = 0x52  # R: u32 request id, u8 status, payload (status 0: value body; 1: error array)
CREDIT = 0x43  # C: Credit
STOP = 0x53  # S: Stop
WATCH = 0x57  # W: Watch
TERMINATED = 0x58  # X: Terminated
QUERY = 0x51  # Q: Query
PING = 0x50  # P: Ping
TRACED = 0x74  # t: u16 context length, context (a MessagePack map), then a whole TELL or ASK

OK, FAILED = 0, 1

#: The largest handshake frame (HELLO, AUTH) a node reads before the peer has
#: proved itself; a peer announcing more is cut off before its body is read.
HANDSHAKE_FRAME = 4096

_ASK_HEAD = struct.Struct(">BIH")
_TELL_HEAD = struct.Struct(">BH")
_REPLY_HEAD = struct.Struct(">BIB")
_TRACED_HEAD = struct.Struct(">BH")
#: Bytes of a REPLY frame before its payload.
REPLY_HEAD = _REPLY_HEAD.size

_encoder = msgspec.msgpack.Encoder()
_decode_context = msgspec.msgpack.Decoder(dict[str, str]).decode

Nonce = Annotated[bytes, msgspec.Meta(min_length=16, max_length=16)]
# 256 characters: a HELLO fits in HANDSHAKE_FRAME whatever the characters.
Text = Annotated[str, msgspec.Meta(max_length=256)]
RequestId = Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]


class ProtocolError(MyceliumError):
    """A frame that breaks the protocol: the connection is closed with this reason."""


class _Control(msgspec.Struct, array_like=True, frozen=True):
    """A control frame's array; `KIND` is its first byte."""

    KIND = 0

    def frame(self) -> bytes:
        return bytes((self.KIND,)) + _encoder.encode(self)


class HelloHead(_Control, frozen=True):
    """The two items of a HELLO every version keeps: read before the rest."""

    KIND = HELLO
    magic: Any
    version: Any


class Hello(_Control, frozen=True):
    KIND = HELLO
    magic: str
    version: int
    name: Text
    incarnation: Text
    address: Text | None  # where the sender listens; None: it does not
    nonce: Nonce
    proof: Annotated[bytes, msgspec.Meta(max_length=64)]
    max_frame: Annotated[int, msgspec.Meta(ge=1, le=2**32 - 1)]  # the largest frame it reads


class Auth(_Control, frozen=True):
    KIND = AUTH
    proof: Annotated[bytes, msgspec.Meta(max_length=64)]


class Welcome(_Control, frozen=True):
    KIND = WELCOME


class Goodbye(_Control, frozen=True):
    KIND = GOODBYE
    reason: str


class Credit(_Control, frozen=True):
    KIND = CREDIT
    path: str
    n: Annotated[int, msgspec.Meta(ge=1)]


class Stop(_Control, frozen=True):
    KIND = STOP
    request: RequestId
    path: str


class Watch(_Control, frozen=True):
    KIND = WATCH
    path: str


class Terminated(_Control, frozen=True):
    KIND = TERMINATED
    path: str
    reason: str


class Query(_Control, frozen=True):
    KIND = QUERY
    request: RequestId
    op: str
    argument: Any


class Ping(_Control, frozen=True):
    KIND = PING


C = TypeVar("C", bound=_Control)

_NAMES = {
    HELLO: "HELLO",
    AUTH: "AUTH",
    WELCOME: "WELCOME",
    GOODBYE: "GOODBYE",
    CREDIT: "CREDIT",
    STOP: "STOP",
    WATCH: "WATCH",
    TERMINATED: "TERMINATED",
    QUERY: "QUERY",
    PING: "PING",
    TELL: "TELL",
    ASK: "ASK",
    REPLY: "REPLY",
    TRACED: "TRACED",
}
_DECODERS: dict[type[Any], msgspec.msgpack.Decoder[Any]] = {}
_AT = re.compile(r" - at `\$\[(\d+)\]`")


def kind_name(kind: int) -> str:
    return _NAMES.get(kind, f"0x{kind:02x}")


def decode(cls: type[C], frame: bytes) -> C:
    """The control frame `frame` as a `cls`; `ProtocolError` naming the field."""
    decoder = _DECODERS.get(cls)
    if decoder is None:
        decoder = _DECODERS[cls] = msgspec.msgpack.Decoder(cls)
    try:
        decoded: C = decoder.decode(memoryview(frame)[1:])
    except msgspec.ValidationError as exc:
        raise ProtocolError(
            f"a malformed {kind_name(cls.KIND)} frame: {_named(cls, exc)}"
        ) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"a malformed {kind_name(cls.KIND)} frame: {exc}") from None
    return decoded


def decoder(cls: type[C]) -> Callable[[bytes], C]:
    """`decode` for one kind, bound once (for the frames that come often)."""
    decode_one = msgspec.msgpack.Decoder(cls).decode

    def decode_frame(frame: bytes) -> C:
        try:
            return decode_one(memoryview(frame)[1:])
        except (msgspec.ValidationError, msgspec.DecodeError):
            return decode(cls, frame)  # raises the ProtocolError naming the field

    return decode_frame


def _named(cls: type[_Control], exc: msgspec.ValidationError) -> str:
    """msgspec says `$[2]`; we say the field's name."""
    text = str(exc)
    found = _AT.search(text)
    if found is None:
        return text
    fields = cls.__struct_fields__
    index = int(found.group(1))
    name = fields[index] if index < len(fields) else f"item {index}"
    return f"{name}: {text[: found.start()]}{text[found.end() :]}"


def control(kind: int, *items: Any) -> bytes:
    """A control frame from loose items (tests that speak for a peer use it)."""
    return bytes((kind,)) + _encoder.encode(items)


def tell(path: bytes, body: bytes) -> bytes:
    return _TELL_HEAD.pack(TELL, len(path)) + path + body


def ask(request: int, path: bytes, body: bytes) -> bytes:
    return _ASK_HEAD.pack(ASK, request, len(path)) + path + body


_ASK_ID = struct.Struct(">BI")
_PATH_SIZE = struct.Struct(">H")


def ask_head(request: int) -> bytes:
    """The start of an ASK frame; `path_part(path)` and the body follow."""
    return _ASK_ID.pack(ASK, request)


def path_part(path: bytes) -> bytes:
    return _PATH_SIZE.pack(len(path)) + path


def traced(carrier: dict[str, str]) -> bytes:
    """The start of a TRACED frame carrying the W3C trace context `carrier`
    (header name -> value); a whole TELL or ASK frame follows. `b""` (send the
    frame untraced) if the context would not fit its u16 length."""
    context = _encoder.encode(carrier)
    if len(context) > 0xFFFF:
        return b""
    return _TRACED_HEAD.pack(TRACED, len(context)) + context


def untraced(frame: bytes) -> tuple[bytes, bytes]:
    """(context bytes, the TELL or ASK frame inside) of a TRACED frame."""
    try:
        _, size = _TRACED_HEAD.unpack_from(frame)
    except struct.error:
        raise ProtocolError("truncated TRACED frame") from None
    start = _TRACED_HEAD.size + size
    if len(frame) <= start:
        raise ProtocolError("truncated TRACED frame")
    if frame[start] != TELL and frame[start] != ASK:
        raise ProtocolError(f"a TRACED frame around a {kind_name(frame[start])} frame")
    return frame[_TRACED_HEAD.size : start], frame[start:]


def trace_context(context: bytes) -> dict[str, str] | None:
    """The W3C trace context of a TRACED frame (header name -> value); None if
    it is not a MessagePack map of str to str (the context is then ignored)."""
    try:
        return _decode_context(context)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def reply(request: int, status: int, payload: bytes) -> bytes:
    return _REPLY_HEAD.pack(REPLY, request, status) + payload


def parse_tell(frame: bytes) -> tuple[str, bytes]:
    """(path, body) of a TELL frame."""
    try:
        _, size = _TELL_HEAD.unpack_from(frame)
    except struct.error:
        raise ProtocolError("truncated TELL frame") from None
    start = _TELL_HEAD.size
    return _path(frame, start, size), frame[start + size :]


def parse_ask(frame: bytes) -> tuple[int, str, bytes]:
    """(request id, path, body) of an ASK frame."""
    try:
        _, request, size = _ASK_HEAD.unpack_from(frame)
    except struct.error:
        raise ProtocolError("truncated ASK frame") from None
    start = _ASK_HEAD.size
    return request, _path(frame, start, size), frame[start + size :]


def parse_reply(frame: bytes) -> tuple[int, int, bytes]:
    """(request id, status, payload) of a REPLY frame."""
    try:
        _, request, status = _REPLY_HEAD.unpack_from(frame)
    except struct.error:
        raise ProtocolError("truncated REPLY frame") from None
    return request, status, frame[_REPLY_HEAD.size :]


def _path(frame: bytes, start: int, size: int) -> str:
    raw = frame[start : start + size]
    if len(raw) != size:
        raise ProtocolError("truncated actor path")
    try:
        path = raw.decode()
    except UnicodeDecodeError:
        raise ProtocolError("an actor path that is not UTF-8") from None
    if not path.startswith("/"):
        raise ProtocolError(f"an actor path must start with '/': {path!r}")
    return path


# -- the handshake -------------------------------------------------------------------


def proof(secret: bytes | None, role: bytes, theirs: bytes, mine: bytes) -> bytes:
    """The HMAC that shows `secret` is known, bound to both nonces and a role."""
    if secret is None:
        return b""
    return hmac.new(secret, role + b"|" + theirs + b"|" + mine, hashlib.sha256).digest()


def proof_matches(expected: bytes, got: object) -> bool:
    return isinstance(got, bytes) and hmac.compare_digest(expected, got)


def frame_keys(secret: bytes, nonce_c: bytes, nonce_s: bytes) -> tuple[bytes, bytes]:
    """The keys that sign a connection's frames after its handshake: (client to
    server, server to client), one per direction so that a frame cannot be
    reflected back to its sender, and new for each connection (both nonces)."""
    nonces = b"|" + nonce_c + b"|" + nonce_s
    return (
        hmac.new(secret, b"frames c>s" + nonces, hashlib.sha256).digest(),
        hmac.new(secret, b"frames s>c" + nonces, hashlib.sha256).digest(),
    )
