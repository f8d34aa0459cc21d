"""Where our events go: through structlog once the application configured it,
else to the standard `logging` logger "mycelium_actors".

A library must not print. structlog's builtin defaults write every event to
stdout (and, with rich installed, a page of locals per crash), so while they
are in force our events go to stdlib logging instead, where the application's
handlers decide; with none, Python's last-resort handler shows warnings and
errors on stderr, one line each. Any change to structlog's configuration,
`structlog.testing.capture_logs()` included, sends them through structlog.
The check runs per event: these are lifecycle events, not the per-message path.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import structlog

NAME = "mycelium_actors"
STDLIB = logging.getLogger(NAME)

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
# Fields that would clash with a LogRecord's own attributes stay in the message only.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


def _config_key() -> tuple[Any, ...]:
    config = structlog.get_config()
    return (
        config["logger_factory"],
        config["wrapper_class"],
        config["context_class"],
        *config["processors"],
    )


# structlog's builtin defaults, by identity: `reset_defaults()` restores these
# same objects, and `capture_logs()` leaves a configured-looking flag behind
# but restores them too. If an application configured structlog before we
# were imported, there is nothing to compare with: it is configured.
_DEFAULTS = None if structlog.is_configured() else _config_key()


def structlog_configured() -> bool:
    """True unless structlog still runs on its builtin defaults."""
    if not structlog.is_configured():
        return False
    return _DEFAULTS is None or _config_key() != _DEFAULTS


# What a filtering bound logger (`structlog.make_filtering_bound_logger`) has
# for a level it drops: one shared no-op, the same function for every level.
_DROPPED = structlog.make_filtering_bound_logger(logging.CRITICAL).debug

#: Callables adding fields to every event (tracing's `trace_id`), registered by
#: higher layers; empty unless a system turned tracing on.
_SOURCES: list[Callable[[], dict[str, Any]]] = []


def add_context_source(source: Callable[[], dict[str, Any]]) -> None:
    """Add the fields `source()` returns to every event emitted from now on."""
    if source not in _SOURCES:
        _SOURCES.append(source)


def get_logger(**context: Any) -> EventLogger:
    """A structlog-style logger for our events, bound with `context`."""
    return EventLogger(context)


class EventLogger:
    """`log.info("event", key=value)` and `bind(...)`, routed per event (see module doc)."""

    __slots__ = ("_bound", "_context")

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context
        self._bound: tuple[tuple[Any, ...], Any] | None = None  # (config, structlog logger)

    def __repr__(self) -> str:
        return f"<EventLogger {self._context!r}>"

    def bind(self, **values: Any) -> EventLogger:
        return EventLogger({**self._context, **values})

    def unbind(self, *keys: str) -> EventLogger:
        """Raises KeyError for a key that is not bound, as structlog does."""
        context = dict(self._context)
        for key in keys:
            del context[key]
        return EventLogger(context)

    def try_unbind(self, *keys: str) -> EventLogger:
        return EventLogger({k: v for k, v in self._context.items() if k not in keys})

    def new(self, **values: Any) -> EventLogger:
        return EventLogger(values)

    def debug(self, event: str, *args: Any, **kw: Any) -> None:
        self._emit("debug", event, args, kw)

    def info(self, event: str, *args: Any, **kw: Any) -> None:
        self._emit("info", event, args, kw)

    def msg(self, event: str, *args: Any, **kw: Any) -> None:
        self._emit("msg", event, args, kw)

    def warning(self, event: str, *args: Any, **kw: Any) -> None:
        self._emit("warning", event, args, kw)

    warn = warning

    def error(self, event: str, *args: Any, **kw: Any) -> None:
        self._emit("error", event, args, kw)

    def exception(self, event: str, *args: Any, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        self._emit("error", event, args, kw)

    def critical(self, event: str, *args: Any, **kw: Any) -> None:
        self._emit("critical", event, args, kw)

    fatal = critical

    def log(self, level: int, event: str, *args: Any, **kw: Any) -> None:
        name = logging.getLevelName(level).lower()
        self._emit(name if name in _LEVELS else "info", event, args, kw)

    def enabled(self, method: str) -> bool:
        """Whether an event at `method`'s level would be logged at all: False when
        the route it takes drops that level (a stdlib logger's level, a structlog
        filtering bound logger), so a caller can skip building the event."""
        if not structlog.is_configured():
            return STDLIB.isEnabledFor(_LEVELS[method])
        # A wrapper class that drops the level decides alone: the defaults drop
        # none, so such a configuration is not the defaults and the event would
        # go to that wrapper. (The cheap test first: no configuration key.)
        if getattr(structlog.get_config()["wrapper_class"], method, None) is _DROPPED:
            return False
        if _config_key() == _DEFAULTS:
            return STDLIB.isEnabledFor(_LEVELS[method])
        return True  # structlog's own processors decide

    def _emit(self, method: str, event: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        for source in _SOURCES:
            kw = {**source(), **kw}
        if not structlog.is_configured():
            self._to_stdlib(_LEVELS[method], event, args, kw)
            return
        key = _config_key()
        if key == _DEFAULTS:
            self._to_stdlib(_LEVELS[method], event, args, kw)
            return
        # Re-bind after a reconfiguration, so a new logger factory is honoured.
        if self._bound is None or self._bound[0] != key:
            self._bound = (key, structlog.get_logger(NAME).bind(**self._context))
        getattr(self._bound[1], method)(event, *args, **kw)

    def _to_stdlib(self, level: int, event: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        if not STDLIB.isEnabledFor(level):
            return
        exc_info = kw.pop("exc_info", None)
        stack_info = bool(kw.pop("stack_info", False))
        fields = {**self._context, **kw}
        if exc_info and not STDLIB.hasHandlers():
            # Only the last-resort handler would see it: one line per expected
            # crash, not a traceback each (an application's handler gets exc_info).
            exc = _exception_of(exc_info)
            fields.setdefault("error", exc)  # actor.crashed has its own error and exc_type
            exc_info = None
        text = event % args if args else event
        line = " ".join([text, *(f"{k}={_show(v)}" for k, v in fields.items())])
        extra = {k: v for k, v in fields.items() if k not in _RECORD_ATTRS}
        extra["event"] = text
        STDLIB.log(level, line, exc_info=exc_info, stack_info=stack_info, extra=extra, stacklevel=4)


def _exception_of(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1]  # type: ignore[no-any-return]
    return sys.exc_info()[1]


def _show(value: Any) -> str:
    if isinstance(value, str) and value and not any(c.isspace() or c in "='\"" for c in value):
        return value
    return repr(value)
