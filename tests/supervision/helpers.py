"""Small helpers shared by the conformance tests (tree lookups, timing)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from mycelium_actors import ActorRef, ActorSystem, TreeNode
from mycelium_actors.testing import eventually

from .workers import Journal


def walk(nodes: list[TreeNode]) -> Iterator[TreeNode]:
    for node in nodes:
        yield node
        yield from walk(node.children)


def node(system: ActorSystem, path: str) -> TreeNode | None:
    """The `system.tree()` node at `path`, or None if it is not listed."""
    return next((n for n in walk(system.tree()) if n.path == path), None)


def status(system: ActorSystem, path: str) -> str | None:
    found = node(system, path)
    return None if found is None else found.status


def restarts(system: ActorSystem, path: str) -> int | None:
    found = node(system, path)
    return None if found is None else found.restarts


async def start(system: ActorSystem, spec: Any) -> dict[str, ActorRef[Any]]:
    """Start `spec`; return every ref in the new tree, keyed by its name (root included)."""
    root = await system.start(spec)
    refs: dict[str, ActorRef[Any]] = {}
    for n in walk([x for x in system.tree() if x.path == root.path]):
        ref = system.lookup(n.path)
        assert ref is not None
        refs[n.path.rsplit("/", 1)[-1]] = ref
    return refs


async def wait_lines(journal: Journal, line: str, count: int, timeout: float = 5.0) -> None:
    """Wait until `line` appears `count` times in the journal."""
    await eventually(
        lambda: journal.count(line) >= count,
        timeout=timeout,
        message=f"{line!r} x{count} not journaled; journal: {journal.lines}",
    )


async def wait_status(
    system: ActorSystem, path: str, wanted: str = "running", timeout: float = 5.0
) -> None:
    await eventually(
        lambda: status(system, path) == wanted,
        timeout=timeout,
        message=f"{path} not {wanted} (is {status(system, path)})",
    )


async def wait_restarted(system: ActorSystem, path: str, count: int, timeout: float = 5.0) -> None:
    """Wait until `tree()` shows `path` running with `count` restarts."""
    await eventually(
        lambda: (
            (n := node(system, path)) is not None and n.restarts >= count and n.status == "running"
        ),
        timeout=timeout,
        message=f"{path} not running after {count} restarts: {node(system, path)}",
    )


def stop_requested(ref: ActorRef[Any]) -> bool:
    """True once a final stop reached the actor's mailbox (it refuses new messages).

    There is no public signal for "the stop request arrived"; this reads the
    mailbox's closed flag so a test can order its steps after it.
    """
    return bool(ref._slot.mailbox.closed)


class Stopwatch:
    """`with Stopwatch() as sw: ...; sw.elapsed` in real seconds."""

    def __enter__(self) -> Stopwatch:
        self.t0 = time.monotonic()
        self.elapsed = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.monotonic() - self.t0
