"""The actors the cross-process tests talk to, and a node process to run them.

`python -m tests.remote.nodeapp NAME URL [--secret S] [--heartbeat T] [--tracing]`
starts a node listening at URL with the tree below, prints its bound address
on stdout, and runs until stdin closes or a signal arrives. With
`$MYCELIUM_TEST_SPANS` set, this process (a node, or a worker running these
actors) records its finished spans in that file (tests/spans.py).
"""

from __future__ import annotations

import argparse
import asyncio
import builtins
import os
import signal
import sys
from pathlib import Path
from typing import Any

import mycelium_actors
from contracts.probe import Blob, Crash, Echo, Fail, Greet, Hold
from mycelium_actors import Actor, ActorRef, ActorSystem, Child, Supervisor, Terminated, handler
from supervisors.probe import Counter as ProbeCounter

if os.environ.get("MYCELIUM_TEST_SPANS"):  # a tracing test's other process
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    import spans  # noqa: F401  (its tracer provider: spans go to that file)


class Oops(ValueError):
    """A subclass of a builtin: it arrives as RemoteError."""


class Counter(ProbeCounter):
    """The probe counter, plus what the tests need: failures, holds, refs, blobs."""

    @handler
    def fail(self, msg: Fail) -> None:
        if msg.kind == "Oops":
            raise Oops(msg.message)
        kind = getattr(builtins, msg.kind, None) or getattr(mycelium_actors, msg.kind)
        raise kind(msg.message)

    @handler
    async def hold(self, msg: Hold) -> str:
        await asyncio.sleep(msg.seconds)
        return "held"

    @handler
    async def greet(self, msg: Greet) -> Any:
        return await msg.reply_to.ask(Echo(msg.text))

    @handler
    def blob(self, msg: Blob) -> int:
        return len(msg.data)

    @handler
    def crash(self, msg: Crash) -> None:
        raise RuntimeError("asked to crash")


class Watcher(Actor):
    """Watches `target` from its start; records the `Terminated` it gets."""

    def __init__(self, target: ActorRef[Any], seen: list[Terminated]) -> None:
        super().__init__()
        self.target, self.seen = target, seen

    async def on_start(self) -> None:
        self.context.watch(self.target)

    @handler
    def terminated(self, msg: Terminated) -> None:
        self.seen.append(msg)


class Slow(Counter):
    """A Counter with a tiny mailbox, for backpressure."""

    mailbox_capacity = 2


# The tests park /root/slow in `Hold(30.0)`: a short shutdown cancels that hold
# at the node's stop instead of waiting out the default 5 s on every test.
tree = Supervisor(
    "root",
    children=[Child(Counter, name="counter"), Child(Slow, name="slow", shutdown=0.2)],
)


async def serve(
    name: str, url: str, secret: str | None, heartbeat: float, tracing: bool = False
) -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.read(1) or done.set())
    async with ActorSystem(
        name, listen=url, secret=secret, heartbeat_timeout=heartbeat, tracing=tracing
    ) as system:
        await system.start(tree)
        print(system.address, flush=True)
        await done.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("url")
    parser.add_argument("--secret")
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument("--tracing", action="store_true")
    args = parser.parse_args()
    asyncio.run(serve(args.name, args.url, args.secret, args.heartbeat, args.tracing))


if __name__ == "__main__":
    main()
