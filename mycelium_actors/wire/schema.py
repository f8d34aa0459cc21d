"""The field types a contract may carry, read from its annotations.

`int`, `float`, `str`, `bool`, `bytes`, `list[T]`, `dict[str, T]`, `T | None`,
`ActorRef` and other frozen attrs classes. Anything else (`object`, `Any`,
tuples, arbitrary classes) is refused with a `ContractError`, so a class that
registers is a class the codec can carry. Each field also gets a *check*,
which the codec runs before encoding (strict both ways: nothing is coerced).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

import attrs

from ..errors import ContractError
from ..kernel.ref import ActorRef

# A check returns None when the value fits, else what is wrong, starting with
# the path below the field: ": expected int, got str", "[2]: expected ...".
Check = Callable[[object], str | None]
SCALARS: tuple[type, ...] = (int, float, str, bool, bytes)


@attrs.frozen
class Field:
    """One field of a contract: its name, a fast exact type (or None) and its check."""

    name: str
    fast: type | None  # values of exactly this type need no further check
    check: Check
    depth: int  # nesting levels the field's values can take (a scalar is 0)


def _got(value: object) -> str:
    return type(value).__name__


def type_name(tp: Any) -> str:
    """How an annotation is written in errors and generated code."""
    if tp is types.NoneType:
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return " | ".join(type_name(a) for a in args)
    if origin is ActorRef:
        return "ActorRef"
    return f"{getattr(origin, '__name__', origin)}[{', '.join(type_name(a) for a in args)}]"


def _scalar(tp: type) -> Check:
    expected = f": expected {tp.__name__}, got "
    if tp is float:  # an int is accepted where a float is declared, as in typing

        def check_float(value: object) -> str | None:
            kind = type(value)
            return None if kind is float or kind is int else expected + _got(value)

        return check_float

    def check(value: object) -> str | None:
        return None if type(value) is tp else expected + _got(value)

    return check


def _list(item: Check) -> Check:
    def check(value: object) -> str | None:
        if type(value) is not list:
            return f": expected list, got {_got(value)}"
        for i, element in enumerate(value):
            if (problem := item(element)) is not None:
                return f"[{i}]{problem}"
        return None

    return check


def _dict(item: Check) -> Check:
    def check(value: object) -> str | None:
        if type(value) is not dict:
            return f": expected dict, got {_got(value)}"
        for key, element in value.items():
            if type(key) is not str:
                return f": expected str keys, got {_got(key)}"
            if (problem := item(element)) is not None:
                return f"[{key!r}]{problem}"
        return None

    return check


def _optional(inner: Check) -> Check:
    def check(value: object) -> str | None:
        return None if value is None else inner(value)

    return check


def _ref(value: object) -> str | None:
    return None if isinstance(value, ActorRef) else f": expected ActorRef, got {_got(value)}"


def _nested(cls: type, fields: tuple[Field, ...]) -> Check:
    def check(value: object) -> str | None:
        if type(value) is not cls:
            return f": expected {cls.__name__}, got {_got(value)}"
        problem = check_fields(value, fields)
        return None if problem is None else f".{problem}"

    return check


def check_fields(value: object, fields: tuple[Field, ...]) -> str | None:
    """None if every field of `value` fits its type, else "field: what is wrong"."""
    for field in fields:
        v = getattr(value, field.name)
        if type(v) is field.fast:
            continue
        if (problem := field.check(v)) is not None:
            return field.name + problem
    return None


def _parse(tp: Any, where: str, seen: tuple[type, ...]) -> tuple[Check, type | None, int]:
    """(check, fast exact type, depth) for annotation `tp`; `where` names it in errors."""
    if tp in SCALARS:
        return _scalar(tp), tp, 0
    if tp is ActorRef or typing.get_origin(tp) is ActorRef:
        return _ref, None, 0
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is list and len(args) == 1:
        item, _, depth = _parse(args[0], where, seen)
        return _list(item), None, depth + 1
    if origin is dict and len(args) == 2:
        if args[0] is not str:
            raise ContractError(f"{where}: dict keys must be str, not {type_name(args[0])}")
        item, _, depth = _parse(args[1], where, seen)
        return _dict(item), None, depth + 1
    if origin in (types.UnionType, typing.Union):
        rest = [a for a in args if a is not types.NoneType]
        if len(rest) == 1 and len(args) == 2:
            inner, fast, depth = _parse(rest[0], where, seen)
            return _optional(inner), fast, depth
        raise ContractError(
            f"{where}: {type_name(tp)} is not a contract type (only `T | None` unions)"
        )
    if isinstance(tp, type) and attrs.has(tp):
        require_frozen(tp)
        if tp in seen:
            raise ContractError(f"{where}: {tp.__name__} contains itself (nesting is bounded)")
        nested = fields_of(tp, (*seen, tp))
        depth = 1 + max((f.depth for f in nested), default=0)
        return _nested(tp, nested), None, depth
    raise ContractError(
        f"{where}: a codec cannot carry {type_name(tp)} (use int, float, str, bool, bytes, "
        "list[T], dict[str, T], T | None, ActorRef or another contract type)"
    )


def is_frozen(cls: type) -> bool:
    """Whether attrs class `cls` is frozen, asked through public behaviour only:
    a frozen class's `__setattr__` refuses any write with `FrozenInstanceError`."""
    try:
        probe: Any = object.__new__(cls)
        setter: Any = cls.__setattr__
        setter(probe, "__mycelium_probe__", None)
    except attrs.exceptions.FrozenInstanceError:
        return True
    except Exception:  # a slotted class refusing the unknown name, or a custom __new__
        return False
    return False


def require_frozen(cls: type) -> None:
    """Raise `ContractError` unless `cls` is a frozen attrs class."""
    if not (isinstance(cls, type) and attrs.has(cls) and is_frozen(cls)):
        raise ContractError(
            f"{getattr(cls, '__qualname__', cls)!s}: a contract type must be an @attrs.frozen "
            "class (put @message above @attrs.frozen)"
        )


def fields_of(cls: type, seen: tuple[type, ...] = ()) -> tuple[Field, ...]:
    """The checked fields of attrs class `cls`; raises `ContractError` for a type
    the codec cannot carry, or an annotation that does not resolve."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:  # a NameError, or anything an annotation raises
        raise ContractError(
            f"{cls.__qualname__}: field annotations do not resolve ({exc}); "
            "define the types a contract uses before it"
        ) from exc
    out = []
    for attribute in attrs.fields(cls):
        where = f"{cls.__qualname__}.{attribute.name}"
        check, fast, depth = _parse(hints.get(attribute.name, Any), where, seen or (cls,))
        out.append(Field(attribute.name, fast, check, depth))
    return tuple(out)
