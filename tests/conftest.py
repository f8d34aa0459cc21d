"""Shared fixtures: a running system per test, on the real clock or a fake one.

`--event-loop uvloop` (or `MYCELIUM_TEST_LOOP=uvloop`) runs every async test
and fixture on uvloop instead of asyncio's own loop, through pytest-asyncio's
`pytest_asyncio_loop_factories` hook; `.ci/run` runs the suite once that way.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import pytest
from actors import FakePerfClock, Gate

from mycelium_actors import ActorSystem
from mycelium_actors.kernel import dispatcher as dispatcher_module
from mycelium_actors.testing import FakeClock

LOOPS = ("asyncio", "uvloop")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--event-loop",
        choices=LOOPS,
        default=os.environ.get("MYCELIUM_TEST_LOOP") or "asyncio",
        help="the event loop of async tests (default: $MYCELIUM_TEST_LOOP, else asyncio)",
    )


class _OnUvloop:
    """Registered only with `--event-loop uvloop`: pytest-asyncio refuses a hook
    that answers None, so the plain run has no such hook at all."""

    @staticmethod
    def pytest_asyncio_loop_factories(
        config: pytest.Config, item: pytest.Item
    ) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
        import uvloop

        return {"uvloop": uvloop.new_event_loop}


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("event_loop") == "uvloop":
        try:
            import uvloop  # noqa: F401
        except ImportError as exc:
            raise pytest.UsageError(f"--event-loop uvloop: {exc}") from None
        config.pluginmanager.register(_OnUvloop(), "mycelium-uvloop")


def pytest_report_header(config: pytest.Config) -> str:
    return f"event loop: {config.getoption('event_loop')}"


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


@pytest.fixture
def spans() -> Iterator[Any]:
    """The in-memory exporter of this process's spans (tests/spans.py), cleared
    before and after the test (imported here only by the tests that trace)."""
    from spans import EXPORTER

    EXPORTER.clear()  # type: ignore[attr-defined]
    yield EXPORTER
    EXPORTER.clear()  # type: ignore[attr-defined]


@pytest.fixture(scope="session", autouse=True)
def _stop_nats_server() -> Iterator[None]:
    """The NATS tests share one nats-server (tests/natsserver.py); stop it at the end."""
    yield
    from natsserver import stop_shared

    stop_shared()
