"""Contract types (`@message`): the wire ids of the types that cross processes.

In one process any object is a message and nothing is copied. A message that
crosses a process boundary must be a contract type: a frozen attrs class with
a stable wire id registered here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ..errors import ContractError
from .schema import fields_of, require_frozen

T = TypeVar("T", bound=type)

MAX_WIRE_ID = 2**31 - 1  # ids are positive and fit a signed 32-bit int
#: Wire ids from here up are the library's own (the worker link's control messages).
LIBRARY_IDS = 0x7FFFFF00
_by_id: dict[int, type] = {}
_ID_ATTR = "__mycelium_wire_id__"


def check_contract(cls: type, id: int) -> None:
    """Raise `ContractError` unless `cls` can be carried under wire id `id`: a frozen
    attrs class whose field types a codec can carry, with an id in 1..2**31-1."""
    if not isinstance(id, int) or isinstance(id, bool) or not 0 < id <= MAX_WIRE_ID:
        raise ContractError(
            f"{getattr(cls, '__qualname__', cls)!s}: wire id must be an int in 1..{MAX_WIRE_ID}, "
            f"got {id!r}"
        )
    require_frozen(cls)
    fields_of(cls)


def message(*, id: int) -> Callable[[T], T]:
    """Register a frozen attrs class as a contract type with wire id `id`.

    Raises `ContractError` for a class that is not a frozen attrs class, a
    field type a codec cannot carry, an id outside 1..2**31-1, an id already
    registered, or a class already registered (a subclass does not inherit
    its parent's id, and may be registered under its own).
    """

    def register(cls: T) -> T:
        check_contract(cls, id)
        if (old := wire_id(cls)) is not None:
            raise ContractError(f"{_qualified(cls)} is already registered with wire id {old}")
        holder = _by_id.get(id)
        if holder is not None:
            raise ContractError(
                f"wire id {id} is already used by {_qualified(holder)}, "
                f"cannot register {_qualified(cls)}"
            )
        _by_id[id] = cls
        setattr(cls, _ID_ATTR, id)
        return cls

    return register


def _qualified(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def wire_id(cls: type) -> int | None:
    """The wire id of a contract type, or None for any other class (subclasses included)."""
    found: int | None = vars(cls).get(_ID_ATTR)
    return found


def contract_type(wire: int) -> type | None:
    """The contract type registered under wire id `wire`, or None."""
    return _by_id.get(wire)


def contract_modules() -> list[str]:
    """The modules that define the contract types registered in this process, in
    registration order (a worker process imports them first, so every message
    type its parent knows decodes there too)."""
    return list(dict.fromkeys(cls.__module__ for cls in _by_id.values()))
