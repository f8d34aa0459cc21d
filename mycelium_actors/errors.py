"""Every error the framework raises.

MyceliumError
├── AskTimeout (also TimeoutError)     an ask got no reply in time
├── ActorStopped                       the target is stopped, or stopped for good while asked
├── MailboxFull                        the mailbox refused or dropped the message
├── UnhandledMessage                   no handler and no on_receive for an asked message
├── SerializationError                 a message cannot cross a process boundary
├── TransportError                     a connection to another node failed
├── RemoteError                        an exception raised on another node
├── SupervisorGaveUp                   a supervisor went over its restart intensity
└── ContractError                      a message contract is malformed or clashes
"""

from __future__ import annotations


class MyceliumError(Exception):
    """Base class of every error raised by mycelium-actors."""


class AskTimeout(MyceliumError, TimeoutError):
    """An ask received no reply within its timeout."""


class ActorStopped(MyceliumError):
    """The target actor is stopped, or stopped for good before it replied."""


class MailboxFull(MyceliumError):
    """The mailbox refused the message, or dropped it under its overflow policy."""


class UnhandledMessage(MyceliumError):
    """The actor has no handler for the asked message's type."""


class SerializationError(MyceliumError):
    """A message or reply cannot be encoded for (or decoded from) the wire."""


class TransportError(MyceliumError):
    """A connection to another node failed or was lost."""


class RemoteError(MyceliumError):
    """An exception raised on another node that could not be rebuilt locally."""

    def __init__(self, type_name: str, message: str, traceback_text: str = "") -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.remote_message = message
        self.traceback_text = traceback_text


class SupervisorGaveUp(MyceliumError):
    """A supervisor exceeded its restart intensity and stopped its children."""

    def __init__(
        self, path: str, max_restarts: int, within: float, reason: str | None = None
    ) -> None:
        reason = reason or f"more than {max_restarts} restarts within {within}s"
        super().__init__(f"{path} gave up: {reason}")
        self.path = path
        self.max_restarts = max_restarts
        self.within = within


class ContractError(MyceliumError):
    """A message contract is malformed, or two contracts claim the same wire id."""


class Ignore(Exception):
    """Raise in `on_start` to decline to start (OTP's `ignore`).

    Under a supervisor the start counts as neither a success nor a failure: a
    temporary child is dropped, any other is kept in the tree as stopped (it
    can be started later with `restart_child`), and the tree goes on starting.
    A plain `spawn` raises it to the caller.
    """
