"""Lifecycle events: what the system says about its actors (API.md 8)."""

from __future__ import annotations


def exc_type_name(cls: type[BaseException]) -> str:
    """`ValueError` for a builtin, `app.bank.Overdrawn` for anything else."""
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"
