"""The market pipeline split over two OS processes, talking over a Unix socket.

Run it with `python -m examples.remote_demo`. It starts the execution branch
(the order gateway and the exchange connection, `supervisors.market:venue`) as
a node of its own with `mycelium-actors run --listen unix://...`, connects to
it, and runs the rest of the pipeline here: risk finds the gateway over there
with `discover_cluster` and sends it each approved order. Both kinds of faults
of the market demo are injected, and each side's supervisors repair their own:
the exchange connection drops over there, the normalizer crashes here. It ends
by itself after a few seconds and prints what happened, then stops the venue
with SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import attrs

from contracts.market import CloseMarket, Drain, GetStats
from examples.market_demo import Summary, quiet_logging, render, summarize
from mycelium_actors import ActorSystem
from supervisors.market import Chaos, FaultLog, Stats, build_tree

ROOT = Path(__file__).resolve().parent.parent
REMOTE_STAGES = ("execution/gateway", "execution/exchange")


class Venue:
    """`mycelium-actors run supervisors.market:venue --listen unix://<sock>` as a child
    process; its JSON log lines are read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.running = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, sock: Path) -> Venue:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "mycelium_actors", "run", "supervisors.market:venue"),
            *("--listen", f"unix://{sock}", "--log-format", "json"),
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        venue = cls(proc)
        await asyncio.wait_for(venue.running.wait(), timeout=30.0)
        return venue

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": line.decode().rstrip()}
            self.events.append(event)
            if event["event"] == "cli.running":
                self.running.set()

    def logged(self, event: str) -> int:
        return sum(e["event"] == event for e in self.events)

    async def stop(self) -> int:
        """SIGTERM, then its exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(self.proc.wait(), timeout=30.0)
        await self.reader
        return status


@attrs.frozen
class RemoteSummary:
    pipeline: Summary  # the market demo's summary, both processes together
    venue: str  # the venue's address
    pid: int
    node_names: list[str]  # the nodes this side was connected to
    venue_restarts: int  # actor.restarted events the venue logged
    venue_exit: int
    socket_removed: bool

    @property
    def ok(self) -> bool:
        return self.pipeline.ok and self.venue_exit == 0 and self.socket_removed


async def main(seconds: float = 3.0, chaos: Chaos | None = None) -> RemoteSummary:
    """Run the split pipeline for `seconds`, drain it, print the summary and return it.

    `chaos` steers the faults on this side; the venue drops its connection every second."""
    stats, chaos = Stats(), Chaos() if chaos is None else chaos
    with tempfile.TemporaryDirectory() as tmp, quiet_logging():
        sock = Path(tmp) / "venue.sock"
        venue = await Venue.start(sock)
        try:
            async with ActorSystem("desk") as system:
                office = await system.remote(f"unix://{sock}/market/office")
                await system.start(build_tree(stats, chaos, with_execution=False))
                began = system.clock.now()
                await asyncio.sleep(seconds)
                chaos.enabled = False  # the market closes, on both sides
                await office.ask(CloseMarket())
                await system.terminate_child("/market/marketdata/feed")
                elapsed = system.clock.now() - began
                normalizer = system.lookup("/market/marketdata/normalizer")
                assert normalizer is not None
                await normalizer.ask(Drain(), timeout=30.0)  # through to the venue's exchange
                there = await office.ask(GetStats())
                stats.count.update(there["count"])
                stats.faults |= {path: FaultLog(**log) for path, log in there["faults"].items()}
                nodes = system.tree() + await system.remote_tree(f"unix://{sock}")
                names = [node.name for node in system.nodes()]
        finally:
            status = await venue.stop()
        pipeline = summarize(stats, nodes, elapsed)
        where = f"other process (pid {venue.proc.pid})"
        pipeline = attrs.evolve(
            pipeline, where=pipeline.where | dict.fromkeys(REMOTE_STAGES, where)
        )
        summary = RemoteSummary(
            pipeline=pipeline,
            venue=f"unix://{sock}",
            pid=venue.proc.pid,
            node_names=names,
            venue_restarts=venue.logged("actor.restarted"),
            venue_exit=status,
            socket_removed=not sock.exists(),
        )
    print(render_remote(summary))
    return summary


def render_remote(s: RemoteSummary) -> str:
    lines = [
        f"The execution branch ran as node {', '.join(s.node_names)!r} in process {s.pid} "
        f"(this is {os.getpid()}), at {s.venue}.",
        f"Every approved order crossed the socket; the venue's supervisors restarted its "
        f"actors {s.venue_restarts}x on their own.",
        "",
        render(s.pipeline),
        "",
        f"Venue stopped by SIGTERM: exit {s.venue_exit}, "
        f"socket file {'removed' if s.socket_removed else 'LEFT BEHIND'}.",
        f"Remote check: {'OK' if s.ok else 'FAILED'}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    asyncio.run(main())
