"""mycelium-actors: asyncio-native actors with OTP-style supervision trees.

Layers, one folder each (each imports only the layers below it; `a | b`
never import each other; docs/design.md has the whole rule):

    cli/ | testing       the command line, test helpers
    workers/ | metrics   worker pools and processes (Pool, Subprocess) | Prometheus
    remote/              the node, handshakes, peers, credit, remote refs
    wire/ | supervision/ values <-> bytes, contracts | OTP trees on the kernel
    kernel/ | transports/ actors, refs, mailboxes, the dispatcher, the system | byte pipes
    errors | logs        exceptions, where lifecycle events go

Users import from this module only.
"""

# `mycelium_actors.metrics` (API.md 11) is a module of its own, loaded with the package.
# The adapters fill the transport registry and the remote layer the kernel's node
# seam when imported (the kernel never imports them): ActorSystem(listen=...) and
# system.remote() work from here on, for every registered URL scheme.
from . import metrics as metrics
from . import tracing as _tracing  # noqa: F401
from . import transports as _transports  # noqa: F401
from .errors import (
    ActorStopped,
    AskTimeout,
    ContractError,
    Ignore,
    MailboxFull,
    MyceliumError,
    RemoteError,
    SerializationError,
    SupervisorGaveUp,
    TransportError,
    UnhandledMessage,
)
from .kernel.actor import Actor, handler
from .kernel.clock import Clock
from .kernel.context import ActorContext, Scheduled
from .kernel.executor import Executor, PinnedThread, Runner
from .kernel.messages import Terminated
from .kernel.ref import ActorProxy, ActorRef
from .kernel.seams import NodeInfo
from .kernel.system import ActorSystem, TreeNode
from .remote import node as _node  # noqa: F401
from .supervision.spec import Backoff, Child, Supervisor
from .supervision.supervisor import StartFailed
from .wire.registry import message
from .workers import Subprocess
from .workers.pool import Pool

__all__ = [
    "Actor",
    "ActorContext",
    "ActorProxy",
    "ActorRef",
    "ActorStopped",
    "ActorSystem",
    "AskTimeout",
    "Backoff",
    "Child",
    "Clock",
    "ContractError",
    "Executor",
    "Ignore",
    "MailboxFull",
    "MyceliumError",
    "NodeInfo",
    "PinnedThread",
    "Pool",
    "RemoteError",
    "Runner",
    "Scheduled",
    "SerializationError",
    "StartFailed",
    "Subprocess",
    "Supervisor",
    "SupervisorGaveUp",
    "Terminated",
    "TransportError",
    "TreeNode",
    "UnhandledMessage",
    "handler",
    "message",
]

__version__ = "0.1.0"
