"""The same workloads on pykka's `ThreadingActor` (one OS thread per actor)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import wraps
from typing import Any

import pykka

from .meter import Meter
from .workloads import RING_SIZE, ring_links


class Counter(pykka.ThreadingActor):
    def __init__(self, n: int, done: threading.Event) -> None:
        super().__init__()
        self.left, self.done = n, done

    def on_receive(self, message: Any) -> None:
        self.left -= 1
        if not self.left:
            self.done.set()


class Echo(pykka.ThreadingActor):
    def on_receive(self, message: Any) -> Any:
        return message


class Asker(pykka.ThreadingActor):
    """Asks `target` n sequential times from inside one `on_receive` (blocking asks)."""

    def __init__(self, target: pykka.ActorRef[Echo]) -> None:
        super().__init__()
        self.target = target

    def on_receive(self, message: Any) -> None:
        for i in range(message):
            self.target.ask(i)


class Hop(pykka.ThreadingActor):
    def __init__(self, done: threading.Event) -> None:
        super().__init__()
        self.done = done
        self.next: pykka.ActorRef[Hop] | None = None

    def on_receive(self, message: Any) -> None:
        if isinstance(message, pykka.ActorRef):
            self.next = message
        elif message:
            self.next.tell(message - 1)  # type: ignore[union-attr]
        else:
            self.done.set()


class Idle(pykka.ThreadingActor):
    pass


def stopping_all(workload: Callable[[int, Meter], None]) -> Callable[[int, Meter], None]:
    """Stop every pykka actor when the workload ends (pykka's registry is global)."""

    @wraps(workload)
    def run(n: int, meter: Meter) -> None:
        try:
            workload(n, meter)
        finally:
            pykka.ActorRegistry.stop_all()

    return run


@stopping_all
def tell(n: int, meter: Meter) -> None:
    done = threading.Event()
    ref = Counter.start(n, done)
    with meter:
        for i in range(n):
            ref.tell(i)
        done.wait()


@stopping_all
def ask(n: int, meter: Meter) -> None:
    ref = Echo.start()
    with meter:
        for i in range(n):
            ref.ask(i)


@stopping_all
def actor_ask(n: int, meter: Meter) -> None:
    ref = Asker.start(Echo.start())
    with meter:
        ref.ask(n)


@stopping_all
def ring(n: int, meter: Meter) -> None:
    done = threading.Event()
    refs = [Hop.start(done) for _ in range(RING_SIZE)]
    for ref, nxt in ring_links(refs):
        ref.tell(nxt)
    with meter:
        refs[0].tell(n)
        done.wait()


@stopping_all
def spawn_one(n: int, meter: Meter) -> None:
    with meter:
        for _ in range(n):
            Idle.start().stop()


@stopping_all
def spawn_batch(n: int, meter: Meter) -> None:
    with meter:
        refs = [Idle.start() for _ in range(n)]
        for stopped in [ref.stop(block=False) for ref in refs]:
            stopped.get()


@stopping_all
def memory(n: int, meter: Meter) -> None:
    with meter:  # each has handled one message, as ours and raw's do
        for i in range(n):
            ref = Idle.start()
            ref.tell(i)
        ref.ask(-1)


# pykka's actors always run on their own thread: the cross-thread workloads are the plain ones.
xthread_tell = tell
xthread_ask = ask
