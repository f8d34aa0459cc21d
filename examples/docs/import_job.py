"""A tree that finishes: the loader is significant, so when it is done the job
supervisor shuts itself down, and the system with it."""

from __future__ import annotations

import asyncio

import attrs

from mycelium_actors import Actor, ActorSystem, Child, Supervisor, handler


@attrs.frozen
class NextBatch:
    pass


@attrs.frozen
class Done:
    pass


class Reader(Actor):
    """Hands out the rows in batches of 3; an empty batch means the end."""

    def __init__(self, rows: list[int]) -> None:
        super().__init__()
        self.rows = rows

    @handler
    def next_batch(self, msg: NextBatch) -> list[int]:
        batch, self.rows = self.rows[:3], self.rows[3:]
        return batch


class Loader(Actor):
    """Loads batches until the reader runs dry, then stops itself: the job is done."""

    def __init__(self, loaded: list[int]) -> None:
        super().__init__()
        self.loaded = loaded

    async def on_start(self) -> None:
        self.context.pipe_to_self(self.load(), lambda _: Done())

    async def load(self) -> None:
        reader = self.context.system.lookup("/import-job/reader")
        assert reader is not None
        while batch := await reader.ask(NextBatch()):
            self.loaded.extend(batch)

    @handler
    def done(self, msg: Done) -> None:
        self.context.stop()


def job(rows: list[int], loaded: list[int]) -> Supervisor:
    return Supervisor(
        "import-job",
        auto_shutdown="any_significant",
        children=[
            Child(Reader, rows, name="reader"),  # permanent: restarted while the job runs
            Child(Loader, loaded, name="loader", restart="transient", significant=True),
        ],
    )


async def main() -> list[int]:
    loaded: list[int] = []
    async with ActorSystem("import") as system:
        await system.start(job(list(range(10)), loaded))
        await asyncio.wait_for(system.wait_stopped(), 5)  # the job ends by itself
    return loaded


if __name__ == "__main__":
    print(asyncio.run(main()))
