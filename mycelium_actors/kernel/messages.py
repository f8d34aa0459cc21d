"""The framework's own messages: what watchers receive and what a proxy sends."""

from __future__ import annotations

from typing import Any

import attrs


class Envelope:
    """A message wrapped by a higher layer (tracing's context): the handler
    gets `message`. The actor's dispatch table resolves an envelope type once,
    through `entry_for`, off the hot path; dead letters show `message`."""

    __slots__ = ("message",)

    def __init__(self, message: Any) -> None:
        self.message = message

    @classmethod
    def entry_for(cls, actor_class: Any) -> tuple[Any, int]:
        """The dispatch entry `(fn, kind)` for this envelope type in `actor_class`;
        the layer that wraps messages subclasses this and says (tracing.py)."""
        raise TypeError(f"{cls.__qualname__} is not a kind of envelope a layer registered")


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
