"""What a parent and its worker process say to each other, besides the actor's
own messages: the bootstrap the child reads from its stdin, and the control
messages (contract types, so they cross on the node protocol like any other)
sent to the worker's host actors.

The control messages use wire ids at the very top of the id space
(`FIRST_ID` and up), which the library reserves for itself (docs/wire.md).
"""

from __future__ import annotations

import struct
from typing import IO, Any

import attrs
import msgspec

from ..wire.registry import LIBRARY_IDS, message

#: The version of what parent and worker say to each other (the bootstrap and the
#: control messages): an interpreter given as `python=` must have the same.
#: 3: the bootstrap's `tracing`, `metrics` and `report_interval`, the `NextFigures`
#: long poll, and the node protocol's version 3 (TRACED frames).
PROTOCOL = 3
#: The first of the wire ids the library keeps for itself.
FIRST_ID = LIBRARY_IDS
#: The worker's host actor (starts and stops the incarnation) and the actor that
#: reports how incarnations ended (a long poll: one `NextExit` waits at a time).
HOST = "/_mycelium_worker"
EXITS = "/_mycelium_exits"
#: What the child writes on its stdout once it listens.
READY = b"mycelium-worker-ready\n"
#: Marks a forwarded log record on the child's stderr (other lines are plain stderr).
LOG_MARK = "\x1emycelium-log "

#: How a ref to an actor of the parent crosses the worker link (the parent does
#: not listen, so it has no address): this prefix and the actor's path. The
#: worker resolves it to a ref over the same link; the parent, to its own actor.
PARENT_REF = "mycelium-parent:"

#: The node's heartbeat is off on the worker link (a long handler must not look
#: like a dead peer): a closed socket or stdin is how either side learns of a death.
NO_HEARTBEAT = 1e9

_SIZE = struct.Struct(">I")


@message(id=FIRST_ID + 1)
@attrs.frozen
class Start:
    """Construct the actor and run `on_start` (again, after a crash: same process).

    The directive lists name exception classes as "module:qualname" (the
    `Child` spec's `resume_on`, `stop_on`, `escalate_on`)."""

    resume: list[str]
    stop: list[str]
    escalate: list[str]


@message(id=FIRST_ID + 2)
@attrs.frozen
class Stop:
    """End the running incarnation: after what is queued (`drain`, a stop for
    good) or after the current message (a restart's stop), then `on_stop`."""

    drain: bool


@message(id=FIRST_ID + 4)
@attrs.frozen
class NextExit:
    """Answered when an incarnation ends on its own: [kind, error, escalate];
    the kind `CLOSING` ends the long poll when the worker shuts down."""


#: The last answer to `NextExit`: the worker is shutting down (no incarnation ended).
CLOSING = "closing"
#: An answer to `NextExit`: `ref.stop()` was called on the served actor inside the
#: worker; the parent stops its slot for good (the incarnation runs until then).
STOP = "stop"


#: The actor that reports the served actor's figures to the parent, for its
#: `system.metrics()` (a long poll: one `NextFigures` waits at a time).
FIGURES = "/_mycelium_figures"
#: Seconds between two reports of the figures: one at most per interval, and only
#: when they changed (sooner when an incarnation ends). The parent sends its value
#: in the bootstrap.
REPORT_INTERVAL = 0.5


@message(id=FIRST_ID + 5)
@attrs.frozen
class NextFigures:
    """Answered with the served actor's `Figures` once they differ from the last
    answer (at most one answer per report interval, sooner when an incarnation
    ends); with None when the worker shuts down."""


@message(id=FIRST_ID + 6)
@attrs.frozen
class Figures:
    """The served actor's figures in this process, since it started: the
    handler-time histogram (`kernel.stats.BOUNDS`), failed runs, the mailbox's
    depth now and highest depth."""

    counts: list[int]
    sum: float
    failed: int
    mailbox: int
    high: int


def write_bootstrap(stream: IO[bytes], boot: dict[str, Any]) -> None:
    data = msgspec.msgpack.encode(boot)
    stream.write(_SIZE.pack(len(data)) + data)
    stream.flush()


def read_bootstrap(stream: IO[bytes]) -> dict[str, Any]:
    head = stream.read(_SIZE.size)
    if len(head) != _SIZE.size:
        raise SystemExit("mycelium worker: no bootstrap on stdin (started by hand?)")
    (size,) = _SIZE.unpack(head)
    data = stream.read(size)
    boot = msgspec.msgpack.decode(data)
    if not isinstance(boot, dict):
        raise SystemExit("mycelium worker: a malformed bootstrap")
    return boot
