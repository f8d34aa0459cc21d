"""Imports a package that is not installed: a bug in the user's module, not a bad target."""

import no_such_dependency  # noqa: F401
