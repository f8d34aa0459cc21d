"""Exceptions on the wire: how a failed ask's exception crosses to the caller.

Nothing here imports, resolves or unpickles a name from a peer: exceptions
are rebuilt from fixed tables, anything else becomes `RemoteError`.
"""

from __future__ import annotations

import traceback

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


def encode_error(exc: BaseException, raised_by_handler: bool) -> bytes:
    """An exception as [origin, type name, message, traceback text]."""
    origin = "handler" if raised_by_handler else "framework"
    text = "".join(traceback.format_exception(exc)) if raised_by_handler else ""
    args = exc.args
    message = args[0] if len(args) == 1 and isinstance(args[0], str) else str(exc)
    return _encoder.encode([origin, type(exc).__name__, message, text])


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
