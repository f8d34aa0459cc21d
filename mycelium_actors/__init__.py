"""mycelium-actors: asyncio-native actors with OTP-style supervision trees.

Layers (each imports only the ones above it in this list):

    kernel       errors, logs, clock, messages, schema, replies, mailbox, ref, context,
                 actor, exits, dispatcher, slot, executor, transport, system -- actors,
                 refs, mailboxes, the per-loop dispatcher,
                 discovery, and the registry transports fill by URL scheme
    supervision  spec, supervisor    -- OTP trees built on slots and the system lane
    transports   transports/         -- memory://, unix://, tcp:// adapters; fill the registry
    wire         codec, codec_cattrs, contracts -- contract types to bytes; YAML contracts
    remote       wire, remote, node  -- frames, handshakes, peers, remote refs
    tools        testing, cli        -- test helpers and the command line

Users import from this module only.
"""

# The remote layer and the adapters fill the kernel's seams when imported (the
# kernel never imports them): ActorSystem(listen=...) and system.remote() work
# from here on, for every registered URL scheme.
from . import node as _node  # noqa: F401
from . import transports as _transports  # noqa: F401
from .actor import Actor, handler
from .clock import Clock
from .context import ActorContext, Scheduled
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
from .executor import Executor, PinnedThread, Runner
from .messages import Terminated, message
from .ref import ActorProxy, ActorRef
from .spec import Backoff, Child, Supervisor
from .supervisor import StartFailed
from .system import ActorSystem, TreeNode
from .transport import NodeInfo

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
    "RemoteError",
    "Runner",
    "Scheduled",
    "SerializationError",
    "StartFailed",
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
