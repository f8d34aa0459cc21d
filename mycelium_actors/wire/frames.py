"""Node-to-node frames: their kinds and layouts, and the handshake's proofs.

A transport carries frames; the first byte of each names its kind. Data
frames (TELL, ASK) are binary with the message body from the codec; control
frames carry a small MessagePack array. `docs/wire.md` describes the layouts
byte by byte. Errors in REPLY frames are `wire.exceptions`.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

import msgspec

from ..errors import MyceliumError

MAGIC = "mycelium"
VERSION = 1

# Frame kinds (the first byte).
HELLO = 0x48  # H: [magic, version, name, incarnation, address, nonce, proof]
AUTH = 0x56  # V: [proof]
WELCOME = 0x4B  # K: []
GOODBYE = 0x47  # G: [reason]
TELL = 0x54  # T: u16 path length, path, body
ASK = 0x41  # A: u32 request id, u16 path length, path, body
REPLY = 0x52  # R: u32 request id, u8 status, payload (status 0: value body; 1: error array)
CREDIT = 0x43  # C: [path, n]
STOP = 0x53  # S: [request id, path]
WATCH = 0x57  # W: [path]
TERMINATED = 0x58  # X: [path, reason]
QUERY = 0x51  # Q: [request id, op, argument]
PING = 0x50  # P: []

OK, FAILED = 0, 1

_ASK_HEAD = struct.Struct(">BIH")
_TELL_HEAD = struct.Struct(">BH")
_REPLY_HEAD = struct.Struct(">BIB")

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()


class ProtocolError(MyceliumError):
    """A frame that breaks the protocol: the connection is closed with this reason."""


def control(kind: int, *items: Any) -> bytes:
    """A control frame: the kind byte, then the items as a MessagePack array."""
    return bytes((kind,)) + _encoder.encode(items)


def items(frame: bytes, count: int) -> list[Any]:
    """The MessagePack array of a control frame, checked to hold `count` items."""
    try:
        value = _decoder.decode(memoryview(frame)[1:])
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"malformed control frame: {exc}") from None
    if not isinstance(value, list) or len(value) != count:
        raise ProtocolError(f"a control frame of kind {frame[:1]!r} needs {count} items")
    return value


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
