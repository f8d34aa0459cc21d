"""Fixtures for the supervision conformance tests: a journal and the `w`/`sup` builders.

`w("x", **opts)` is the notation's `w(x)`: `Child(Worker, "x", name="x")` journaling into
the test's journal; `opts` are `Child` options (`restart=`, `shutdown=`, ...) or Worker
options (`fail_start=`, `stop_delay=`, ...). `sup(*children, **opts)` is
`Supervisor("root", children, **opts)` (pass `name=` for another name).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from mycelium_actors import Child, Supervisor
from mycelium_actors.testing import capture_events

from .workers import Journal, Worker


@pytest.fixture
async def journal() -> AsyncIterator[Journal]:
    journal = Journal()
    yield journal
    # Let an on_stop that swallowed its kill (case 31) end before the loop closes.
    journal.release.set()
    for _ in range(5):
        await asyncio.sleep(0)


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    """Every structlog event of the test, in order."""
    with capture_events() as captured:
        yield captured


@pytest.fixture
def w(journal: Journal) -> Callable[..., Child]:
    def build(name: str, **opts: Any) -> Child:
        return Child(Worker, name, journal=journal, name=name, **opts)

    return build


@pytest.fixture
def sup() -> Callable[..., Supervisor]:
    def build(*children: Child | Supervisor, name: str = "root", **opts: Any) -> Supervisor:
        return Supervisor(name, children=children, **opts)

    return build
