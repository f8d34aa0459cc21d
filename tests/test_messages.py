"""Registering contract types with `@message` (API.md section 1)."""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import pytest

from mycelium_actors import ActorRef, ContractError, message
from mycelium_actors.wire.registry import contract_type, wire_id

_ids = itertools.count(1_000_000)  # this module's own range: ids live once per process


@pytest.fixture
def fresh_id() -> int:
    return next(_ids)


def test_a_registered_class_is_found_by_its_id(fresh_id: int) -> None:
    @message(id=fresh_id)
    @attrs.frozen
    class Ping:
        n: int

    assert wire_id(Ping) == fresh_id
    assert contract_type(fresh_id) is Ping


def test_a_subclass_does_not_inherit_its_parents_id_and_can_take_its_own(fresh_id: int) -> None:
    @message(id=fresh_id)
    @attrs.frozen
    class Parent:
        n: int

    @attrs.frozen
    class Child(Parent):
        pass

    assert wire_id(Child) is None
    message(id=next(_ids))(Child)
    assert wire_id(Parent) == fresh_id and wire_id(Child) != fresh_id


def test_an_id_registered_twice_is_refused(fresh_id: int) -> None:
    @message(id=fresh_id)
    @attrs.frozen
    class First:
        pass

    @attrs.frozen
    class First2:
        pass

    with pytest.raises(ContractError, match=f"wire id {fresh_id} is already used"):
        message(id=fresh_id)(First2)


def test_a_class_registered_twice_is_refused(fresh_id: int) -> None:
    @message(id=fresh_id)
    @attrs.frozen
    class Once:
        pass

    with pytest.raises(ContractError, match="already registered"):
        message(id=next(_ids))(Once)


@pytest.mark.parametrize("bad", [0, -1, 2**31, True, "5", 1.0])
def test_ids_must_be_positive_ints_below_2_31(bad: Any) -> None:
    @attrs.frozen
    class Anything:
        pass

    with pytest.raises(ContractError, match="wire id must be an int"):
        message(id=bad)(Anything)
    assert wire_id(Anything) is None


class Plain:
    pass


@attrs.define
class Mutable:
    n: int


@pytest.mark.parametrize(
    ("annotation", "complaint"),
    [
        (object, "cannot carry object"),
        (Any, "cannot carry Any"),
        (Plain, "cannot carry Plain"),
        (tuple[int, int], "cannot carry tuple"),
        (set[int], "cannot carry set"),
        (dict[int, str], "dict keys must be str"),
        (int | str, "only `T | None` unions"),
        (Mutable, "must be an @attrs.frozen class"),
        (list[object], "cannot carry object"),
    ],
)
def test_field_types_a_codec_cannot_carry_are_refused_at_registration(
    fresh_id: int, annotation: Any, complaint: str
) -> None:
    cls = attrs.frozen(attrs.make_class("Bad", {"value": attrs.field(type=annotation)}))
    with pytest.raises(ContractError, match=complaint):
        message(id=fresh_id)(cls)
    assert contract_type(fresh_id) is None


@pytest.mark.parametrize("kind", [attrs.define, lambda c: c])
def test_only_frozen_attrs_classes_register(fresh_id: int, kind: Any) -> None:
    @kind
    class NotFrozen:
        n: int = 0

    with pytest.raises(ContractError, match="frozen"):
        message(id=fresh_id)(NotFrozen)


@attrs.frozen
class Leaf:
    x: int


def test_every_supported_field_type_registers(fresh_id: int) -> None:
    @message(id=fresh_id)
    @attrs.frozen
    class Everything:
        a: int
        b: float
        c: str
        d: bool
        e: bytes
        f: list[int]
        g: dict[str, list[str]]
        h: Leaf | None
        i: ActorRef[Any]

    assert wire_id(Everything) == fresh_id


def test_an_annotation_that_does_not_resolve_is_refused(fresh_id: int) -> None:
    @attrs.frozen
    class Later:
        x: int

    @attrs.frozen
    class Uses:
        later: Later  # a local name: under `from __future__ import annotations` it is text

    with pytest.raises(ContractError, match="do not resolve"):
        message(id=fresh_id)(Uses)
