"""Handler dispatch: annotations, @handler(T), unions, subclasses, on_receive, unhandled (§2)."""

from __future__ import annotations

import pytest
from actors import (
    Animal,
    Cat,
    CatchAll,
    Dog,
    First,
    Kennel,
    Left,
    Named,
    Ping,
    Puppy,
    Right,
    Second,
    Unknown,
    Worker,
    Zoo,
)

import mycelium_actors.kernel.actor
from mycelium_actors import Actor, UnhandledMessage, handler
from mycelium_actors.testing import capture_events, events_named


@pytest.mark.parametrize(
    ("message", "reply"),
    [
        (Animal(), "animal"),  # sync handler, by annotation
        (Dog(), "dog"),  # async handler, by annotation
        (Puppy(), "dog"),  # a subclass goes to the most specific handler
        (Cat(), "animal"),
        (Left(), "either:Left"),  # a union annotation
        (Right(), "either:Right"),
        (Named(), "named"),  # @handler(T)
        (First(), "pair:First"),  # @handler((A, B))
        (Second(), "pair:Second"),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, str) else value,
)
async def test_messages_reach_the_matching_handler(system, message, reply) -> None:
    zoo = await system.spawn(Zoo)
    assert await zoo.ask(message) == reply


@pytest.mark.parametrize(
    ("message", "reply"), [(Dog(), "kennel dog"), (Puppy(), "kennel dog"), (Cat(), "animal")]
)
async def test_a_subclass_inherits_handlers_and_may_override_them(system, message, reply) -> None:
    kennel = await system.spawn(Kennel)
    assert await kennel.ask(message) == reply


async def test_on_receive_gets_what_no_handler_matches(system) -> None:
    ref = await system.spawn(CatchAll)
    assert await ref.ask(Unknown()) == ("fallback", Unknown())
    assert await ref.ask(Ping()) == "pong"


async def test_an_unhandled_ask_raises_unhandled_message_and_the_actor_goes_on(system) -> None:
    ref = await system.spawn(Worker)
    with pytest.raises(UnhandledMessage):
        await ref.ask(Unknown())
    assert await ref.ask(Ping()) == "pong"


async def test_an_unhandled_tell_is_a_dead_letter_and_the_actor_goes_on(system) -> None:
    ref = await system.spawn(Worker)
    before = system.dead_letters
    with capture_events() as events:
        await ref.tell(Unknown())
        assert await ref.ask(Ping()) == "pong"
    assert system.dead_letters == before + 1
    assert events_named(events, "dead_letter", path=ref.path, reason="unhandled")


def _unresolvable() -> None:
    class Broken(Actor):
        @handler
        def on_it(self, msg: NoSuchMessage) -> None:  # type: ignore[name-defined] # noqa: F821
            pass


def _unannotated() -> None:
    class Broken(Actor):
        @handler
        def on_it(self, msg) -> None:  # type: ignore[no-untyped-def]
            pass


def _twice() -> None:
    class Broken(Actor):
        @handler
        def one(self, msg: Ping) -> None:
            pass

        @handler
        def two(self, msg: Ping) -> None:
            pass


def _not_a_class() -> None:
    class Broken(Actor):
        @handler(42)
        def on_it(self, msg: object) -> None:
            pass


@pytest.mark.parametrize("define", [_unresolvable, _unannotated, _twice, _not_a_class])
def test_a_bad_handler_is_a_type_error_when_the_class_is_created(define) -> None:
    with pytest.raises(TypeError):
        define()


class Kinded(Actor):
    """A base with its own `__init_subclass__` (calling super), as plugin bases do."""

    kind = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = cls.__name__.lower()


class SubKinded(Kinded):
    """A second level of `__init_subclass__` between the class statement and Actor's."""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)


def _with_a_local_message(base: type[Actor]) -> tuple[type[Actor], type]:
    class Local:
        pass

    class Handles(base):  # type: ignore[valid-type, misc]
        @handler
        def on_local(self, msg: Local) -> str:
            return "local"

    return Handles, Local


@pytest.mark.parametrize("base", [Actor, Kinded, SubKinded], ids=["actor", "one_hook", "two_hooks"])
def test_a_message_class_local_to_a_function_resolves_under_bases_with_their_own_hooks(
    base: type[Actor],
) -> None:
    actor_class, local = _with_a_local_message(base)
    assert actor_class.handler_for(local) is not None


def test_without_getframe_only_module_level_message_classes_resolve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mycelium_actors.kernel.actor, "_getframe", None)
    with pytest.raises(TypeError, match="cannot resolve the message annotation"):
        _with_a_local_message(SubKinded)

    class Global(SubKinded):
        @handler
        def on_ping(self, msg: Ping) -> str:
            return "pong"

    assert Global.handler_for(Ping) is not None
