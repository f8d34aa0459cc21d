"""Raises while it is imported: the CLI must show this traceback and exit 2."""

raise RuntimeError("broken at import time")
