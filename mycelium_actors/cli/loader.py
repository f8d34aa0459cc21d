"""Turn "module:attr" into an object, with one clear error per failure."""

from __future__ import annotations

import importlib
import sys
from typing import Any


class LoadError(Exception):
    """The target could not be loaded; the message is one line for the user."""


def load_target(target: str, app_dir: str | None = None) -> Any:
    """Import `module` and return `attr` (dotted attrs allowed) from "module:attr".

    Raises `LoadError` for a malformed target, a missing module or a missing
    attribute. An exception raised by the module's own code while importing
    propagates unchanged, so the user sees their traceback.
    """
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise LoadError(f"target must be 'module:attr', got {target!r}")
    if app_dir is not None and app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only a missing *target* module (or one of its packages) is our error;
        # a missing import inside the user's module is their bug: re-raise it.
        if exc.name is not None and (
            module_name == exc.name or module_name.startswith(exc.name + ".")
        ):
            where = f" (looked in --app-dir {app_dir!r} and the installed packages)"
            raise LoadError(
                f"could not import module {module_name!r}{where if app_dir is not None else ''}"
            ) from None
        raise
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LoadError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    return obj
