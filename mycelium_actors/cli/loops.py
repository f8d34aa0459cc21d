"""`--loop auto|asyncio|uvloop`: which event loop a command runs on.

`auto` (the default) takes uvloop when it imports and asyncio's own loop
otherwise, as uvicorn does; `uvloop` insists, and without it exits 2 with one
line. The library itself runs on whichever loop it is started on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import click

from .run import fail

LOOPS = ("auto", "asyncio", "uvloop")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]

loop_option = click.option(
    "--loop",
    "loop_name",
    type=click.Choice(LOOPS),
    default="auto",
    show_default=True,
    help="The event loop: uvloop (pip install 'mycelium-actors[uvloop]'), asyncio's own, "
    "or auto: uvloop when installed.",
)


def loop_factory(name: str) -> tuple[str, LoopFactory]:
    """The loop `--loop name` asks for: its name (`asyncio` or `uvloop`) and a
    factory; exits 2 with one line when `uvloop` is asked for and cannot load."""
    if name != "asyncio":
        try:
            import uvloop
        except ImportError as exc:
            if name == "uvloop":
                fail(
                    f"--loop uvloop: uvloop cannot be imported ({exc}); "
                    "install it with pip install 'mycelium-actors[uvloop]'"
                )
        else:
            return "uvloop", uvloop.new_event_loop
    return "asyncio", asyncio.new_event_loop
