"""Supervision tree specs: `Child`, `Supervisor`, `Backoff` (frozen, validated when built)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import attrs

from ..kernel.actor import OVERFLOW_POLICIES, Actor

if TYPE_CHECKING:
    from ..kernel.executor import Executor
    from ..kernel.ref import ActorRef
    from ..kernel.slot import Slot
    from ..kernel.system import ActorSystem

STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one", "dynamic")
RESTART_TYPES = ("permanent", "transient", "temporary")
AUTO_SHUTDOWN = ("never", "any_significant", "all_significant")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    """An int >= 0 (bools are not counts)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_shutdown(owner: str, shutdown: Any) -> None:
    if shutdown is not None and not (_is_number(shutdown) and shutdown >= 0):
        raise ValueError(f"{owner}: shutdown must be None or a number >= 0, not {shutdown!r}")


def _exception_classes(owner: str, option: str, value: Any) -> tuple[type[Exception], ...]:
    classes = tuple(value) if isinstance(value, tuple | list) else (value,)
    for cls in classes:
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            raise TypeError(f"{owner}: {option} takes Exception subclasses, not {cls!r}")
    return classes


def _check_significant(owner: str, significant: Any, restart: str) -> None:
    if not isinstance(significant, bool):
        raise TypeError(f"{owner}: significant must be True or False, not {significant!r}")
    if significant and restart == "permanent":
        raise ValueError(f"{owner}: a permanent child cannot be significant (it never ends)")


def _check_restart(owner: str, restart: Any) -> None:
    if restart not in RESTART_TYPES:
        raise ValueError(f"{owner}: restart must be one of {RESTART_TYPES}, not {restart!r}")


@attrs.frozen
class Backoff:
    """Delay restarts: `min(max, min*2**n) * (1 + U(0,1)*jitter)`.

    `n` counts restarts of the slot since the last reset; it goes back to 0
    once a restarted instance ran `reset_after` seconds (default `(min+max)/2`)
    without crashing. With `max_restarts=k`, a failure after k restarts in a
    row (no reset in between) makes the supervisor give up (Akka's
    `withMaxRestarts`).
    """

    min: float = 0.1
    max: float = 10.0
    jitter: float = 0.2
    reset_after: float | None = None
    max_restarts: int | None = None

    def __attrs_post_init__(self) -> None:
        if not 0 < self.min <= self.max:
            raise ValueError(f"Backoff: need 0 < min <= max, got min={self.min} max={self.max}")
        if self.jitter < 0:
            raise ValueError(f"Backoff: jitter must be >= 0, not {self.jitter}")
        if self.reset_after is not None and self.reset_after < 0:
            raise ValueError(f"Backoff: reset_after must be >= 0, not {self.reset_after}")
        if self.max_restarts is not None and not _is_count(self.max_restarts):
            raise ValueError(f"Backoff: max_restarts must be an int >= 0, not {self.max_restarts}")

    @property
    def reset_seconds(self) -> float:
        return (self.min + self.max) / 2 if self.reset_after is None else self.reset_after

    def delay(self, n: int) -> float:
        """The delay before restart number `n` (0-based) since the last reset."""
        base: float = min(self.max, self.min * 2 ** min(n, 64))
        return base * (1 + random.random() * self.jitter)


class Spec:
    """What a supervisor can hold: a `Child`, a `Supervisor`, or a spec that a
    higher layer defines (the worker pool of `mycelium_actors.workers`).

    A supervisor reads `name`, `restart` and `significant` of every spec;
    a spec other than `Child` and `Supervisor` makes its own (unstarted,
    registered) slot with `new_slot`, and that slot serves as it sees fit.
    """

    __slots__ = ()

    name: str
    restart: str
    significant: bool

    def new_slot(self, system: ActorSystem, parent: Slot | None) -> Slot:
        """Create and register the slot for this spec below `parent` (not started)."""
        raise TypeError(f"{type(self).__name__} cannot make a slot of its own")


@attrs.frozen(init=False)
class Child(Spec):
    """One supervised actor: `Child(cls, *args, name=, restart=, shutdown=, ...)`.

    `start_timeout` (seconds, default None: wait, as in OTP) bounds each
    `on_start`: when it runs out, the start fails with `TimeoutError` and the
    starting incarnation is cancelled. `on_restart_mailbox="drop"` empties the
    mailbox when the child is restarted (OTP's behaviour: queued asks fail with
    `ActorStopped`, tells become dead letters); the default "keep" hands what
    is queued to the new instance. `resume_on`, `stop_on` and `escalate_on`
    (tuples of exception classes, the most specific match wins) turn a
    handler exception into Akka's directives instead of a crash: resume (keep
    the instance and its state, drop the message), stop (exit as normal), or
    escalate (the supervisor gives up at once).
    """

    actor_class: type[Actor]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    name: str
    restart: str
    shutdown: float | None
    executor: Executor | None
    mailbox_capacity: int | None
    mailbox_overflow: str | None
    start_timeout: float | None
    on_restart_mailbox: str
    resume_on: tuple[type[Exception], ...]
    stop_on: tuple[type[Exception], ...]
    escalate_on: tuple[type[Exception], ...]
    significant: bool

    def __init__(
        self,
        actor_class: type[Actor],
        *args: Any,
        name: str | None = None,
        restart: str = "permanent",
        shutdown: float | None = 5.0,
        executor: Executor | None = None,
        mailbox_capacity: int | None = None,
        mailbox_overflow: str | None = None,
        start_timeout: float | None = None,
        on_restart_mailbox: str = "keep",
        resume_on: tuple[type[Exception], ...] = (),
        stop_on: tuple[type[Exception], ...] = (),
        escalate_on: tuple[type[Exception], ...] = (),
        significant: bool = False,
        **kwargs: Any,
    ) -> None:
        if not (isinstance(actor_class, type) and issubclass(actor_class, Actor)):
            raise TypeError(f"Child: expected an Actor subclass, got {actor_class!r}")
        name = actor_class.__name__.lower() if name is None else name
        where = f"Child {name!r}"
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"{where}: name must be a non-empty string without '/'")
        _check_restart(where, restart)
        _check_shutdown(where, shutdown)
        _check_significant(where, significant, restart)
        if mailbox_overflow is not None and mailbox_overflow not in OVERFLOW_POLICIES:
            raise ValueError(
                f"{where}: mailbox_overflow must be one of {OVERFLOW_POLICIES}, "
                f"not {mailbox_overflow!r}"
            )
        if mailbox_capacity is not None and (
            not isinstance(mailbox_capacity, int) or mailbox_capacity < 1
        ):
            raise ValueError(f"{where}: mailbox_capacity must be an int >= 1")
        if start_timeout is not None and not (_is_number(start_timeout) and start_timeout > 0):
            raise ValueError(f"{where}: start_timeout must be None or a number > 0")
        if on_restart_mailbox not in ("keep", "drop"):
            raise ValueError(
                f"{where}: on_restart_mailbox must be 'keep' or 'drop', not {on_restart_mailbox!r}"
            )
        directives = {
            "resume_on": _exception_classes(where, "resume_on", resume_on),
            "stop_on": _exception_classes(where, "stop_on", stop_on),
            "escalate_on": _exception_classes(where, "escalate_on", escalate_on),
        }
        seen: dict[type, str] = {}
        for option, classes in directives.items():
            for cls in classes:
                if cls in seen:
                    raise ValueError(f"{where}: {cls.__name__} is in both {seen[cls]} and {option}")
                seen[cls] = option
        self.__attrs_init__(
            actor_class,
            args,
            kwargs,
            name,
            restart,
            shutdown,
            executor,
            mailbox_capacity,
            mailbox_overflow,
            start_timeout,
            on_restart_mailbox,
            directives["resume_on"],
            directives["stop_on"],
            directives["escalate_on"],
            significant,
        )

    def directive_for(self, exc: BaseException) -> str | None:
        """What a handler exception means: "resume", "stop", "escalate", or None (a
        crash). The most specific class wins: the first of `exc`'s MRO listed."""
        if not (self.resume_on or self.stop_on or self.escalate_on):
            return None
        for cls in type(exc).__mro__:
            if cls in self.resume_on:
                return "resume"
            if cls in self.stop_on:
                return "stop"
            if cls in self.escalate_on:
                return "escalate"
        return None


@attrs.frozen(init=False)
class Supervisor(Spec):
    """A supervisor and its children, in start order."""

    name: str
    children: tuple[Spec, ...]
    strategy: str
    max_restarts: int
    within: float
    backoff: Backoff | None
    restart: str
    shutdown: float | None
    auto_shutdown: str
    significant: bool
    max_children: int | None

    def __init__(
        self,
        name: str,
        children: Any = (),
        strategy: str = "one_for_one",
        max_restarts: int = 3,
        within: float = 5.0,
        backoff: Backoff | None = None,
        restart: str = "permanent",
        shutdown: float | None = None,
        auto_shutdown: str = "never",
        significant: bool = False,
        max_children: int | None = None,
    ) -> None:
        where = f"Supervisor {name!r}"
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"{where}: name must be a non-empty string without '/'")
        children = tuple(children)
        for child in children:
            if not isinstance(child, Spec):
                raise TypeError(
                    f"{where}: children must be Child, Supervisor or Pool specs, not {child!r}"
                )
        names = [child.name for child in children]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"{where}: duplicate child names {duplicates}")
        if strategy not in STRATEGIES:
            raise ValueError(f"{where}: strategy must be one of {STRATEGIES}, not {strategy!r}")
        if not _is_count(max_restarts):
            raise ValueError(f"{where}: max_restarts must be an int >= 0, not {max_restarts!r}")
        if not (_is_number(within) and within > 0):
            raise ValueError(f"{where}: within must be a number > 0, not {within!r}")
        if backoff is not None and not isinstance(backoff, Backoff):
            raise TypeError(f"{where}: backoff must be a Backoff, not {backoff!r}")
        _check_restart(where, restart)
        _check_shutdown(where, shutdown)
        _check_significant(where, significant, restart)
        if auto_shutdown not in AUTO_SHUTDOWN:
            raise ValueError(
                f"{where}: auto_shutdown must be one of {AUTO_SHUTDOWN}, not {auto_shutdown!r}"
            )
        if auto_shutdown == "never" and any(child.significant for child in children):
            raise ValueError(f"{where}: significant children need auto_shutdown other than 'never'")
        if strategy == "dynamic":
            if children:
                raise ValueError(f"{where}: a dynamic supervisor starts with no children")
            if auto_shutdown != "never":
                raise ValueError(f"{where}: a dynamic supervisor has no auto_shutdown")
        elif max_children is not None:
            raise ValueError(f"{where}: max_children is for strategy='dynamic'")
        if max_children is not None and not _is_count(max_children):
            raise ValueError(f"{where}: max_children must be an int >= 0, not {max_children!r}")
        self.__attrs_init__(
            name,
            children,
            strategy,
            max_restarts,
            float(within),
            backoff,
            restart,
            shutdown,
            auto_shutdown,
            significant,
            max_children,
        )

    async def start_root(self, system: ActorSystem) -> ActorRef[Any]:
        """Start this tree at `/<name>` (what `system.start(tree)` calls)."""
        ref: ActorRef[Any] = await _ROOT_STARTER[0](system, self)
        return ref


#: How a tree starts: `supervisor.start_root`, set by `supervisor.py` when it is
#: imported (`supervision/__init__.py` imports it), so this module never imports it.
_ROOT_STARTER: list[Callable[[ActorSystem, Spec], Awaitable[ActorRef[Any]]]] = []


def set_root_starter(
    starter: Callable[[ActorSystem, Spec], Awaitable[ActorRef[Any]]],
) -> None:
    _ROOT_STARTER[:] = [starter]
