"""mycelium-actors: asyncio-native actors with OTP-style supervision trees.

Layers (each imports only the ones above it in this list):

    kernel       errors, logs, clock, messages, schema, replies, mailbox, ref, context,
                 actor, slot, executor, transport, system -- actors, refs, mailboxes,
                 discovery, and the registry transports fill by URL scheme
    supervision  spec, supervisor    -- OTP trees built on slots and the system lane
    transports   transports/         -- memory://, unix://, tcp:// adapters; fill the registry
    wire         codec, codec_cattrs, contracts -- contract types to bytes; YAML contracts
    tools        testing, cli        -- test helpers and the command line

Users import from this module only.
"""

from . import transports as _transports  # noqa: F401  (fills the scheme registry)
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
