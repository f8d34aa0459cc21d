"""A contract written by hand, and two processes that use it.

python -m examples.docs.two_processes
starts a node in a child process (the `serve` side below), asks its actor
across a unix socket, and stops it. Both processes import this module, so both
know `Greet` by its wire id.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile

import attrs

from mycelium_actors import Actor, ActorSystem, handler, message


@message(id=4101)  # unique among the contracts of every process that exchanges it
@attrs.frozen
class Greet:
    name: str
    times: int = 1


class Greeter(Actor):
    @handler
    def greet(self, msg: Greet) -> str:
        return " ".join([f"hello, {msg.name}"] * msg.times)


async def serve(socket: str) -> None:
    """The node process: listen, run the greeter, stop when stdin closes."""
    async with ActorSystem("greeter", listen=f"unix://{socket}") as system:
        await system.spawn(Greeter, name="greeter")
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


async def main() -> str:
    """The calling process: start the node, ask across the socket, stop the node."""
    with tempfile.TemporaryDirectory() as tmp:
        socket = f"{tmp}/greeter.sock"
        node = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "examples.docs.two_processes",
            "serve",
            socket,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert node.stdin is not None and node.stdout is not None
        try:
            assert await asyncio.wait_for(node.stdout.readline(), 30) == b"ready\n"
            async with ActorSystem("caller") as system:
                greeter = await system.remote(f"unix://{socket}/greeter")
                reply: str = await greeter.ask(Greet("ada", times=2))
        finally:
            node.stdin.close()
            await asyncio.wait_for(node.wait(), 30)
    return reply


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        asyncio.run(serve(sys.argv[2]))
    else:
        print(asyncio.run(main()))
