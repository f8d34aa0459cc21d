"""The `mycelium-actors` command line (API.md section 7), run as a real subprocess.

The trees it runs live in `cli_apps/`, which is the working directory (so the
default `--app-dir .` finds them). Waits read the process's stderr for a log
line, never sleep; each is bounded by `WAIT`, five times what the slowest needs.
"""

from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CLI = Path(sys.executable).parent / "mycelium-actors"
APPS = Path(__file__).parent / "cli_apps"
REPO = Path(__file__).parent.parent
WAIT = 10.0

# trees:tree in start order (a supervisor after its children); a shutdown goes in reverse
FIRST, SECOND, THIRD, FOURTH = "/app/first", "/app/second", "/app/group/third", "/app/group/fourth"
STARTED = [FIRST, SECOND, THIRD, FOURTH, "/app/group", "/app"]
STOPPED = [FOURTH, THIRD, "/app/group", SECOND, FIRST, "/app"]


class Running:
    """A `mycelium-actors run` process; its stderr (where it logs) is read line by line."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [str(CLI), "run", *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            encoding="utf-8",
        )
        self.lines: list[str] = []
        self._ended = False
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _next(self, deadline: float) -> str | None:
        if self._ended:
            return None
        try:
            line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"still running after {WAIT}s; stderr so far:\n{self.stderr}")
        if line is None:
            self._ended = True
        else:
            self.lines.append(line)
        return line

    def wait_for(self, text: str) -> str:
        """The next stderr line containing `text`."""
        deadline = time.monotonic() + WAIT
        while (line := self._next(deadline)) is not None:
            if text in line:
                return line
        pytest.fail(f"exited ({self.proc.wait()}) without logging {text!r}:\n{self.stderr}")

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def exit_code(self) -> int:
        """Wait for the exit (reading the rest of stderr first)."""
        deadline = time.monotonic() + WAIT
        while self._next(deadline) is not None:
            pass
        return self.proc.wait(WAIT)

    @property
    def stderr(self) -> str:
        return "\n".join(self.lines)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reader.join(WAIT)
        assert self.proc.stderr is not None
        self.proc.stderr.close()


Start = Callable[..., Running]


@pytest.fixture
def start() -> Iterator[Start]:
    """`start(target, *options, ready="cli.running")`: run it and wait for that line."""
    running: list[Running] = []

    def start(*args: str, ready: str = "cli.running", cwd: Path = APPS) -> Running:
        cli = Running(list(args), cwd)
        running.append(cli)
        cli.wait_for(ready)
        return cli

    yield start
    for cli in running:
        cli.close()


def invoke(*args: str, cwd: Path = APPS) -> subprocess.CompletedProcess[str]:
    """Run a command that ends by itself."""
    return subprocess.run(
        [str(CLI), *args], cwd=cwd, capture_output=True, encoding="utf-8", timeout=WAIT
    )


def stopped(lines: list[str]) -> list[str]:
    """The paths of the `actor.stopped` events in console log lines, in order."""
    return [m[1] for line in lines if (m := re.search(r"actor\.stopped .*\bpath=(\S+)", line))]


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


# -- run: signals ----------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_stops_the_tree_in_reverse_order_and_exits_0(
    start: Start, sig: signal.Signals
) -> None:
    cli = start("trees:tree")
    cli.send(sig)
    assert cli.exit_code() == 0
    assert stopped(cli.lines) == STOPPED


def test_a_signal_while_the_tree_starts_still_shuts_it_down_in_order(start: Start) -> None:
    cli = start("trees:slow_to_start", ready="slow.starting")  # on_start takes 1 s
    cli.send(signal.SIGINT)
    assert cli.exit_code() == 0
    assert stopped(cli.lines) == ["/app/slow", "/app/first", "/app"]
    assert "Traceback" not in cli.stderr


@pytest.mark.parametrize("target", ["slow_to_stop", "blocking_stop"])
def test_a_second_signal_during_a_slow_shutdown_exits_130_at_once(
    start: Start, target: str
) -> None:
    cli = start(f"trees:{target}")  # its on_stop takes a minute
    cli.send(signal.SIGINT)
    cli.wait_for("slow.stopping")
    cli.send(signal.SIGINT)
    assert cli.exit_code() == 130


@pytest.mark.parametrize("target", ["ignores_cancel", "stuck_on_thread"])
def test_sigterm_exits_0_even_when_an_actor_is_abandoned(start: Start, target: str) -> None:
    """An actor whose on_stop ignores cancellation (on the loop, or stuck in sync
    code on its own thread) is abandoned after shutdown + kill_grace; `run` still ends."""
    cli = start(f"trees:{target}")
    cli.send(signal.SIGTERM)
    cli.wait_for("actor.abandoned")
    assert cli.exit_code() == 0
    assert stopped(cli.lines)[-1] == "/app"
    assert "Task was destroyed" not in cli.stderr  # it was reported once, as abandoned


def test_a_tree_that_finishes_its_work_exits_0_by_itself() -> None:
    """auto_shutdown: the significant child stops itself, the root shuts down, and
    with no top-level actor left the system stops and `run` returns."""
    result = invoke("run", "trees:finishes")
    assert result.returncode == 0
    assert "supervisor.auto_shutdown" in result.stderr


# -- run: trees that cannot run --------------------------------------------------


@pytest.mark.parametrize(
    "target, reason",
    [
        ("gives_up", "/fragile gave up"),
        ("fails_to_start", "/app/db failed to start: ConnectionRefusedError: database is down"),
    ],
    ids=["its root gives up", "it fails to start"],
)
def test_a_tree_that_cannot_run_exits_1_with_a_one_line_reason(target: str, reason: str) -> None:
    result = invoke("run", f"trees:{target}")
    assert result.returncode == 1
    [line] = error_lines(result.stderr)
    assert reason in line


# -- run: options ------------------------------------------------------------------


def test_json_logs_are_one_object_per_line_with_lifecycle_events(start: Start) -> None:
    cli = start("trees:tree", "--log-format", "json")
    cli.send(signal.SIGINT)
    assert cli.exit_code() == 0
    events = [json.loads(line) for line in cli.lines]
    assert [e["path"] for e in events if e["event"] == "actor.started"] == STARTED
    assert [e["path"] for e in events if e["event"] == "actor.stopped"] == STOPPED


def test_factory_calls_the_function_to_build_the_tree(start: Start) -> None:
    cli = start("trees:make_tree", "--factory")
    assert "path=/built/made" in cli.stderr
    cli.send(signal.SIGINT)
    assert cli.exit_code() == 0


@pytest.mark.parametrize(
    "options, poke",
    [(["--status-every", "0.1"], None), ([], signal.SIGUSR1)],
    ids=["--status-every", "SIGUSR1"],
)
def test_the_live_tree_is_printed_on_demand(
    start: Start, options: list[str], poke: signal.Signals | None
) -> None:
    cli = start("trees:tree", *options)
    for _ in range(2):
        if poke is not None:
            cli.send(poke)
        assert "running" in cli.wait_for("/app  supervisor")
        assert "running  restarts=0" in cli.wait_for("/app/group/fourth  actor")


def test_the_market_demo_tree_runs_until_sigint(start: Start) -> None:
    cli = start("supervisors.market:tree", cwd=REPO)
    cli.wait_for("actor.restarted")  # the normalizer, after a malformed tick
    cli.send(signal.SIGINT)
    assert cli.exit_code() == 0


# -- loading the target --------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "tree"])
@pytest.mark.parametrize(
    "args, says",
    [
        (["trees"], "must be 'module:attr'"),
        (["trees:"], "must be 'module:attr'"),
        (["no_such_module:tree"], "module 'no_such_module' (looked in --app-dir '.' and"),
        (["trees:no_such_tree"], "'no_such_tree'"),
        (["trees:not_a_tree"], "is a str, not a Supervisor tree"),
        (["trees:answer"], "is an int, not a Supervisor tree"),
        (["trees:make_tree"], "(use --factory for a function that builds it)"),
        (["trees:Worker"], "is an Actor class, not a Supervisor tree (wrap it: Supervisor("),
        (["trees:tree", "--factory"], "not callable"),
    ],
    ids=[
        "no colon",
        "no attribute",
        "missing module",
        "missing attribute",
        "not a tree",
        "an int",
        "a factory without --factory",
        "an Actor class",
        "--factory on a tree",
    ],
)
def test_a_bad_target_prints_one_error_line_and_exits_2(
    command: str, args: list[str], says: str
) -> None:
    result = invoke(command, *args)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and says in line
    assert result.stdout == ""


@pytest.mark.parametrize(
    "module, error",
    [
        ("explodes", "RuntimeError: broken at import time"),
        ("needs_missing", "ModuleNotFoundError: No module named 'no_such_dependency'"),
    ],
)
def test_an_error_inside_the_imported_module_shows_its_traceback_and_exits_2(
    module: str, error: str
) -> None:
    result = invoke("run", f"{module}:tree")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and f"{module}.py" in result.stderr
    assert error in result.stderr


@pytest.mark.parametrize("every", ["0", "-1", "nan", "inf"])
def test_status_every_must_be_a_positive_finite_number_of_seconds(every: str) -> None:
    result = invoke("run", "trees:tree", "--status-every", every)
    assert result.returncode == 2
    [error] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert "'--status-every'" in error and "positive" in error
    assert "actor.started" not in result.stderr


def test_app_dir_is_where_the_target_module_is_imported_from(tmp_path: Path) -> None:
    assert invoke("tree", "trees:tree", cwd=tmp_path).returncode == 2
    assert invoke("tree", "trees:tree", "--app-dir", str(APPS), cwd=tmp_path).returncode == 0


# -- tree --------------------------------------------------------------------------


def test_tree_prints_names_strategies_and_restart_types_without_starting() -> None:
    result = invoke("tree", "trees:tree")
    assert result.returncode == 0
    outline = []
    for line in result.stdout.splitlines():
        name, _, strategy_or_restart, *_ = (text := line.lstrip("│├└─ ")).split()
        outline.append(((len(line) - len(text)) // 4, name, strategy_or_restart))
    assert outline == [
        (0, "app", "one_for_one"),
        (1, "first", "permanent"),
        (1, "second", "transient"),
        (1, "group", "rest_for_one"),
        (2, "third", "permanent"),
        (2, "fourth", "temporary"),
    ]
    assert "actor.started" not in result.stderr


def test_tree_shows_auto_shutdown_and_significant_children() -> None:
    lines = invoke("tree", "trees:finishes").stdout.splitlines()
    assert "auto_shutdown=any_significant" in lines[0]
    assert [("significant" in line) for line in lines[1:]] == [False, True]


def test_tree_on_a_terminal_draws_a_rich_tree_with_the_same_labels() -> None:
    from rich.console import Console

    from mycelium_actors.render import render_spec, rich_spec
    from supervisors.bank import tree

    console = Console(record=True, width=200, color_system=None)
    console.print(rich_spec(tree))
    drawn = console.export_text()
    for line in render_spec(tree).splitlines():
        assert line.lstrip("│├└─ ") in drawn
