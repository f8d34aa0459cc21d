"""Stream connections keep their rules on uvloop too, whichever loop the suite runs on.

uvloop starts reading a new connection once `connection_made` returns, even
if it paused reading there (asyncio honours that pause): a connection must
neither lose the bytes that came before `start()` nor read on unstarted.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import uvloop

from .conftest import ADAPTERS, STREAM, WAIT, Recorder, Server
from .test_conformance import _raw_socket

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


@pytest.fixture(params=list(LOOPS))
def new_loop(request: pytest.FixtureRequest) -> LoopFactory:
    return LOOPS[request.param]


@pytest.mark.parametrize("kind", STREAM)
def test_a_frame_that_came_before_start_is_delivered_after_it(
    new_loop: LoopFactory, kind: str, tmp_path: Path
) -> None:
    async def main() -> list[bytes]:
        server = await Server.open(ADAPTERS[kind](tmp_path))
        with _raw_socket(server.address) as raw:
            raw.sendall(struct.pack(">I", 5) + b"early")
            accepted = await server.accept()
            await asyncio.sleep(0)  # one loop pass: uvloop reads then, asyncio does not
            got = Recorder()
            accepted.start(got)
            frames = await asyncio.wait_for(got.frames_count(1), WAIT)
            accepted.close()
        await server.aclose()
        return frames

    with asyncio.Runner(loop_factory=new_loop) as runner:
        assert runner.run(main()) == [b"early"]
