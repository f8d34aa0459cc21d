"""The wire codec (API.md sections 1 and 6): strict both ways, evolution, limits, fuzzing.

Every test runs on both backends: "msgspec" (the wire's) and "cattrs" (the reference).
"""

from __future__ import annotations

from typing import Any

import attrs
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.bank import Deposit, Transfer
from contracts.market import Approved, Logon, OrderRequest, Tick
from mycelium_actors import ActorRef, SerializationError
from mycelium_actors.wire.codec import Codec, RefHook
from mycelium_actors.wire.registry import wire_id

EVOLVING_ID = 2_000_000  # never registered: each codec below holds one version


@attrs.frozen
class AccountV1:
    owner: str


@attrs.frozen
class AccountV2:
    owner: str
    limit: int = 100
    tags: list[str] = attrs.field(factory=list)


@attrs.frozen
class Level:
    below: list[list[int]]


def _not_sent(*args: Any) -> Any:
    raise AssertionError("codec tests never send through a ref")


class FakeRemote(ActorRef[Any]):
    """A ref as a transport would build one from an address (no slot behind it)."""

    is_alive = True
    tell = tell_nowait = ask = ask_blocking = stop = add_watcher = _not_sent

    def __init__(self, address: str) -> None:  # no super(): a remote ref has no local slot
        self.path = address

    def __repr__(self) -> str:
        return f"<FakeRemote {self.path}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FakeRemote) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)


REFS = RefHook(encode=lambda ref: ref.path, decode=FakeRemote)
ORDER = OrderRequest(strategy="momentum", symbol="AAPL", side="buy", qty=1, price=101.5)
SAMPLES = [
    Deposit(amount=5),
    Deposit(amount=-(2**63), memo="ünïcode"),
    Transfer(to=FakeRemote("tcp://h:1/root/bob"), deposit=Deposit(amount=1), tags=["a", "b"]),
    Transfer(to=FakeRemote("x"), deposit=Deposit(amount=1), tags=[], note="n"),
    Tick(seq=1, symbol="MSFT", price=1.5),
    Approved(order=ORDER),
    Logon(),
]


@pytest.fixture(params=["msgspec", "cattrs"])
def codec(request: pytest.FixtureRequest) -> Codec:
    return Codec(backend=request.param, refs=REFS)


def body(wire: int, fields: object) -> bytes:
    return wire.to_bytes(4, "big") + msgspec.msgpack.encode(fields)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_contract_instances_round_trip(codec: Codec, msg: object) -> None:
    assert codec.decode(codec.encode(msg)) == msg


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"amount": "5"}, "Deposit.amount: expected int, got str"),
        ({"amount": True}, "Deposit.amount: expected int, got bool"),
        ({"amount": 3.9}, "Deposit.amount: expected int, got float"),
        ({"amount": 1, "memo": b"x"}, "Deposit.memo: expected str, got bytes"),
        ({"memo": "x"}, "Deposit"),
        ([1, 2], "Deposit"),
    ],
)
def test_decoding_never_coerces_and_names_the_type_and_field(
    codec: Codec, fields: object, complaint: str
) -> None:
    with pytest.raises(SerializationError, match=complaint.replace("[", r"\[")):
        codec.decode(body(101, fields))


def test_an_int_is_accepted_where_a_float_is_declared(codec: Codec) -> None:
    assert codec.decode(body(202, {"seq": 1, "symbol": "X", "price": 2})) == Tick(1, "X", 2.0)


@pytest.mark.parametrize(
    ("msg", "complaint"),
    [
        (Deposit(amount="5"), "Deposit.amount: expected int, got str"),  # type: ignore[arg-type]
        (Deposit(amount=True), "Deposit.amount: expected int, got bool"),
        (Tick(seq=1, symbol="X", price="1.5"), "Tick.price: expected float, got str"),  # type: ignore[arg-type]
        (
            Transfer(to=FakeRemote("x"), deposit=Deposit(1), tags=["a", 2]),  # type: ignore[list-item]
            r"Transfer.tags\[1\]: expected str, got int",
        ),
        (
            Transfer(to=FakeRemote("x"), deposit=Deposit("1"), tags=[]),  # type: ignore[arg-type]
            "Transfer.deposit.amount: expected int, got str",
        ),
        (
            Transfer(to="tcp://x", deposit=Deposit(1), tags=[]),  # type: ignore[arg-type]
            "Transfer.to: expected ActorRef, got str",
        ),
        (Deposit(amount=2**64), "Deposit"),
    ],
)
def test_encoding_refuses_wrongly_typed_fields_at_the_sender(
    codec: Codec, msg: object, complaint: str
) -> None:
    with pytest.raises(SerializationError, match=complaint):
        codec.encode(msg)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_the_hot_path_writes_the_documented_bytes(msg: object) -> None:
    """The per-type encoder (codec.py `fast_encoder`) changes no byte: a 4-byte
    big-endian wire id, then msgspec's MessagePack of the instance."""
    wire = wire_id(type(msg))
    assert wire is not None
    expected = wire.to_bytes(4, "big") + msgspec.msgpack.Encoder(enc_hook=REFS.encode).encode(msg)
    codec = Codec(refs=REFS)
    assert codec.encode(msg) == codec.encode(msg) == expected  # first through the general path


def test_a_known_type_is_still_checked_on_the_hot_path() -> None:
    codec = Codec()
    codec.encode(Tick(seq=1, symbol="X", price=1.5))  # the type is known now
    with pytest.raises(SerializationError, match=r"Tick\.seq: expected int, got bool"):
        codec.encode(Tick(seq=True, symbol="X", price=1.5))
    with pytest.raises(SerializationError, match=r"Tick\.price: expected float, got str"):
        codec.encode(Tick(seq=1, symbol="X", price="1.5"))  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [5, "text", AccountV1("x"), ORDER.__dict__ if False else {}])
def test_encoding_refuses_objects_that_are_not_contract_types(codec: Codec, value: object) -> None:
    with pytest.raises(SerializationError, match="not a contract type"):
        codec.encode(value)


@pytest.mark.parametrize("backend", ["msgspec", "cattrs"])
def test_evolution_adding_a_defaulted_field_is_compatible_both_ways(backend: Any) -> None:
    old = Codec({EVOLVING_ID: AccountV1}, backend=backend)
    new = Codec({EVOLVING_ID: AccountV2}, backend=backend)
    assert new.decode(old.encode(AccountV1("ann"))) == AccountV2("ann")
    assert old.decode(new.encode(AccountV2("bob", limit=5, tags=["x"]))) == AccountV1("bob")


def test_an_explicit_codec_knows_only_its_types(codec: Codec) -> None:
    only = Codec({EVOLVING_ID: AccountV1})
    with pytest.raises(SerializationError, match="unknown wire id 101"):
        only.decode(codec.encode(Deposit(1)))
    with pytest.raises(SerializationError, match="not a contract type"):
        only.encode(Deposit(1))


@pytest.mark.parametrize(
    "data", [b"", b"\x00\x00", b"\x00\x00\x00\x05\x80", b"\x7f\xff\xff\xff\x80"]
)
def test_short_bodies_and_unknown_ids_are_refused(codec: Codec, data: bytes) -> None:
    with pytest.raises(SerializationError, match="wire id"):
        codec.decode(data)


@pytest.mark.parametrize(
    "value", [None, True, 7, -2.5, "s", b"\x00", [], {}, [1, {"a": [None, b"x"]}], ORDER]
)
def test_reply_values_round_trip(codec: Codec, value: object) -> None:
    assert codec.decode_value(codec.encode_value(value)) == value


@pytest.mark.parametrize(
    ("payload", "complaint"),
    [
        (b"\xa2hi\xc0", "trailing bytes"),  # a scalar, then more
        (b"\xa5hi", "truncated"),  # a str shorter than it says
        (b"\xd4\x01\x00", "Ext is neither"),  # an ext type: not plain data
        (b"\xc1", "malformed"),  # the one byte MessagePack never uses
    ],
)
def test_replies_that_start_like_a_scalar_are_still_checked(
    codec: Codec, payload: bytes, complaint: str
) -> None:
    with pytest.raises(SerializationError, match=complaint):
        codec.decode_value(b"\x00\x00\x00\x00" + payload)


@pytest.mark.parametrize("backend", ["msgspec", "cattrs"])
def test_a_scalar_reply_beyond_64_bits_is_refused(backend: Any) -> None:
    with pytest.raises(SerializationError, match="reply"):
        Codec(backend=backend).encode_value(2**64)


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ((1, 2), "tuple is neither"),
        ({1, 2}, "set is neither"),
        ({1: "a"}, "dict keys must be str"),
        ([object()], r"\[0\]: object is neither"),
        (AccountV1("x"), "AccountV1 is neither"),
    ],
)
def test_replies_other_than_contract_types_or_plain_data_are_refused(
    codec: Codec, value: object, complaint: str
) -> None:
    with pytest.raises(SerializationError, match=complaint):
        codec.encode_value(value)


def test_a_plain_value_is_not_a_message(codec: Codec) -> None:
    with pytest.raises(SerializationError, match="plain value"):
        codec.decode(codec.encode_value(1))


@pytest.mark.parametrize("backend", ["msgspec", "cattrs"])
def test_refs_are_refused_until_a_transport_installs_its_hook(backend: Any) -> None:
    bare = Codec(backend=backend)
    transfer = Transfer(to=FakeRemote("x"), deposit=Deposit(1), tags=[])
    with pytest.raises(SerializationError, match="listens"):
        bare.encode(transfer)
    with pytest.raises(SerializationError, match="no transport resolves refs"):
        bare.decode(Codec(refs=REFS).encode(transfer))


@pytest.mark.parametrize("backend", ["msgspec", "cattrs"])
def test_bodies_over_the_size_limit_are_refused_both_ways(backend: Any) -> None:
    small = Codec(backend=backend, max_size=64)
    big = Deposit(amount=1, memo="x" * 100)
    with pytest.raises(SerializationError, match="over the limit of 64"):
        small.encode(big)
    with pytest.raises(SerializationError, match="over the limit of 64"):
        small.decode(Codec().encode(big))


@pytest.mark.parametrize("backend", ["msgspec", "cattrs"])
def test_nesting_is_bounded_before_anything_is_built(backend: Any) -> None:
    shallow = Codec(backend=backend, max_depth=2)
    deep = [[[1]]]
    with pytest.raises(SerializationError, match="too deep"):
        shallow.encode_value(deep)
    with pytest.raises(SerializationError, match="nested deeper than 2"):
        shallow.decode_value(Codec().encode_value(deep))
    bomb = b"\x00\x00\x00\x00" + b"\x91" * 100_000 + b"\xc0"
    with pytest.raises(SerializationError, match="nested deeper"):
        Codec(backend=backend).decode_value(bomb)
    with pytest.raises(SerializationError, match="nests 3 levels, over 2"):
        Codec({EVOLVING_ID: Level}, backend=backend, max_depth=2)


# -- fuzzing: whatever arrives, the decoder raises SerializationError or returns a value

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text()
    | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
fields = st.dictionaries(
    st.sampled_from(["amount", "memo", "to", "deposit", "tags", "note", "seq", "order"]),
    plain,
    max_size=6,
)
FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(data=st.binary(max_size=64))
def test_fuzz_random_bytes_raise_only_serialization_errors(codec: Codec, data: bytes) -> None:
    for decode in (codec.decode, codec.decode_value):
        try:
            decode(data)
        except SerializationError:
            pass


@FUZZ
@given(wire=st.sampled_from([0, 101, 102, 201, 203, 205, 207]), payload=fields | plain)
def test_fuzz_wrong_payloads_raise_only_serialization_errors(
    codec: Codec, wire: int, payload: object
) -> None:
    data = body(wire, payload)
    for decode in (codec.decode, codec.decode_value):
        try:
            decoded = decode(data)
        except SerializationError:
            continue
        if wire:  # anything accepted is a well-typed instance: it encodes again
            assert codec.decode(codec.encode(decoded)) == decoded
