"""Where events go: stdlib `logging` while structlog has its defaults, structlog once
configured (capture_logs included). A library is quiet and never writes to stdout."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from actors import Boom, Crash, LogHello, Worker

from mycelium_actors import ActorSystem, logs
from mycelium_actors.testing import capture_events, events_named, eventually

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def unconfigured() -> Iterator[None]:
    """structlog on its builtin defaults for the test; the previous config after."""
    configured, saved = structlog.is_configured(), structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
    if configured:
        structlog.configure(**saved)


def records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "mycelium_actors" and r.event == event]


async def crash_and_log(system: ActorSystem) -> str:
    """An actor logs `hello` through its context, then crashes; returns its path."""
    ref = await system.spawn(Worker)
    await ref.ask(LogHello())
    await ref.tell(Boom("expected"))
    await eventually(lambda: not ref.is_alive)
    return ref.path


@pytest.mark.usefixtures("unconfigured")
async def test_unconfigured_events_go_to_stdlib_logging_not_stdout(
    system: ActorSystem, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.INFO, logger="mycelium_actors")
    path = await crash_and_log(system)
    [hello] = records(caplog, "hello")
    assert (hello.levelno, hello.path, hello.getMessage()) == (
        logging.INFO,
        path,
        f"hello path={path}",
    )
    [crash] = records(caplog, "actor.crashed")
    assert (crash.levelno, crash.path, crash.during) == (logging.ERROR, path, "handler")
    assert crash.exc_info is not None and isinstance(crash.exc_info[1], Crash)
    assert capsys.readouterr().out == ""


@pytest.mark.usefixtures("unconfigured")
async def test_capture_logs_captures_while_active_and_stdlib_gets_events_after(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mycelium_actors")
    with capture_events() as events:
        captured = await crash_and_log(system)
    assert events_named(events, "actor.crashed", path=captured)
    assert not records(caplog, "actor.crashed")
    assert structlog.is_configured()  # capture_logs leaves the flag set: not a configuration
    after = await crash_and_log(system)
    assert [r.path for r in records(caplog, "actor.crashed")] == [after]
    assert not events_named(events, "actor.crashed", path=after)


@pytest.mark.usefixtures("unconfigured")
async def test_a_configuration_made_after_the_system_started_is_honoured(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[dict[str, Any]] = []

    def keep(logger: Any, method: str, event: dict[str, Any]) -> Any:
        seen.append(event)
        raise structlog.DropEvent

    await crash_and_log(system)  # its loggers are bound while structlog is unconfigured
    structlog.configure(processors=[keep])
    path = await crash_and_log(system)
    assert [e["path"] for e in seen if e["event"] == "actor.crashed"] == [path]
    assert len(records(caplog, "actor.crashed")) == 1  # the first crash only


README_SNIPPET = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


@pytest.mark.parametrize(
    "program, prints, crashes",
    [
        (["-c", README_SNIPPET[1] if README_SNIPPET else ""], "8\n", 0),
        (["examples/getting_started/main.py"], "alice: stopped for good\n", 3),
    ],
    ids=["README snippet", "getting_started"],
)
def test_an_unconfigured_program_shows_only_one_stderr_line_per_crash(
    program: list[str], prints: str, crashes: int
) -> None:
    proc = subprocess.run(
        [sys.executable, *program], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert prints in proc.stdout and "actor." not in proc.stdout  # only the program's prints
    lines = proc.stderr.splitlines()  # warnings and errors only, one line each: no traceback
    assert len(lines) == crashes, proc.stderr
    # a crash, or a business error resumed under resume_on: one line each
    assert all(line.startswith(("actor.crashed ", "actor.resumed ")) for line in lines)


class CountedStr(Exception):
    """A crash that counts how often its text is made."""

    made = 0

    def __str__(self) -> str:
        type(self).made += 1
        return "counted"


@pytest.mark.usefixtures("unconfigured")
async def test_a_level_that_goes_nowhere_builds_no_event(
    system: ActorSystem, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL, logger="mycelium_actors")
    system.log_crash("/nobody", CountedStr(), during="handler")  # stdlib drops errors here
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    system.log_crash("/nobody", CountedStr(), during="handler")  # structlog drops them too
    assert CountedStr.made == 0
    events: list[dict[str, Any]] = []
    system.events.subscribe(events.append)  # someone listens: the event is whole
    system.log_crash("/somebody", CountedStr(), during="handler")
    [event] = events
    assert (event["path"], event["error"], CountedStr.made) == ("/somebody", "counted", 1)


@pytest.mark.usefixtures("unconfigured")
@pytest.mark.parametrize("structlog_level", [None, logging.WARNING])
async def test_enabled_follows_the_route_an_event_takes(
    system: ActorSystem, caplog: pytest.LogCaptureFixture, structlog_level: int | None
) -> None:
    caplog.set_level(
        logging.WARNING if structlog_level is None else logging.DEBUG, "mycelium_actors"
    )
    if structlog_level is not None:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(structlog_level))
    log = logs.get_logger(system=system.name)
    assert [log.enabled(m) for m in ("debug", "info", "warning", "error")] == [
        False,
        False,
        True,
        True,
    ]
