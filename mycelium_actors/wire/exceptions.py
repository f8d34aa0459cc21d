"""Exceptions on the wire: how a failed ask's exception crosses to the caller.

Nothing here imports, resolves or unpickles a name from a peer: exceptions
are rebuilt from fixed tables, anything else becomes `RemoteError`.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable

import msgspec

from .. import errors
from ..errors import MyceliumError, RemoteError, SerializationError

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder()

#: Builtin exceptions rebuilt by exact type name (a subclass arrives as RemoteError).
BUILTINS: dict[str, type[BaseException]] = {
    cls.__name__: cls
    for cls in (
        ArithmeticError,
        AssertionError,
        AttributeError,
        ConnectionError,
        EOFError,
        Exception,
        FileNotFoundError,
        IndexError,
        KeyError,
        LookupError,
        NotImplementedError,
        OSError,
        OverflowError,
        PermissionError,
        RecursionError,
        RuntimeError,
        TimeoutError,
        TypeError,
        UnicodeError,
        ValueError,
        ZeroDivisionError,
    )
}
#: Our errors rebuilt as themselves. ActorStopped, AskTimeout and TransportError
#: are not here: raised inside a handler they arrive as RemoteError, so at the
#: caller those three always speak of the caller's own ref and connection.
OURS: dict[str, type[MyceliumError]] = {
    cls.__name__: cls
    for cls in (
        errors.MyceliumError,
        errors.MailboxFull,
        errors.UnhandledMessage,
        errors.SerializationError,
        errors.ContractError,
    )
}
#: What the framework itself says about a delivery (not raised by a handler).
FRAMEWORK: dict[str, type[MyceliumError]] = {
    cls.__name__: cls
    for cls in (
        errors.ActorStopped,
        errors.MailboxFull,
        errors.UnhandledMessage,
        errors.SerializationError,
    )
}


#: The longest message and traceback text an error reply carries (longer ones
#: are cut, marked with " [...]").
MAX_TEXT = 16 * 1024


def encode_error(exc: BaseException, raised_by_handler: bool, room: int = 2**32) -> bytes:
    """An exception as [origin, type name, message, traceback text], in at most
    `room` bytes if it can be; never raises (an exception whose `str()` raises
    says so in its message)."""
    origin = "handler" if raised_by_handler else "framework"
    name = type(exc).__name__
    message = _text(lambda: _message(exc))
    text = _text(lambda: "".join(traceback.format_exception(exc))) if raised_by_handler else ""
    payload = _encoder.encode([origin, name, message, text])
    if len(payload) > room:  # the peer's maximum frame is small: the message alone
        payload = _encoder.encode([origin, name, message[: max(0, room - 64)], ""])
    return payload


def _message(exc: BaseException) -> str:
    args = exc.args
    return args[0] if len(args) == 1 and isinstance(args[0], str) else str(exc)


def _text(make: Callable[[], str]) -> str:
    try:
        text = make()
    except Exception as exc:
        return f"<str() raised {type(exc).__name__}>"
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " [...]"


def decode_error(payload: bytes) -> BaseException:
    """Rebuild an exception from the fixed tables; anything else is `RemoteError`."""
    try:
        origin, name, message, text = _decoder.decode(payload)
    except (msgspec.DecodeError, ValueError, TypeError):
        return SerializationError("a malformed error reply")
    if not all(isinstance(v, str) for v in (origin, name, message, text)):
        return SerializationError("a malformed error reply")
    if origin == "framework" and name in FRAMEWORK:
        return FRAMEWORK[name](message)
    if origin == "handler":
        builtin = BUILTINS.get(name)
        if builtin is not None:
            return _rebuilt(builtin, message, text)
        ours = OURS.get(name)
        if ours is not None:
            return _rebuilt(ours, message, text)
    return RemoteError(name, message, text)


def _rebuilt(cls: type[BaseException], message: str, text: str) -> BaseException:
    exc = cls(message)
    if text:
        exc.add_note(f"raised on a remote node:\n{text.rstrip()}")
    return exc
