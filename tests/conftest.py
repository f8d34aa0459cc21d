"""Shared fixtures: a running system per test, on the real clock or a fake one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from actors import FakePerfClock, Gate

from mycelium_actors import ActorSystem
from mycelium_actors.kernel import dispatcher as dispatcher_module
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


@pytest.fixture
def perf_clock(monkeypatch: pytest.MonkeyPatch) -> FakePerfClock:
    """The dispatcher's per-message clock (`dispatcher.clock_now`), faked."""
    clock = FakePerfClock()
    monkeypatch.setattr(dispatcher_module, "clock_now", clock)
    return clock


@pytest.fixture
def gate() -> Iterator[Gate]:
    """A gate for `Hold`; opened at teardown so no actor stays parked on it.

    List it after the system fixture, so it is opened before the system stops.
    """
    gate = Gate()
    yield gate
    gate.open()


@pytest.fixture(scope="session", autouse=True)
def _stop_nats_server() -> Iterator[None]:
    """The NATS tests share one nats-server (tests/natsserver.py); stop it at the end."""
    yield
    from natsserver import stop_shared

    stop_shared()
