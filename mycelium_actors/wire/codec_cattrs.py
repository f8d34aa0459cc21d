"""The cattrs backend of the codec: a cattrs converter with strict hooks.

cattrs turns a contract instance into plain data and back; MessagePack (through
msgspec, untyped but depth-bounded) turns plain data into bytes. Every
structure hook checks the exact type first, so nothing is coerced: cattrs's
own hooks would turn "5" into 5 and a str into a list of characters.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cattrs
import msgspec
from cattrs.cols import is_mapping, is_sequence, list_structure_factory
from cattrs.gen import make_mapping_structure_fn

from ..errors import SerializationError
from ..kernel.ref import ActorRef
from .codec import Backend, check_depth

if TYPE_CHECKING:
    from .codec import Codec


def _strict(tp: type) -> Callable[[Any, Any], Any]:
    def structure(value: Any, _: Any) -> Any:
        kind = type(value)
        if kind is tp or (tp is float and kind is int):
            return value
        raise TypeError(f"expected {tp.__name__}, got {kind.__name__}")

    return structure


def _only(kind: type, build: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def structure(value: Any, tp: Any) -> Any:
        if type(value) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return build(value, tp)

    return structure


def _is_ref(tp: Any) -> bool:
    return (
        tp is ActorRef
        or typing.get_origin(tp) is ActorRef
        or (isinstance(tp, type) and issubclass(tp, ActorRef))
    )


def _message(exc: BaseException, _: Any) -> str:
    if isinstance(exc, KeyError):
        return "missing required field"
    return str(exc)


class CattrsBackend(Backend):
    """Contract instances through one `cattrs.Converter` built for this codec."""

    def __init__(self, codec: Codec) -> None:
        self._codec = codec
        conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=True)
        for tp in (int, float, str, bool, bytes):
            conv.register_structure_hook(tp, _strict(tp))
        conv.register_structure_hook_factory(_is_ref, lambda _: self._structure_ref)
        conv.register_unstructure_hook_func(_is_ref, lambda ref: self._codec.refs.encode(ref))
        conv.register_structure_hook_factory(
            is_sequence, lambda t: _only(list, list_structure_factory(t, conv))
        )
        conv.register_structure_hook_factory(
            is_mapping, lambda t: _only(dict, make_mapping_structure_fn(t, conv))
        )
        self._conv = conv
        self._plain = msgspec.msgpack.Decoder()
        self._encoder = msgspec.msgpack.Encoder()

    def _structure_ref(self, value: Any, _: Any) -> ActorRef[Any]:
        if type(value) is not str:
            raise TypeError(f"expected an ActorRef address (str), got {type(value).__name__}")
        return self._codec.refs.decode(value)

    def decoder(self, cls: type) -> Callable[[bytes | memoryview], Any]:
        structure = self._conv.get_structure_hook(cls)
        name = cls.__qualname__

        def decode(data: bytes | memoryview) -> Any:
            check_depth(data, self._codec.max_depth + 1)  # the body's own map is a level
            plain = self._plain.decode(data)
            if type(plain) is not dict:
                raise SerializationError(f"{name}: expected a map, got {type(plain).__name__}")
            try:
                return structure(plain, cls)
            except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
                where = cattrs.transform_error(exc, path=name, format_exception=_message)
                text = "; ".join(f"{p}: {m}" for m, _, p in (e.rpartition(" @ ") for e in where))
                raise SerializationError(text) from exc

        return decode

    def encode(self, msg: object, cls: type) -> bytes:
        try:
            return self._encoder.encode(self._conv.unstructure(msg, cls))
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(f"{cls.__qualname__}: {exc}") from exc
