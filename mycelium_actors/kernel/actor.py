"""The `Actor` base class and `@handler` dispatch.

Handlers are resolved once, when a class is created: the first parameter's
annotation (or the type given to `@handler(T)`) names the message type. At run
time dispatch is one dict lookup on the message's exact type; the first message
of a new subtype walks its MRO once and the answer is cached per class.
"""

from __future__ import annotations

import dis
import inspect
import sys
import types
import typing
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar, Union

from .context import Tick
from .messages import Envelope, ProxyCall, Terminated

if TYPE_CHECKING:
    from .context import ActorContext
    from .executor import Executor

#: (function, kind); `function` is called with (actor, message); `kind` is
#: false for a plain function, else `NOWAIT` or `AWAITS` (below).
HandlerEntry = tuple[Callable[..., Any], int]

#: An `async def` handler with no `await`, `async for` or `async with` in its
#: body: it never suspends, so nothing it starts can be awaited by it.
NOWAIT = 1
#: Any other coroutine function: it may suspend.
AWAITS = 2

_HANDLES_ATTR = "__mycelium_handles__"

#: The context of the actor being constructed, so `self.context` works in `__init__`.
constructing: ContextVar[ActorContext | None] = ContextVar("mycelium_constructing", default=None)

OVERFLOW_POLICIES = ("block", "drop_new", "drop_old", "fail")


class Unhandled(BaseException):
    """Control flow: the message has no handler (a BaseException so user code can't eat it)."""


def _unhandled(actor: Actor, message: Any) -> None:
    if isinstance(message, Terminated):
        return  # an unwatched death notice is ignored, as in Akka
    raise Unhandled


UNHANDLED: HandlerEntry = (_unhandled, 0)

_YIELD = dis.opmap.get("YIELD_VALUE")


def handler_kind(fn: Any) -> int:
    """0 for a plain function, else `NOWAIT` or `AWAITS`.

    The bet: in CPython every suspension point of a coroutine (`await`, `async
    for`, `async with`, also in a comprehension) is a YIELD_VALUE in its own
    code object. Anything that is not a plain function with such a code object
    (a partial, a decorator's wrapper that awaits) counts as `AWAITS`.
    """
    if not inspect.iscoroutinefunction(fn):
        return 0
    code = getattr(fn, "__code__", None)
    if _YIELD is None or not isinstance(fn, types.FunctionType) or code is None:
        return AWAITS
    if any(ins.opcode == _YIELD for ins in dis.get_instructions(code)):
        return AWAITS
    return NOWAIT


def handler(target: Any = None) -> Any:
    """Mark a method as the handler for a message type.

    `@handler` reads the type from the annotation of the first parameter after
    `self`; `@handler(T)` (or `@handler((A, B))`) names it explicitly. Sync and
    async methods both work. A handler for a base class also receives its
    subclasses; the most specific handler wins.
    """
    if inspect.isfunction(target):
        setattr(target, _HANDLES_ATTR, None)
        return target

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.isfunction(fn):
            raise TypeError(f"@handler applies to functions, not {fn!r}")
        setattr(fn, _HANDLES_ATTR, target)
        return fn

    if target is None:
        return mark
    _message_types(target, "@handler()")  # validate now, not at class creation
    return mark


def _message_types(spec: Any, where: str) -> tuple[type, ...]:
    """Turn an annotation (a class, a union, a tuple of classes) into classes."""
    if isinstance(spec, tuple):
        return tuple(t for s in spec for t in _message_types(s, where))
    if typing.get_origin(spec) in (Union, types.UnionType):
        return tuple(t for s in typing.get_args(spec) for t in _message_types(s, where))
    if spec is Any or spec is object:
        return (object,)
    origin = typing.get_origin(spec)
    if isinstance(origin, type):
        return (origin,)
    if isinstance(spec, type):
        return (spec,)
    raise TypeError(f"{where}: {spec!r} is not a message class")


# The bet: CPython's `sys._getframe` shows the frame that runs a `class`
# statement, whose locals name message classes defined in a function. Without
# it, annotations resolve from module globals (and the class) only.
_getframe: Callable[[int], types.FrameType] | None = getattr(sys, "_getframe", None)


def _class_statement_frame() -> types.FrameType | None:
    """The frame running the `class` statement being initialised, or None.

    Called from `Actor.__init_subclass__`; skips every `__init_subclass__`
    in between (a base class may define its own and call `super()`).
    """
    if _getframe is None:
        return None
    frame: types.FrameType | None = _getframe(2)
    while frame is not None and frame.f_code.co_name == "__init_subclass__":
        frame = frame.f_back
    return frame


def _resolve_handlers(
    cls: type, namespace_frame: types.FrameType | None
) -> dict[type, HandlerEntry]:
    found: dict[type, HandlerEntry] = {}
    localns = dict(namespace_frame.f_locals) if namespace_frame is not None else {}
    localns.update(vars(cls))
    localns.setdefault(cls.__name__, cls)
    for attr, fn in vars(cls).items():
        if not inspect.isfunction(fn) or not hasattr(fn, _HANDLES_ATTR):
            continue
        where = f"{cls.__qualname__}.{attr}"
        spec = getattr(fn, _HANDLES_ATTR)
        if spec is None:
            params = list(inspect.signature(fn).parameters.values())
            if len(params) < 2:
                raise TypeError(f"{where}: a handler takes (self, message)")
            try:
                hints = typing.get_type_hints(fn, localns=localns)
            except Exception as exc:
                raise TypeError(f"{where}: cannot resolve the message annotation: {exc}") from exc
            if params[1].name not in hints:
                raise TypeError(f"{where}: annotate the message parameter or use @handler(T)")
            spec = hints[params[1].name]
        entry = (fn, handler_kind(fn))
        for msg_type in _message_types(spec, where):
            if msg_type in found:
                raise TypeError(f"{where}: a second handler for {msg_type.__qualname__}")
            found[msg_type] = entry
    return found


class Actor:
    """Base class of every actor: subclass it and add `@handler` methods.

    Hooks run inside the actor's own task (on its executor's thread), never
    concurrently with a handler.
    """

    #: Bounded mailbox size; the spawn call or `Child` can override it.
    mailbox_capacity: ClassVar[int] = 1000
    #: What a full mailbox does: "block" | "drop_new" | "drop_old" | "fail".
    mailbox_overflow: ClassVar[str] = "block"
    #: Default executor for instances of this class (None: the system loop).
    executor: ClassVar[Executor | None] = None

    _handlers: ClassVar[dict[type, HandlerEntry]] = {}
    _dispatch: ClassVar[dict[type, HandlerEntry]] = {}
    _fallback: ClassVar[HandlerEntry | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.mailbox_overflow not in OVERFLOW_POLICIES:
            raise TypeError(
                f"{cls.__qualname__}.mailbox_overflow must be one of {OVERFLOW_POLICIES}, "
                f"not {cls.mailbox_overflow!r}"
            )
        merged: dict[type, HandlerEntry] = {}
        for base in reversed(cls.__mro__[1:]):
            merged.update(getattr(base, "_handlers", {}) if issubclass(base, Actor) else {})
        merged.update(_resolve_handlers(cls, _class_statement_frame()))
        cls._handlers = merged
        cls._dispatch = dict(merged)
        on_receive = cls.on_receive
        cls._fallback = (
            None if on_receive is Actor.on_receive else (on_receive, handler_kind(on_receive))
        )

    def __init__(self) -> None:
        self._context = constructing.get()

    def bind_context(self, context: ActorContext) -> None:
        """Attach this incarnation's context (the system does, after construction)."""
        self._context = context

    @property
    def context(self) -> ActorContext:
        """This incarnation's context (refs, logger, spawn, stop, timers)."""
        ctx = self.__dict__.get("_context") or constructing.get()
        if ctx is None:
            raise RuntimeError(
                f"{type(self).__qualname__} was not created by an ActorSystem; "
                "use system.spawn() or a supervision tree"
            )
        return ctx

    async def on_start(self) -> None:
        """Runs before the first message of each incarnation."""

    async def on_stop(self) -> None:
        """Runs after the last message, also before a restart (not after a kill)."""

    async def on_failure(self, exc: BaseException) -> None:
        """Runs when a handler or `on_start` raised, before `on_stop`."""

    async def on_receive(self, message: Any) -> Any:
        """Receives messages no handler matches. The default treats them as unhandled."""
        return None

    @classmethod
    def handler_for(cls, msg_type: type) -> HandlerEntry | None:
        """The handler entry for `msg_type` (most specific base wins), or None."""
        handlers = cls._handlers
        for base in msg_type.__mro__:
            entry = handlers.get(base)
            if entry is not None:
                return entry
        return None

    @classmethod
    def dispatch_miss(cls, msg_type: type) -> HandlerEntry:
        """Resolve and cache the entry for a type not seen before (off the hot path)."""
        if issubclass(msg_type, Envelope):
            entry = msg_type.entry_for(cls)
        else:
            entry = cls.handler_for(msg_type) or cls._fallback or UNHANDLED
        cls._dispatch[msg_type] = entry
        return entry

    @handler
    async def _mycelium_tick(self, tick: Tick) -> None:
        if tick.context is not self.context:
            return  # scheduled by an earlier incarnation: timers die with theirs
        message = tick.message
        cls = type(self)
        fn, is_async = cls._dispatch.get(type(message)) or cls.dispatch_miss(type(message))
        try:
            result = fn(self, message)
            if is_async:
                await result
        except Unhandled:
            self.context.system.dead_letter(self.context.path, message, "unhandled")

    @handler
    async def _mycelium_proxy_call(self, call: ProxyCall) -> Any:
        result = getattr(self, call.method)(*call.args, **call.kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result


# The base class's own tables (`__init_subclass__` does this for subclasses).
Actor._handlers = _resolve_handlers(Actor, None)  # noqa: SLF001
Actor._dispatch = dict(Actor._handlers)  # noqa: SLF001
