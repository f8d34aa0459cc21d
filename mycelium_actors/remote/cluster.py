"""Queries that span the cluster: discover, publish and the live tree.

A querying node asks every node it knows at once (`ask_all`); the node asked
answers from its own system (`discover_here`, `tree_dict`). Actor classes
travel as "module:qualname" and message types by wire id, never as code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import MyceliumError
from ..kernel.actor import Actor
from ..kernel.ref import LocalActorRef
from ..kernel.system import ActorSystem
from ..wire import frames as wire
from ..wire.registry import contract_type

if TYPE_CHECKING:
    from .peer import Peer


def discover_here(system: ActorSystem, class_name: object, handles: object) -> list[str]:
    """Paths of live actors whose class (or a base) is `class_name`
    ("module:qualname") and that handle the contract type with wire id `handles`."""
    if handles is None:
        refs = system.discover(Actor)
    else:
        handled = contract_type(handles) if isinstance(handles, int) else None
        refs = [] if handled is None else system.discover(handles=handled)
    return [
        ref.path
        for ref in refs
        if isinstance(ref, LocalActorRef)
        and (class_name is None or class_name in _class_names(ref.actor_class))
    ]


async def ask_all(
    peers: list[Peer], op: str, argument: Any, timeout: float, log: Callable[..., Any]
) -> list[tuple[Peer, Any]]:
    """Query `peers` at once; one that fails or does not answer within `timeout`
    is skipped (and logged). anyio's task group and `move_on_after` keep the
    fan-out structured: nothing outlives the call."""
    answers: dict[int, Any] = {}

    async def one(index: int, peer: Peer) -> None:
        with anyio.move_on_after(timeout) as scope:
            try:
                answers[index] = await peer.request(wire.Query, op, argument, timeout=timeout)
            except (TimeoutError, MyceliumError) as exc:
                log("node.skipped", peer.address or peer.name, op=op, reason=repr(exc))
        if scope.cancelled_caught:
            log("node.skipped", peer.address or peer.name, op=op, reason="no answer")

    async with anyio.create_task_group() as group:
        for index, peer in enumerate(peers):
            group.start_soon(one, index, peer)
    return [(peer, answers.get(index)) for index, peer in enumerate(peers)]


def _class_names(cls: type) -> set[str]:
    return {f"{c.__module__}:{c.__qualname__}" for c in cls.__mro__}


def tree_dict(node: Any) -> dict[str, Any]:
    return {
        "path": node.path,
        "kind": node.kind,
        "status": node.status,
        "restarts": node.restarts,
        "mailbox": node.mailbox,
        "thread": node.thread,
        "thread_id": node.thread_id,
        "cpus": node.cpus,
        "cpu_seconds": node.cpu_seconds,
        "pid": node.pid,
        "rss": node.rss,
        "handled": node.handled,
        "handler_p99": node.handler_p99,
        "children": [tree_dict(child) for child in node.children],
    }
