"""Worker-process tests: real child processes, each test in seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from procs import workers

from mycelium_actors import ActorSystem
from mycelium_actors.testing import eventually


@pytest.fixture
async def system() -> AsyncIterator[ActorSystem]:
    async with ActorSystem("workers-test", kill_grace=0.5) as system:
        yield system
    # No worker outlives its system: every child process of this one is gone.
    await eventually(lambda: not workers(), timeout=5.0)
