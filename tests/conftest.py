"""Shared fixtures: a running system per test, on the real clock or a fake one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from mycelium_actors import ActorSystem
from mycelium_actors.testing import FakeClock


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("test", kill_grace=0.5) as system:
        yield system


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake_system(clock: FakeClock) -> AsyncIterator[ActorSystem]:
    async with ActorSystem("test-fake", clock=clock, kill_grace=0.5) as system:
        yield system
