"""The framework's own messages: what watchers receive and what a proxy sends."""

from __future__ import annotations

from typing import Any

import attrs


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
