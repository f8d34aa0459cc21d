"""Targets for the CLI page: a factory, a tree that cannot start, one that gives up.

mycelium-actors tree examples.docs.cli_trees:make_tree --factory
mycelium-actors run examples.docs.cli_trees:broken      # exits 1
mycelium-actors run examples.docs.cli_trees:doomed      # exits 1 after ~0.1 s
mycelium-actors run examples.docs.cli_trees:lingering   # a second Ctrl-C exits 130
"""

from __future__ import annotations

import asyncio

import attrs

from mycelium_actors import Actor, Child, PinnedThread, Supervisor, handler


@attrs.frozen
class Crash:
    pass


class Service(Actor):
    def __init__(self, fail_on_start: bool = False, crash_after: float | None = None) -> None:
        super().__init__()
        self.fail_on_start, self.crash_after = fail_on_start, crash_after

    async def on_start(self) -> None:
        if self.fail_on_start:
            raise ConnectionError("database unreachable")
        if self.crash_after is not None:
            self.context.schedule_once(self.crash_after, Crash())

    @handler
    def crash(self, msg: Crash) -> None:
        raise RuntimeError("crash")


def make_tree(workers: int = 2) -> Supervisor:
    """A factory: `--factory` calls it with no arguments."""
    return Supervisor(
        "app",
        strategy="rest_for_one",
        children=[
            Child(Service, name="db", shutdown=10.0),
            Supervisor(
                "workers",
                strategy="one_for_all",
                children=[Child(Service, name=f"w{i}") for i in range(workers)],
            ),
            Child(Service, name="pinned", restart="transient", executor=PinnedThread()),
        ],
    )


broken = Supervisor("broken", children=[Child(Service, name="ok"), Child(Service, True, name="db")])

doomed = Supervisor("doomed", max_restarts=0, children=[Child(Service, None, 0.1, name="w")])


class Lingering(Actor):
    async def on_stop(self) -> None:
        await asyncio.sleep(30)  # a slow clean-up, waited for (shutdown=None)


lingering = Supervisor("lingering", children=[Child(Lingering, name="l", shutdown=None)])
