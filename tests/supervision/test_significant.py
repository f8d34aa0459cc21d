"""supervision.md 1.9 and cases 37-40 [EXT]: significant children and auto_shutdown.

Only a significant child that ends *by itself* and is not restarted counts: a
transient one exiting normally, a temporary one exiting in any way. Then the
supervisor stops the rest in reverse order and exits as `shutdown`.
"""

from __future__ import annotations

import asyncio

import pytest

from mycelium_actors.testing import eventually

from .helpers import start, status, wait_lines
from .workers import Crash, StopSelf


def transient(w, name, **opts):
    return w(name, restart="transient", **opts)


async def wait_status(system, path, wanted):
    await eventually(lambda: status(system, path) == wanted, message=f"{path} never {wanted}")


async def test_any_significant_ends_on_a_voluntary_stop_only(system, journal, w, sup):
    """Case 37 [significant_transient]: under a transient inner supervisor with
    any_significant, [a(sig), b(sig), c], all transient: a crash of a restarts it;
    terminate_child(a) + restart_child(a) trigger nothing; a's context.stop() stops c
    then b and the inner supervisor exits as shutdown, which root does not restart."""
    inner = sup(
        transient(w, "a", significant=True),
        transient(w, "b", significant=True),
        transient(w, "c"),
        name="inner",
        restart="transient",
        auto_shutdown="any_significant",
    )
    refs = await start(system, sup(inner))
    await refs["a"].tell(Crash())
    await wait_lines(journal, "start:a", 2)
    await system.terminate_child("/root/inner/a")
    await system.restart_child("/root/inner/a")
    assert status(system, "/root/inner") == "running"

    mark = journal.mark()
    await refs["a"].tell(StopSelf())
    await wait_status(system, "/root/inner", "stopped")
    assert journal.lifecycle(mark) == ["stop:a", "stop:c", "stop:b"]
    assert status(system, "/root") == "running" and journal.count("start:b") == 1


async def test_all_significant_ends_when_the_last_significant_child_does(system, journal, w, sup):
    """Case 38 [significant_temporary / nonsignificant_temporary]: all_significant,
    [a(sig), b(sig), c], all temporary: c stopping and a stopping change nothing;
    b crashing (not restarted: temporary) shuts the supervisor down."""
    inner = sup(
        *(w(x, restart="temporary", significant=x != "c") for x in "abc"),
        name="inner",
        restart="transient",
        auto_shutdown="all_significant",
    )
    refs = await start(system, sup(inner))
    for x in "ca":
        await refs[x].tell(StopSelf())
        await wait_status(system, f"/root/inner/{x}", None)  # the supervisor dropped it
        assert status(system, "/root/inner") == "running"
    await refs["b"].tell(Crash())
    await wait_status(system, "/root/inner", "stopped")


async def test_bystanders_restarted_by_one_for_all_trigger_nothing(system, journal, w, sup):
    """Case 39 [significant_bystander]: one_for_all, any_significant, [a(sig), b, c(sig)]
    all transient: crashing b restarts a and c with it, and the supervisor stays up."""
    tree = sup(
        transient(w, "a", significant=True),
        transient(w, "b"),
        transient(w, "c", significant=True),
        strategy="one_for_all",
        auto_shutdown="any_significant",
    )
    refs = await start(system, tree)
    await refs["b"].tell(Crash())
    for x in "abc":
        await wait_lines(journal, f"start:{x}", 2)
    await wait_status(system, "/root/c", "running")
    assert status(system, "/root") == "running"


@pytest.mark.parametrize("significant", [True, False])
async def test_an_auto_shutdown_cascades_through_significant_supervisors(
    system, journal, w, sup, significant
):
    """Case 40 [significant_escalation]: root (any_significant) > s (transient,
    any_significant, significant or not) > w (transient, significant). When w stops
    normally, s exits; if s is significant, root exits too and, being the last root,
    the system stops."""
    s = sup(
        transient(w, "w", significant=True),
        name="s",
        restart="transient",
        significant=significant,
        auto_shutdown="any_significant",
    )
    refs = await start(system, sup(s, auto_shutdown="any_significant"))
    await refs["w"].tell(StopSelf())
    if significant:
        await asyncio.wait_for(system.wait_stopped(), 5)
    else:
        await wait_status(system, "/root/s", "stopped")
        assert status(system, "/root") == "running" and system.running
