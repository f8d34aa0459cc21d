"""The wire codec: contract instances and reply values to bytes and back.

A body is a 4-byte big-endian wire id followed by MessagePack: a contract
instance as a map of its fields by name, or (id 0) a plain reply value. Both
ways are strict (nothing is coerced, see `schema`); a decoder ignores fields
it does not know and fills defaults for fields it misses. Every failure is a
`SerializationError` naming the type and the field. Nothing is pickled,
evaluated or imported: a wire id is looked up among the types given.

Two backends share the envelope, the limits and the encode-side checks:
"msgspec" (the default, the wire's) and "cattrs" (strict cattrs hooks; the
reference, slower; see docs/wire.md for the figures).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs
import msgspec

from ..errors import SerializationError
from ..kernel.ref import ActorRef
from .registry import check_contract, contract_type, wire_id
from .schema import Field, check_fields, fields_of

PLAIN_ID = 0  # the wire id of a plain reply value
MAX_SIZE = 16 * 1024 * 1024  # API.md section 6: the default maximum frame size
MAX_DEPTH = 32  # containers inside containers, for contract fields and plain values
_HEAD = 4
_PLAIN_HEADER = PLAIN_ID.to_bytes(_HEAD, "big")
BackendName = Literal["msgspec", "cattrs"]


def _refuse_encode(ref: ActorRef[Any]) -> str:
    raise SerializationError(
        f"cannot send {ref!r}: a ref crosses the wire only while its "
        "system listens (ActorSystem(..., listen=...))"
    )


def _refuse_decode(address: str) -> ActorRef[Any]:
    raise SerializationError(f"cannot receive the ref {address!r}: no transport resolves refs here")


@attrs.frozen
class RefHook:
    """How `ActorRef` fields cross the wire; a transport installs its own.

    `encode(ref)` returns the ref's address; `decode(address)` returns a ref.
    Either may raise `SerializationError`. The default refuses both.
    """

    encode: Callable[[ActorRef[Any]], str] = _refuse_encode
    decode: Callable[[str], ActorRef[Any]] = _refuse_decode


@attrs.frozen
class _Entry:
    cls: type
    header: bytes
    fields: tuple[Field, ...]
    decode: Callable[[bytes | memoryview], Any]


#: A type's fast encoder: its whole body, or None where a field does not fit its
#: type (the general path then says which).
FastEncode = Callable[[Any], "bytes | None"]


def fast_encoder(
    fields: tuple[Field, ...], header: bytes, encode: Callable[[Any], bytes]
) -> FastEncode:
    """A per-type encoder with the field checks of `check_fields` written out:
    one function per contract type, built once when the type is first met (as
    attrs builds `__init__`), so a message costs its attribute reads and type
    tests, not a loop over `Field`s. The source is made from the class's own
    attribute names, never from anything received."""
    env: dict[str, Any] = {"_encode": encode, "_header": header}
    lines = ["def encode(msg):"]
    tests = []
    for i, field in enumerate(fields):
        if not field.name.isidentifier():  # attrs guarantees it; the source relies on it
            raise SerializationError(f"field name {field.name!r} is not an identifier")
        value = f"msg.{field.name}"  # read where tested: no local to store and load
        env[f"_check{i}"] = field.check
        test = f"_check{i}({value}) is None"
        if field.fast is not None:
            env[f"_type{i}"] = field.fast
            test = f"(type({value}) is _type{i} or {test})"
        tests.append(test)
    lines.append(f"    if {' and '.join(tests) or 'True'}:")
    lines.append("        return _header + _encode(msg)")
    lines.append("    return None")
    exec("\n".join(lines), env)  # our own source, made from attribute names
    built: FastEncode = env["encode"]
    return built


# MessagePack headers: first byte -> (bytes of length field, extra bytes, kind).
# kind: "s" skips length bytes of payload, "a" opens an array, "m" a map.
_SIZED = {
    0xC4: (1, 0, "s"), 0xC5: (2, 0, "s"), 0xC6: (4, 0, "s"),  # bin
    0xC7: (1, 1, "s"), 0xC8: (2, 1, "s"), 0xC9: (4, 1, "s"),  # ext
    0xD9: (1, 0, "s"), 0xDA: (2, 0, "s"), 0xDB: (4, 0, "s"),  # str
    0xDC: (2, 0, "a"), 0xDD: (4, 0, "a"), 0xDE: (2, 0, "m"), 0xDF: (4, 0, "m"),
}  # fmt: skip
_FIXED = {  # nil, false, true, floats, ints, fixext: bytes after the first
    0xC0: 0, 0xC2: 0, 0xC3: 0, 0xCA: 4, 0xCB: 8, 0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,
    0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17,
}  # fmt: skip


#: Reply types encoded without a check: every value of them is plain data.
_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})
#: First bytes of MessagePack that hold one scalar (nil, bool, int, float, str, bin):
#: such a reply holds no container and no ext, so it needs no walk of its headers.
_SCALAR_HEAD = tuple(
    b <= 0x7F
    or b >= 0xE0
    or 0xA0 <= b <= 0xBF
    or b in (0xC0, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6)
    or 0xCA <= b <= 0xD3
    or 0xD9 <= b <= 0xDB
    for b in range(256)
)


def check_depth(data: bytes | memoryview, limit: int) -> None:
    """Walk MessagePack headers without building anything; raise `SerializationError`
    if containers nest deeper than `limit` or the data is truncated or malformed.

    For untyped data only (plain replies, the cattrs backend): a typed msgspec
    decoder is bounded by its contract type already.
    """
    view = memoryview(data)
    pos, end = 0, len(view)
    stack: list[int] = []  # items still due in each open container
    due = 1
    while due or stack:
        if not due:
            due = stack.pop()
            continue
        if pos >= end:
            raise SerializationError("truncated MessagePack data")
        head = view[pos]
        pos += 1
        due -= 1
        count = -1
        if head <= 0x7F or head >= 0xE0:
            continue
        if head <= 0x8F:
            count = (head & 0x0F) * 2
        elif head <= 0x9F:
            count = head & 0x0F
        elif head <= 0xBF:
            pos += head & 0x1F
        elif head in _FIXED:
            pos += _FIXED[head]
        elif head in _SIZED:
            width, extra, kind = _SIZED[head]
            n = int.from_bytes(view[pos : pos + width], "big")
            pos += width
            if kind == "s":
                pos += extra + n
            else:
                count = n * 2 if kind == "m" else n
        else:
            raise SerializationError(f"malformed MessagePack: byte 0x{head:02x}")
        if count >= 0:
            if len(stack) >= limit:
                raise SerializationError(f"nested deeper than {limit} levels")
            stack.append(due)
            due = count
    if pos != end:
        raise SerializationError("truncated MessagePack data" if pos > end else "trailing bytes")


def body_wire_id(body: bytes) -> int | None:
    """The wire id a message body starts with (None if it is too short to have one)."""
    return int.from_bytes(body[:_HEAD], "big") if len(body) >= _HEAD else None


def _check_plain(value: object, depth: int) -> str | None:
    kind = type(value)
    if value is None or kind in (bool, int, float, str, bytes):
        return None
    if isinstance(value, list | dict) and (kind is list or kind is dict):
        if depth <= 0:
            return ": nested too deep"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if type(key) is not str and kind is dict:
                return f": dict keys must be str, got {type(key).__name__}"
            if (problem := _check_plain(item, depth - 1)) is not None:
                return f"[{key!r}]{problem}"
        return None
    return f": {kind.__name__} is neither a contract type nor plain data"


def _describe(exc: msgspec.ValidationError) -> str:
    # msgspec says "Expected `int`, got `str` - at `$.amount`": name the field first.
    text, _, path = str(exc).partition(" - at `")
    text = text.replace("`", "")
    return f"{path.rstrip('`')[1:]}: {text[:1].lower()}{text[1:]}"


class Codec:
    """Encodes contract instances and reply values to bytes, and back.

    `types`: None for every type registered with `@message` in this process
    (looked up when first met), a mapping of wire id to class (a test can hold
    two versions of one message), or an iterable of registered classes.
    """

    def __init__(
        self,
        types: Mapping[int, type] | Iterable[type] | None = None,
        *,
        backend: BackendName = "msgspec",
        max_size: int = MAX_SIZE,
        max_depth: int = MAX_DEPTH,
        refs: RefHook | None = None,
    ) -> None:
        self._small = 0  # bodies up to this size take decode's hot path (set with max_size)
        self.max_size = max_size
        self.max_depth = max_depth
        self.refs = refs or RefHook()
        self._by_id: dict[int, _Entry] = {}
        self._by_header: dict[bytes, _Entry] = {}
        self._by_class: dict[type, _Entry] = {}
        self._fast: dict[type, FastEncode] = {}  # the hot path of encode, by class
        self._decoders: dict[bytes, Callable[[bytes], Any]] = {}  # of decode, by wire id
        self._registry = types is None
        if backend == "msgspec":
            self._backend: Backend = _Msgspec(self)
        elif backend == "cattrs":
            from .codec_cattrs import CattrsBackend

            self._backend = CattrsBackend(self)
        else:
            raise ValueError(f"unknown codec backend {backend!r}")
        pairs: Iterable[tuple[int | None, type]] = (
            ()
            if types is None
            else types.items()
            if isinstance(types, Mapping)
            else ((wire_id(cls), cls) for cls in types)
        )
        for wire, cls in pairs:
            if wire is None:
                raise SerializationError(f"{cls.__qualname__} is not a contract type (no @message)")
            self._add(wire, cls)

    def _add(self, wire: int, cls: type) -> _Entry:
        try:
            check_contract(cls, wire)
            fields = fields_of(cls)
        except Exception as exc:
            raise SerializationError(str(exc)) from exc
        if (depth := 1 + max((f.depth for f in fields), default=0)) > self.max_depth:
            raise SerializationError(
                f"{cls.__qualname__} nests {depth} levels, over {self.max_depth}"
            )
        entry = _Entry(cls, wire.to_bytes(_HEAD, "big"), fields, self._backend.decoder(cls))
        self._by_id[wire] = entry
        self._by_header[entry.header] = entry
        self._by_class[cls] = entry
        fast = self._backend.fast_encoder(entry)
        if fast is not None:
            self._fast[cls] = fast
        self._decoders[entry.header] = entry.decode
        return entry

    @property
    def max_size(self) -> int:
        """The largest body encoded or decoded; `SerializationError` beyond it."""
        return self._max_size

    @max_size.setter
    def max_size(self, value: int) -> None:
        self._max_size = value
        self._small = min(value, 4096)

    def _entry(self, cls: type) -> _Entry | None:
        entry = self._by_class.get(cls)
        if entry is None and self._registry and (wire := wire_id(cls)) is not None:
            entry = self._add(wire, cls)
        return entry

    def is_contract(self, value: object) -> bool:
        """Whether `value` is an instance of a contract type this codec carries."""
        return self._entry(type(value)) is not None

    def encode(self, msg: object) -> bytes:
        """The body of contract instance `msg`; raises `SerializationError` for any
        other object, a field value that does not fit its type, or an oversize body."""
        try:  # the hot path: a known type whose fields all fit
            data = self._fast[type(msg)](msg)
            if data is not None and len(data) <= self._max_size:
                return data
        except Exception:
            pass  # an unknown type, or what the general path below says
        entry = self._by_class.get(type(msg)) or self._entry(type(msg))
        if entry is None:
            raise SerializationError(
                f"{type(msg).__qualname__} is not a contract type: only @message classes "
                "cross a process boundary"
            )
        if (problem := check_fields(msg, entry.fields)) is not None:
            raise SerializationError(f"{entry.cls.__qualname__}.{problem}")
        data = entry.header + self._backend.encode(msg, entry.cls)
        if len(data) > self.max_size:
            raise SerializationError(f"{len(data)} bytes is over the limit of {self.max_size}")
        return data

    def decode(self, data: bytes) -> object:
        """The contract instance in body `data`; raises `SerializationError` for an
        oversize or malformed body, an unknown wire id, or a value of the wrong type."""
        # The hot path: a small body of a known type (a slice copies less than a view
        # costs). Not bytes (a view's slice is unhashable), not known, or not valid:
        # the general path below says what was wrong.
        try:
            if len(data) <= self._small:
                return self._decoders[data[:_HEAD]](data[_HEAD:])
        except Exception:
            pass
        entry = self._lookup(data)
        if entry is None:
            raise SerializationError("a plain value where a contract message was expected")
        return self._decode(entry, data)

    def encode_value(self, value: object) -> bytes:
        """A reply: a contract instance, or plain data (None, bool, int, float, str,
        bytes, lists and dicts with str keys of these)."""
        kind = type(value)
        if kind in _SCALARS:  # the hot path: a scalar reply, nothing to check or look up
            try:
                data = _PLAIN_HEADER + self._backend.encode_scalar(value)
            except Exception:
                pass  # an int beyond 64 bits: the general path below says so
            else:
                if len(data) <= self._max_size:
                    return data
        if self._entry(kind) is not None:
            return self.encode(value)
        if (problem := _check_plain(value, self.max_depth)) is not None:
            raise SerializationError(f"reply{problem}")
        return self._sized(_PLAIN_HEADER + self._backend.encode_plain(value))

    def decode_value(self, data: bytes) -> object:
        """A reply encoded by `encode_value`."""
        # The hot paths: a small contract instance (as decode), or a plain scalar (its
        # first byte says so: no container to bound, no key to check). Anything else,
        # or anything wrong, takes the general path below, which says what.
        try:
            if len(data) <= self._small:
                head = data[:_HEAD]
                if head != _PLAIN_HEADER:
                    return self._decoders[head](data[_HEAD:])
                if _SCALAR_HEAD[data[_HEAD]]:
                    return self._backend.decode_scalar(data[_HEAD:])
        except Exception:
            pass
        entry = self._lookup(data)
        if entry is not None:
            return self._decode(entry, data)
        try:
            value = self._backend.decode_plain(memoryview(data)[_HEAD:])
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(f"malformed reply: {exc}") from exc
        if (problem := _check_plain(value, self.max_depth)) is not None:
            raise SerializationError(f"reply{problem}")  # an ext type, a non-str key
        return value

    def _sized(self, data: bytes) -> bytes:
        if len(data) > self.max_size:
            raise SerializationError(f"{len(data)} bytes is over the limit of {self.max_size}")
        return data

    def _lookup(self, data: bytes) -> _Entry | None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise SerializationError(f"expected bytes, got {type(data).__name__}")
        if len(data) > self.max_size:
            raise SerializationError(f"{len(data)} bytes is over the limit of {self.max_size}")
        if len(data) < _HEAD:
            raise SerializationError(f"a body of {len(data)} bytes has no wire id")
        wire = int.from_bytes(data[:_HEAD], "big")
        if wire == PLAIN_ID:
            return None
        entry = self._by_id.get(wire)
        if entry is None and self._registry and (cls := contract_type(wire)) is not None:
            entry = self._add(wire, cls)
        if entry is None:
            raise SerializationError(f"unknown wire id {wire}")
        return entry

    def _decode(self, entry: _Entry, data: bytes) -> object:
        try:
            return entry.decode(data[_HEAD:] if len(data) < 4096 else memoryview(data)[_HEAD:])
        except SerializationError:
            raise
        except msgspec.ValidationError as exc:
            raise SerializationError(f"{entry.cls.__qualname__}{_describe(exc)}") from exc
        except Exception as exc:  # malformed bytes, or whatever a class's own hooks raise
            raise SerializationError(f"{entry.cls.__qualname__}: malformed body ({exc})") from exc


class Backend(ABC):
    """What differs between backends: fields to MessagePack and back.

    Plain reply values are the same on both: untyped MessagePack, depth-checked first.
    """

    _codec: Codec
    _encoder: msgspec.msgpack.Encoder
    _plain: msgspec.msgpack.Decoder[Any]

    @abstractmethod
    def decoder(self, cls: type) -> Callable[[bytes | memoryview], Any]:
        """A strict decoder of a body (after the wire id) into an instance of `cls`."""

    @abstractmethod
    def encode(self, msg: object, cls: type) -> bytes:
        """The MessagePack of `msg`'s fields (already checked against their types)."""

    def fast_encoder(self, entry: _Entry) -> FastEncode | None:
        """A per-type encoder for `Codec.encode`'s hot path, or None for none."""
        return None

    def encode_plain(self, value: object) -> bytes:
        try:
            return self._encoder.encode(value)
        except Exception as exc:
            raise SerializationError(f"reply: {exc}") from exc

    def decode_plain(self, data: bytes | memoryview) -> object:
        check_depth(data, self._codec.max_depth)
        return self._plain.decode(data)

    def encode_scalar(self, value: object) -> bytes:
        """A plain scalar (no container: nothing to check); may raise for a huge int."""
        return self._encoder.encode(value)

    def decode_scalar(self, data: bytes) -> object:
        """MessagePack whose first byte is a scalar's; raises if it is anything more."""
        return self._plain.decode(data)


class _Msgspec(Backend):
    """msgspec reads and writes attrs classes in C; its typed decoders are strict."""

    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        self._encoder = msgspec.msgpack.Encoder(enc_hook=self._enc_hook)
        self._plain = msgspec.msgpack.Decoder()

    def _enc_hook(self, obj: object) -> object:
        if isinstance(obj, ActorRef):
            return self._codec.refs.encode(obj)
        raise SerializationError(f"cannot encode {type(obj).__name__}")

    def _dec_hook(self, tp: Any, obj: object) -> object:
        if not isinstance(obj, str):
            raise TypeError(f"expected an ActorRef address (str), got {type(obj).__name__}")
        return self._codec.refs.decode(obj)

    def decoder(self, cls: type) -> Callable[[bytes | memoryview], Any]:
        return msgspec.msgpack.Decoder(cls, dec_hook=self._dec_hook).decode

    def fast_encoder(self, entry: _Entry) -> FastEncode | None:
        return fast_encoder(entry.fields, entry.header, self._encoder.encode)

    def encode(self, msg: object, cls: type) -> bytes:
        try:
            return self._encoder.encode(msg)
        except SerializationError:
            raise
        except Exception as exc:  # an int beyond 64 bits
            raise SerializationError(f"{cls.__qualname__}: {exc}") from exc
