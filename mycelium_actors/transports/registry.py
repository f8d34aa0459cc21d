"""The scheme registry: which adapter serves `scheme://` URLs.

Adapters call `register` (or are named to `register_lazy`) when imported;
the node layer finds them with `transport_for`, by scheme only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ..errors import TransportError
from .base import Transport

_FACTORIES: dict[str, Callable[[], Transport]] = {}
_LAZY: dict[str, tuple[str, str]] = {}  # scheme -> (module, what to install)
_INSTANCES: dict[str, Transport] = {}


def register(scheme: str, factory: Callable[[], Transport]) -> None:
    """Make `scheme://` URLs use the transport `factory()` builds (once, on first use)."""
    _FACTORIES[scheme] = factory
    _INSTANCES.pop(scheme, None)


def register_lazy(scheme: str, module: str, install: str) -> None:
    """`scheme://` is served by `module` (imported on first use; it calls `register`).

    `install` is what to tell a user whose import fails (a missing extra).
    """
    _LAZY[scheme] = (module, install)


def scheme_of(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        raise ValueError(f"not a URL with a scheme: {url!r}")
    return scheme


def transport_for(url: str) -> Transport:
    """The transport for `url`'s scheme; `TransportError` if there is none."""
    scheme = scheme_of(url)
    transport = _INSTANCES.get(scheme)
    if transport is not None:
        return transport
    if scheme not in _FACTORIES and scheme in _LAZY:
        module, install = _LAZY[scheme]
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise TransportError(f"{scheme}:// needs {install}") from exc
    factory = _FACTORIES.get(scheme)
    if factory is None:
        known = ", ".join(sorted({*_FACTORIES, *_LAZY})) or "none"
        raise TransportError(f"no transport for {scheme}:// (known: {known})")
    transport = _INSTANCES[scheme] = factory()
    return transport


def split_url(url: str) -> tuple[str, str]:
    """(node URL, actor path) of a full actor URL, by its scheme's rules."""
    return transport_for(url).split(url)
