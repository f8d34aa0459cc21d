"""supervision.md 1.11 and case 49 [EXT]: resume_on, stop_on and escalate_on turn a
handler's exception into Akka's directives; anything unlisted is an OTP crash."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mycelium_actors.testing import events_named, eventually

from .helpers import restarts, start, status, wait_lines
from .workers import Count, Raise, Record


async def test_resume_keeps_the_state_and_a_crash_resets_it(events, system, journal, w, sup):
    """Case 49: resume_on=(ValueError,): after a Record, a ValueError keeps the count at 1,
    with no on_stop and a restart count of 0; a RuntimeError restarts with the count at 0."""
    a = (await start(system, sup(w("a", resume_on=(ValueError,)))))["a"]
    await a.ask(Record(1))
    with pytest.raises(ValueError):  # the asker still gets the exception
        await a.ask(Raise(ValueError))
    assert await a.ask(Count()) == 1
    assert journal.count("stop:a") == 0 and restarts(system, "/root/a") == 0
    assert len(events_named(events, "actor.resumed")) == 1

    with pytest.raises(RuntimeError):
        await a.ask(Raise(RuntimeError))
    await wait_lines(journal, "start:a", 2)
    await eventually(lambda: status(system, "/root/a") == "running")
    assert await a.ask(Count()) == 0 and restarts(system, "/root/a") == 1


@pytest.mark.parametrize(("restart", "restarted"), [("transient", False), ("permanent", True)])
async def test_stop_exits_as_normal(system, journal, w, sup, restart, restarted):
    """stop_on: the child exits as normal, so a transient one stays stopped and a
    permanent one is still restarted."""
    a = (await start(system, sup(w("a", restart=restart, stop_on=KeyError))))["a"]
    with pytest.raises(KeyError):
        await a.ask(Raise(KeyError))
    await wait_lines(journal, "stop:a", 1)
    if restarted:
        await wait_lines(journal, "start:a", 2)
        await eventually(lambda: status(system, "/root/a") == "running")
    else:
        await eventually(lambda: status(system, "/root/a") == "stopped")
        assert journal.count("start:a") == 1


async def test_escalate_makes_the_supervisor_give_up_at_once(system, journal, w, sup):
    """escalate_on: the first such exception makes the supervisor give up, however much
    restart intensity it has left; the most specific listed class decides."""
    tree = sup(w("a", resume_on=Exception, escalate_on=LookupError), w("b"), max_restarts=100)
    a = (await start(system, tree))["a"]
    with pytest.raises(RuntimeError):
        await a.ask(Raise(RuntimeError))  # an Exception: resumed
    assert journal.count("stop:a") == 0
    with pytest.raises(KeyError):
        await a.ask(Raise(KeyError))  # a LookupError: escalated
    await eventually(lambda: system.gave_up is not None)
    assert "/root/a escalated KeyError" in str(system.gave_up)
    assert journal.count("stop:b") == 1 and journal.count("start:a") == 1


KEYBOARD_INTERRUPT = """
import asyncio
from mycelium_actors import Actor, ActorSystem, Child, Supervisor, handler

class Interrupt:
    pass

class A(Actor):
    @handler
    DEF interrupt(self, msg: Interrupt) -> None:
        raise KeyboardInterrupt

async def main():
    async with ActorSystem("k") as system:
        a = Child(A, name="a", resume_on=Exception)
        await system.start(Supervisor("root", children=[a]))
        await system.lookup("/root/a").tell(Interrupt())
        await asyncio.sleep(10)
        print("still running")

asyncio.run(main())
"""


@pytest.mark.parametrize("kind", ["def", "async def"])
def test_a_keyboard_interrupt_in_a_handler_is_no_crash_it_ends_the_program(kind: str) -> None:
    """Case 49, last part: not caught as a crash (not even by resume_on=Exception), no
    restart: it goes up to the runtime and the program ends with it. The actor's
    stop at the exit is served (its shutdown time is not waited out: abandoned)."""
    program = KEYBOARD_INTERRUPT.replace("DEF", kind)
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=30
    )
    assert result.returncode != 0 and "KeyboardInterrupt" in result.stderr
    assert "still running" not in result.stdout
    output = result.stdout + result.stderr
    assert "actor.restarted" not in output and "actor.abandoned" not in output
