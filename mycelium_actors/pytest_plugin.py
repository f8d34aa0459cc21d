"""pytest fixtures for testing actors (API.md 11), loaded through the `pytest11` entry point.

Installing mycelium-actors makes these fixtures available to every test:

- `actor_system`: a started `ActorSystem`, stopped after the test; when the
  test also asks for `fake_clock`, the system runs on that clock.
- `fake_clock`: a fresh `FakeClock` (`await fake_clock.advance(seconds)`).
- `captured_events`: the lifecycle events logged during the test, as dicts.
- `probe`: a `Probe` actor spawned in `actor_system`.

The async fixtures need pytest-asyncio (in "auto" mode, or "strict" mode with
tests marked `@pytest.mark.asyncio`); they follow its configured fixture loop
scope. A fixture of the same name in a project's `conftest.py` or test module
overrides the plugin's, as pytest always does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from .kernel.system import ActorSystem
from .testing import FakeClock, Probe, capture_events

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - without pytest-asyncio there is no async test to serve
    _async_fixture: Callable[..., Any] = pytest.fixture
else:
    # pytest_asyncio.fixture marks the fixture for both "auto" and "strict" modes.
    _async_fixture = pytest_asyncio.fixture

__all__ = ["actor_system", "captured_events", "fake_clock", "probe"]


@pytest.fixture
def fake_clock() -> FakeClock:
    """A `FakeClock` at 0.0; `actor_system` runs on it when the test asks for both."""
    return FakeClock()


@_async_fixture
async def actor_system(request: pytest.FixtureRequest) -> AsyncIterator[ActorSystem]:
    """A started `ActorSystem` named after the test, stopped (every actor) after it."""
    clock: FakeClock | None = None
    if "fake_clock" in request.fixturenames:
        clock = request.getfixturevalue("fake_clock")
    async with ActorSystem(f"test-{request.node.name}"[:100], clock=clock) as system:
        yield system


@pytest.fixture
def captured_events() -> Iterator[list[dict[str, Any]]]:
    """The structlog lifecycle events of the test (`capture_events()` around it)."""
    with capture_events() as events:
        yield events


@_async_fixture
async def probe(actor_system: ActorSystem) -> Probe:
    """A `Probe` in `actor_system`: hand out `probe.ref`, then `await probe.expect(T)`."""
    return await Probe.spawn(actor_system)
