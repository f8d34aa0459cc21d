"""The suite runs on the loop that `--event-loop` (tests/conftest.py) names."""

from __future__ import annotations

import asyncio

import pytest

from mycelium_actors import ActorSystem


async def test_async_tests_and_fixtures_run_on_the_chosen_loop(
    request: pytest.FixtureRequest, system: ActorSystem
) -> None:
    chosen = request.config.getoption("event_loop")
    running = asyncio.get_running_loop()
    assert type(running).__module__.partition(".")[0] == chosen
    assert system.loop is running
