"""Contract types (`@message`) and the framework's own messages.

In one process any object is a message and nothing is copied. A message that
crosses a process boundary must be a contract type: a frozen attrs class with
a stable wire id registered here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from .errors import ContractError

T = TypeVar("T", bound=type)

_by_id: dict[int, type] = {}


def _is_frozen(cls: type) -> bool:
    # attrs exposes no public "is frozen" flag; frozen classes refuse setattr.
    return getattr(cls.__setattr__, "__name__", "") == "_frozen_setattrs"


def message(*, id: int) -> Callable[[T], T]:
    """Register a frozen attrs class as a contract type with wire id `id`.

    Raises `ContractError` for a class that is not a frozen attrs class, a
    negative id, or an id already held by a different class.
    """

    def register(cls: T) -> T:
        if not isinstance(id, int) or isinstance(id, bool) or id < 0:
            raise ContractError(f"{cls.__qualname__}: wire id must be a non-negative int")
        if not attrs.has(cls) or not _is_frozen(cls):
            raise ContractError(
                f"{cls.__qualname__}: a contract type must be an @attrs.frozen class "
                "(put @message above @attrs.frozen)"
            )
        holder = _by_id.get(id)
        if holder is not None and _qualified(holder) != _qualified(cls):
            raise ContractError(
                f"wire id {id} is already used by {_qualified(holder)}, "
                f"cannot register {_qualified(cls)}"
            )
        _by_id[id] = cls
        cls.__mycelium_wire_id__ = id  # type: ignore[attr-defined]
        return cls

    return register


def _qualified(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def wire_id(cls: type) -> int | None:
    """The wire id of a contract type, or None for any other class."""
    return getattr(cls, "__mycelium_wire_id__", None)


def contract_type(wire: int) -> type | None:
    """The contract type registered under wire id `wire`, or None."""
    return _by_id.get(wire)


@attrs.frozen
class Terminated:
    """Delivered once to watchers when `ref`'s actor stops for good."""

    ref: Any
    reason: str = "normal"


@attrs.frozen
class ProxyCall:
    """A method call sent through `ref.proxy()`; runs inside the actor."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = attrs.field(factory=dict)
