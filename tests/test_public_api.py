"""The front door: `from mycelium_actors import ...` (API.md, §9 for the errors)."""

from __future__ import annotations

import pytest

import mycelium_actors
from mycelium_actors import (
    ActorStopped,
    AskTimeout,
    ContractError,
    MailboxFull,
    MyceliumError,
    RemoteError,
    SerializationError,
    SupervisorGaveUp,
    TransportError,
    UnhandledMessage,
)


def test_dunder_all_is_sorted() -> None:
    assert mycelium_actors.__all__ == sorted(mycelium_actors.__all__)


@pytest.mark.parametrize("name", mycelium_actors.__all__)
def test_every_public_name_is_importable(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from mycelium_actors import {name}", namespace)
    assert namespace[name] is getattr(mycelium_actors, name)


@pytest.mark.parametrize(
    "error",
    [
        AskTimeout,
        ActorStopped,
        MailboxFull,
        UnhandledMessage,
        SerializationError,
        TransportError,
        RemoteError,
        SupervisorGaveUp,
        ContractError,
    ],
)
def test_every_error_is_a_mycelium_error(error: type[Exception]) -> None:
    assert issubclass(error, MyceliumError)


def test_ask_timeout_is_also_a_timeout_error() -> None:
    assert issubclass(AskTimeout, TimeoutError)
