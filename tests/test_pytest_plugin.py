"""The pytest plugin (API.md 11): its fixtures, as a user's test file sees them.

Each case runs a small user test file in a pytest subprocess, so the plugin is
found the way a user's pytest finds it: through the `pytest11` entry point of
the installed package (no `-p`, no conftest).
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import attrs
import pytest

from mycelium_actors import Actor, ActorSystem, handler
from mycelium_actors.testing import FakeClock, Probe

pytestmark = pytest.mark.asyncio  # needed in strict mode, harmless in auto mode


@attrs.frozen
class Ping:
    n: int


@attrs.frozen
class Later:
    text: str


class Echo(Actor):
    @handler
    def ping(self, msg: Ping) -> int:
        return msg.n + 1


class Alarm(Actor):
    def __init__(self, to):
        super().__init__()
        self.to = to

    @handler
    def ping(self, msg: Ping) -> None:
        self.context.schedule_once(60.0, Later("wake up"))

    @handler
    async def later(self, msg: Later) -> None:
        await self.to.tell(msg)


seen = []


async def test_actor_system_is_started(actor_system):
    assert isinstance(actor_system, ActorSystem) and actor_system.running
    echo = await actor_system.spawn(Echo)
    assert await echo.ask(Ping(1)) == 2
    seen.append(actor_system)


async def test_actor_system_was_stopped_after_the_test():
    [previous] = seen
    assert not previous.running


async def test_actor_system_runs_on_fake_clock_when_asked_for_both(actor_system, fake_clock, probe):
    assert isinstance(fake_clock, FakeClock) and actor_system.clock is fake_clock
    alarm = await actor_system.spawn(Alarm, probe.ref)
    await alarm.ask(Ping(0))
    await fake_clock.advance(59.0)
    await probe.expect_no_message()
    await fake_clock.advance(1.0)
    assert (await probe.expect(Later)).text == "wake up"


async def test_actor_system_is_on_the_real_clock_otherwise(actor_system):
    assert not isinstance(actor_system.clock, FakeClock)


async def test_probe_is_an_actor_in_actor_system(actor_system, probe):
    assert isinstance(probe, Probe)
    assert actor_system.lookup(probe.ref.path) is not None
    await probe.ref.tell(Ping(7))
    assert (await probe.expect(Ping)).n == 7


async def test_captured_events_are_the_events_of_the_test(actor_system, captured_events):
    echo = await actor_system.spawn(Echo, name="echo")
    await echo.stop()
    names = [(e["event"], e.get("path")) for e in captured_events]
    assert ("actor.stopped", echo.path) in names
    assert all(isinstance(e, dict) for e in captured_events)


async def test_fake_clock_alone_is_a_fresh_fake_clock(fake_clock):
    assert fake_clock.now() == 0.0 and fake_clock.pending == 0
"""

INI = """
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = function
filterwarnings =
    error
    ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning
"""


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_the_fixtures_serve_a_user_test_file(pytester: pytest.Pytester, mode: str) -> None:
    pytester.makeini(INI.format(mode=mode))
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=7)


def test_a_projects_own_fixture_of_the_same_name_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI.format(mode="auto"))
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture\ndef fake_clock():\n    return 'mine'\n"
    )
    pytester.makepyfile(test_user="def test_it(fake_clock):\n    assert fake_clock == 'mine'\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
