"""The codec workloads' messages: contract types, and msgspec Structs of the same shapes.

small: a `Tick` (3 scalar fields); kib: a `Deposit` whose memo makes ~1 KiB;
nested: a `Send` holding an `OrderRequest`. The Structs are tagged with the
same wire ids, decoded through one tagged union: msgspec's own typed floor.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from typing import Any

import msgspec

from contracts.bank import Deposit
from contracts.market import OrderRequest, Send, Tick
from mycelium_actors.wire.codec import Codec

from .meter import Meter
from .workloads import Extras


class TickS(msgspec.Struct, tag=202):
    seq: int
    symbol: str
    price: float


class DepositS(msgspec.Struct, tag=101):
    amount: int
    memo: str = ""


class OrderRequestS(msgspec.Struct):
    strategy: str
    symbol: str
    side: str
    qty: int
    price: float


class SendS(msgspec.Struct, tag=206):
    order_id: str
    order: OrderRequestS


MEMO = "x" * 1000
ORDER = ("momentum", "AAPL", "buy", 1, 101.25)
CONTRACTS: dict[str, Any] = {
    "small": Tick(seq=1, symbol="AAPL", price=101.25),
    "kib": Deposit(amount=5, memo=MEMO),
    "nested": Send(order_id="1-1", order=OrderRequest(*ORDER)),
}
STRUCTS: dict[str, Any] = {
    "small": TickS(1, "AAPL", 101.25),
    "kib": DepositS(5, MEMO),
    "nested": SendS("1-1", OrderRequestS(*ORDER)),
}


def round_trips(
    encode: Callable[[Any], bytes], decode: Callable[[bytes], Any], msg: Any, n: int
) -> None:
    for _ in range(n):
        decode(encode(msg))


def ours(shape: str, n: int, meter: Meter) -> Extras:
    """Our codec (msgspec backend) in the meter; as extras (us per round trip): msgspec's
    own round trip of the same attrs instance (`msgspec_attrs_us`, no envelope and no
    checks: `vs_msgspec_attrs` = its time / ours, fastest of 5 alternating blocks each),
    the cattrs backend and pickle."""
    msg = CONTRACTS[shape]
    codec = Codec()
    with meter:
        round_trips(codec.encode, codec.decode, msg, n)
    # The ratio from alternating blocks, the fastest of each (a noisy machine
    # slows one block, not one side).
    typed = msgspec.msgpack.Decoder(type(msg))
    sides = {
        "ours": (codec.encode, codec.decode),
        "attrs": (msgspec.msgpack.Encoder().encode, typed.decode),
    }
    best = dict.fromkeys(sides, float("inf"))
    block = max(1, n // 5)
    for _ in range(5):
        for side, (encode, decode) in sides.items():
            start = time.perf_counter()
            round_trips(encode, decode, msg, block)
            best[side] = min(best[side], (time.perf_counter() - start) / block * 1e6)
    extras = {"msgspec_attrs_us": best["attrs"], "vs_msgspec_attrs": best["attrs"] / best["ours"]}
    for name, (encode, decode) in {
        "cattrs_us": (Codec(backend="cattrs").encode, Codec(backend="cattrs").decode),
        "pickle_us": (pickle.dumps, pickle.loads),
    }.items():
        start = time.perf_counter()
        round_trips(encode, decode, msg, n)
        extras[name] = (time.perf_counter() - start) / n * 1e6
    return extras


def floor(shape: str, n: int, meter: Meter) -> None:
    """msgspec's typed round trip of Structs of the same shape, through a tagged union."""
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(TickS | DepositS | SendS)
    msg = STRUCTS[shape]
    with meter:
        round_trips(encoder.encode, decoder.decode, msg, n)
