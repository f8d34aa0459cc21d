"""Bounded mailboxes and their overflow policies (API.md §2 and the tell/ask rows of §3).

Every test parks a worker inside a `Hold` handler (its gate closed), so what
sits in the mailbox is exactly what the test queued. The worker's journal
shows what it handled once the gate opens (an ask could itself overflow).
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from actors import BOXED, Boom, GetSeen, Ping, Record, Worker, park

from mycelium_actors import Actor, ActorStopped, AskTimeout, MailboxFull
from mycelium_actors.testing import eventually, settle

POLICIES = ["block", "drop_new", "drop_old", "fail"]

#: A full mailbox holding Record(1), Record(2) is sent Record(3):
#: policy -> (error the sender gets, values handled once the gate opens, new dead letters)
WHEN_FULL = {
    "block": (MailboxFull, [1, 2], 0),  # tell_nowait only: tell waits instead
    "drop_new": (None, [1, 2], 1),
    "drop_old": (None, [2, 3], 1),
    "fail": (MailboxFull, [1, 2], 0),
}

CASES = [
    pytest.param(policy, via, send, id=f"{policy}-{via}-{send}")
    for policy in POLICIES
    for via in ("class", "spawn")
    for send in ("tell", "tell_nowait", "tell_nowait_from_a_thread")
    if not (policy == "block" and send == "tell")
]


@pytest.fixture
def journal() -> list[object]:
    return []


@pytest.fixture
def full(system, gate, journal):
    """Make a worker whose mailbox (capacity 2, policy set `via` class or spawn) is full."""

    async def make(policy: str, via: str = "spawn"):
        if via == "class":
            ref = await system.spawn(BOXED[policy], journal, gate)
        else:
            ref = await system.spawn(
                Worker, journal, gate, mailbox_capacity=2, mailbox_overflow=policy
            )
        await park(ref, gate, 1, 2)
        return ref

    return make


async def handled(gate, journal, count: int = 2) -> list[object]:
    """Open the gate and return the values of the `count` Records the worker then handles."""
    gate.open()
    await eventually(lambda: len(journal) >= 1 + count)
    return journal[1:]


@pytest.mark.parametrize(("policy", "via", "send"), CASES)
async def test_a_full_mailbox_applies_its_overflow_policy(
    system, full, gate, journal, policy, via, send
) -> None:
    ref = await full(policy, via)
    error, values, dead = WHEN_FULL[policy]
    before = system.dead_letters
    with pytest.raises(error) if error else contextlib.nullcontext():
        if send == "tell":
            await asyncio.wait_for(ref.tell(Record(3)), 5)
        elif send == "tell_nowait":
            ref.tell_nowait(Record(3))
        else:
            await asyncio.to_thread(ref.tell_nowait, Record(3))
    assert system.dead_letters - before == dead
    assert await handled(gate, journal) == values


async def test_the_default_mailbox_holds_1000_then_refuses_tell_nowait(system, gate) -> None:
    ref = await system.spawn(Worker, gate=gate)
    await park(ref, gate, *range(1000))
    with pytest.raises(MailboxFull):
        ref.tell_nowait(Record("one too many"))


@pytest.mark.parametrize("policy", ["drop_new", "fail"])
async def test_an_ask_refused_by_a_full_mailbox_raises_mailbox_full_at_once(full, policy) -> None:
    ref = await full(policy)
    with pytest.raises(MailboxFull):
        await asyncio.wait_for(ref.ask(Ping(), timeout=None), 5)


async def test_drop_old_fails_an_evicted_ask_with_mailbox_full(system, gate, journal) -> None:
    ref = await system.spawn(Worker, journal, gate, mailbox_capacity=2, mailbox_overflow="drop_old")
    await park(ref, gate)
    evicted = asyncio.create_task(ref.ask(Ping(), timeout=None))
    await settle()
    ref.tell_nowait(Record(1))
    ref.tell_nowait(Record(2))
    with pytest.raises(MailboxFull):
        await asyncio.wait_for(evicted, 5)
    assert await handled(gate, journal) == [1, 2]


# -- "block" ------------------------------------------------------------------


async def test_block_tell_waits_for_space(full, gate, journal) -> None:
    ref = await full("block")
    telling = asyncio.create_task(ref.tell(Record(3)))
    await settle()
    assert not telling.done()
    assert await handled(gate, journal, 3) == [1, 2, 3]
    await asyncio.wait_for(telling, 5)


async def test_blocked_senders_enqueue_in_the_order_they_blocked(full, gate, journal) -> None:
    ref = await full("block")
    senders = []
    for value in (3, 4, 5):
        senders.append(asyncio.create_task(ref.tell(Record(value))))
        await settle()
    assert await handled(gate, journal, 5) == [1, 2, 3, 4, 5]
    await asyncio.wait_for(asyncio.gather(*senders), 5)


async def test_a_cancelled_blocked_tell_enqueues_nothing(full, gate, journal) -> None:
    ref = await full("block")
    cancelled = asyncio.create_task(ref.tell(Record("cancelled")))
    await settle()
    kept = asyncio.create_task(ref.tell(Record(4)))
    await settle()
    cancelled.cancel()
    assert await handled(gate, journal, 3) == [1, 2, 4]
    await asyncio.wait_for(kept, 5)
    assert cancelled.cancelled()


async def test_an_ask_that_gives_up_just_after_its_turn_leaves_no_reply_to_fail_unread(
    full, gate
) -> None:
    """Its message went in as it was cancelled: the reply future is cancelled
    too, so the handler's outcome is dropped instead of left unread."""
    ref = await full("block")
    mailbox = ref._slot.mailbox  # the consumer's side, driven by hand
    asking = asyncio.create_task(ref.ask(Boom()))
    await eventually(lambda: mailbox.blocked == 1)
    mailbox.take()  # its turn: Boom goes in...
    asking.cancel()  # ...as the asker gives up, in the same instant
    with pytest.raises(asyncio.CancelledError):
        await asking
    assert [type(m) for m, _ in mailbox.queue] == [Record, Boom]
    assert mailbox.queue[-1][1].cancelled()


async def test_block_ask_timeout_bounds_the_wait_for_space(fake_system, clock, gate) -> None:
    ref = await fake_system.spawn(Worker, gate=gate, mailbox_capacity=2)
    await park(ref, gate, 1, 2)
    asking = asyncio.create_task(ref.ask(Record(3), timeout=1.0))
    await settle()
    await clock.advance(0.5)
    assert not asking.done()
    await clock.advance(0.5)
    with pytest.raises(AskTimeout):
        await asyncio.wait_for(asking, 5)
    gate.open()
    assert await ref.ask(GetSeen()) == [1, 2]


@pytest.mark.parametrize(
    ("send", "error", "dead"),
    # An ask fails with ActorStopped; a tell is a dead letter ("Tells to a stopped
    # actor go to the dead-letter log"; the tell row lists no ActorStopped).
    [("ask", ActorStopped, 0), ("tell", None, 1)],
    ids=["ask", "tell"],
)
async def test_a_sender_blocked_on_space_when_the_actor_stops_for_good(
    system, full, gate, send, error, dead
) -> None:
    ref = await full("block")
    sending = asyncio.create_task(
        ref.tell(Record(3)) if send == "tell" else ref.ask(Record(3), timeout=None)
    )
    await settle()
    before = system.dead_letters
    stopping = asyncio.create_task(ref.stop())
    await settle()
    gate.open()
    await asyncio.wait_for(stopping, 5)
    [outcome] = await asyncio.wait_for(asyncio.gather(sending, return_exceptions=True), 5)
    assert type(outcome) is error if error else outcome is None
    assert system.dead_letters - before == dead


# -- configuration ------------------------------------------------------------


async def test_spawn_options_override_the_class_attributes(system, gate, journal) -> None:
    ref = await system.spawn(
        BOXED["fail"], journal, gate, mailbox_capacity=1, mailbox_overflow="drop_new"
    )
    await park(ref, gate, 1)
    ref.tell_nowait(Record(2))  # "fail" would raise; "drop_new" drops it
    assert await handled(gate, journal, 1) == [1]


def test_an_unknown_overflow_policy_on_the_class_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="mailbox_overflow"):

        class Reckless(Actor):
            mailbox_overflow = "explode"


@pytest.mark.parametrize(
    "options", [{"mailbox_overflow": "explode"}, {"mailbox_capacity": 0}], ids=str
)
async def test_bad_mailbox_options_at_spawn_are_value_errors(system, options) -> None:
    with pytest.raises(ValueError):
        await system.spawn(Worker, **options)
    assert system.discover(Worker) == []
