"""Pinned executor threads: a hasher and a compressor on their own threads, a feed pool.

Run it with `python -m examples.pinned`; it prints where each actor runs (as the
actor itself sees it, and as `system.tree()` reports it), then ends.
docs/executors.md quotes this file; tests/test_executor.py runs it.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import zlib

import attrs
import psutil

from mycelium_actors import (
    Actor,
    ActorRef,
    ActorSystem,
    Child,
    PinnedThread,
    Supervisor,
    TreeNode,
    handler,
)

# The CPUs this process may use; on a 2-core machine FAST is 0 and SLOW is 1.
ALLOWED = sorted(psutil.Process().cpu_affinity())
FAST, SLOW = ALLOWED[0], ALLOWED[-1]

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
PAYLOAD_SIZE = len(PAYLOAD)


@attrs.frozen
class Digest:
    data: bytes


@attrs.frozen
class Compress:
    data: bytes


@attrs.frozen
class WhereAmI:
    """Replies (thread name, CPUs the thread may run on), read inside the actor."""


class Located(Actor):
    @handler
    def where_am_i(self, msg: WhereAmI) -> tuple[str, list[int]]:
        native_id = threading.get_native_id()
        cpus = sorted(psutil.Process(native_id).cpu_affinity())
        return threading.current_thread().name, cpus


class Hasher(Located):
    executor = PinnedThread(cpus=[SLOW])  # class attribute: each Hasher gets a thread on SLOW

    @handler
    def digest(self, msg: Digest) -> str:
        return hashlib.sha256(msg.data).hexdigest()  # releases the GIL on large buffers


class Compressor(Located):
    @handler
    def compress(self, msg: Compress) -> int:
        return len(zlib.compress(msg.data))  # zlib releases the GIL as well


class Quotes(Located):
    """Latency-sensitive but light: it stays on the system loop (no executor)."""


class Feed(Located):
    """Small actors that share one pinned thread."""


tree = Supervisor(
    "root",
    children=[
        Child(Compressor, name="zip", executor=PinnedThread(cpus=[SLOW])),
    ],
)


def walk(nodes: list[TreeNode]) -> list[TreeNode]:
    """Every node of `system.tree()`, parents before children."""
    return [m for n in nodes for m in (n, *walk(n.children))]


def expected_digest() -> str:
    return hashlib.sha256(PAYLOAD).hexdigest()


async def start(system: ActorSystem) -> list[ActorRef[Located]]:
    """Start one actor per way of choosing where it runs; returns their refs."""
    await system.start(tree)  # /root/zip: Child(..., executor=...)
    hasher = await system.spawn(Hasher, name="hasher")  # the class attribute
    quotes = await system.spawn(Quotes, name="quotes")  # no executor: the system loop
    feed_pool = PinnedThread(cpus=[FAST], shared=True)  # one thread for both feeds
    feed_a = await system.spawn(Feed, name="feed-a", executor=feed_pool)
    feed_b = await system.spawn(Feed, name="feed-b", executor=feed_pool)
    zipper = system.lookup("/root/zip")
    assert zipper is not None
    return [hasher, zipper, quotes, feed_a, feed_b]


def show(system: ActorSystem) -> dict[str, tuple[str | None, list[int] | None]]:
    """Print `system.tree()`: each actor's thread name, native id and CPUs."""
    for n in walk(system.tree()):
        print(f"{n.path:<12} {n.kind:<10} thread={n.thread} id={n.thread_id} cpus={n.cpus}")
    return {n.path: (n.thread, n.cpus) for n in walk(system.tree())}


async def main() -> dict[str, object]:
    async with ActorSystem("pinned") as system:
        hasher, zipper, *_ = refs = await start(system)
        digest, compressed = await asyncio.gather(  # two threads, hashing and compressing
            hasher.ask(Digest(PAYLOAD)), zipper.ask(Compress(PAYLOAD))
        )
        where = {ref.path: await ref.ask(WhereAmI()) for ref in refs}
        shown = show(system)
    return {"digest": digest, "compressed": compressed, "where": where, "tree": shown}


if __name__ == "__main__":
    summary = asyncio.run(main())
    for path, (thread, cpus) in summary["where"].items():  # type: ignore[attr-defined]
        print(f"{path} runs on {thread}, CPUs {cpus}")
