"""A probe node: an actor that answers the probe contracts (contracts/probe.yaml).

The cross-process tests, the remote docs tour and the remote benchmarks all
talk to it (each adds what it needs), and it runs as it is:

    mycelium-actors run supervisors.probe:tree --listen unix:///tmp/probe.sock
    mycelium-actors status unix:///tmp/probe.sock
"""

from __future__ import annotations

from contracts.probe import Add, Echo, GetTotal
from mycelium_actors import Actor, Child, Supervisor, handler


class Counter(Actor):
    """Echoes `Echo`, adds up `Add`s (replying the total), reports `GetTotal`."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    @handler
    def echo(self, msg: Echo) -> str:
        return msg.text

    @handler
    def add(self, msg: Add) -> int:
        self.total += msg.n
        return self.total

    @handler
    def get_total(self, _: GetTotal) -> int:
        return self.total


tree = Supervisor("probe", children=[Child(Counter, name="counter")])
