"""The `mycelium-actors` command line (API.md section 7), run as a real subprocess.

The trees it runs live in `cli_apps/`, which is the working directory (so the
default `--app-dir .` finds them). Waits read the process's stderr for a log
line, never sleep; each is bounded by `WAIT`, five times what the slowest needs.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from certs import Certs
from prometheus_client.parser import text_string_to_metric_families

CLI = Path(sys.executable).parent / "mycelium-actors"
APPS = Path(__file__).parent / "cli_apps"
REPO = Path(__file__).parent.parent
WAIT = 10.0

# trees:tree in start order (a supervisor after its children); a shutdown goes in reverse
FIRST, SECOND, THIRD, FOURTH = "/app/first", "/app/second", "/app/group/third", "/app/group/fourth"
STARTED = [FIRST, SECOND, THIRD, FOURTH, "/app/group", "/app"]
STOPPED = [FOURTH, THIRD, "/app/group", SECOND, FIRST, "/app"]
TREE = [(path, "supervisor" if path in ("/app", "/app/group") else "actor") for path in STARTED]


class Running:
    """A `mycelium-actors run` process; its stderr (where it logs) is read line by line."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [str(CLI), "run", *args],
            cwd=cwd,
            env=None if env is None else os.environ | env,
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

    def start(
        *args: str, ready: str = "cli.running", cwd: Path = APPS, env: dict[str, str] | None = None
    ) -> Running:
        cli = Running(list(args), cwd, env)
        running.append(cli)
        cli.wait_for(ready)
        return cli

    yield start
    for cli in running:
        cli.close()


def invoke(
    *args: str, cwd: Path = APPS, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command that ends by itself (with `env` added to the environment)."""
    return subprocess.run(
        [str(CLI), *args],
        cwd=cwd,
        env=None if env is None else os.environ | env,
        capture_output=True,
        encoding="utf-8",
        timeout=WAIT,
    )


def stopped(lines: list[str]) -> list[str]:
    """The paths of the `actor.stopped` events in console log lines, in order."""
    return [m[1] for line in lines if (m := re.search(r"actor\.stopped .*\bpath=(\S+)", line))]


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


# -- --loop ----------------------------------------------------------------------


def without_uvloop(tmp_path: Path) -> dict[str, str]:
    """An environment where `import uvloop` fails as it does where uvloop is not
    installed: a `uvloop.py` raising ImportError comes first on the import path."""
    hiding = tmp_path / "hiding"
    hiding.mkdir()
    (hiding / "uvloop.py").write_text("raise ImportError(\"No module named 'uvloop'\")\n")
    return {"PYTHONPATH": str(hiding)}


@pytest.mark.parametrize(
    ("options", "installed", "runs_on"),
    [
        (["--loop", "asyncio"], True, "asyncio"),
        (["--loop", "uvloop"], True, "uvloop"),
        ([], True, "uvloop"),  # auto, the default, picks uvloop when it imports
        ([], False, "asyncio"),  # and asyncio's own loop when it does not
    ],
    ids=["asyncio", "uvloop", "auto with uvloop", "auto without uvloop"],
)
def test_run_starts_the_tree_on_the_loop_asked_for_and_logs_it(
    start: Start, tmp_path: Path, options: list[str], installed: bool, runs_on: str
) -> None:
    cli = start("trees:tree", *options, env=None if installed else without_uvloop(tmp_path))
    assert re.search(rf"\bloop={runs_on}\b", cli.lines[-1]), cli.lines[-1]
    cli.send(signal.SIGTERM)
    assert cli.exit_code() == 0
    assert stopped(cli.lines) == STOPPED


@pytest.mark.parametrize("command", [["run", "trees:tree"], ["status", "tcp://127.0.0.1:1"]])
def test_loop_uvloop_without_uvloop_exits_2_with_one_line(
    command: list[str], tmp_path: Path
) -> None:
    result = invoke(*command, "--loop", "uvloop", env=without_uvloop(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: --loop uvloop: uvloop cannot be imported (No module named 'uvloop'); "
        "install it with pip install 'mycelium-actors[uvloop]'"
    ]


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


def test_a_signal_with_messages_queued_says_what_the_shutdown_waits_for(start: Start) -> None:
    cli = start("trees:busy")
    cli.send(signal.SIGINT)
    assert cli.exit_code() == 0
    [stopping] = [line for line in cli.lines if "actor.stopping" in line]
    queued = re.search(r"\bqueued=(\d+)", stopping)
    assert "path=/app/busy" in stopping and "shutdown=0.3" in stopping
    assert queued is not None and 10 < int(queued[1]) < 100
    # What the 0.3 s did not serve was dropped: 10 dead letters logged, then the summary
    # (due 10 s later) before the process ends.
    assert "summary=True" in cli.stderr


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


@pytest.mark.parametrize("log_format", ["console", "json"])
@pytest.mark.parametrize("level", ["info", "debug"])
def test_an_expected_crash_is_one_line_and_its_traceback_is_for_debug(
    start: Start, log_format: str, level: str
) -> None:
    cli = start(
        "trees:crashes_once", "--log-format", log_format, "--log-level", level, ready="restarted"
    )
    [crash] = [line for line in cli.lines if "actor.crashed" in line]
    cli.send(signal.SIGINT)
    assert cli.exit_code() == 0
    fields = {"path": "/app/crasher", "exc_type": "PermissionError", "restarts": 0}
    error = "login refused (18 characters)"
    if log_format == "json":
        event = json.loads(crash)
        assert {k: event[k] for k in fields} == fields and event["error"] == error
        assert ("exception" in event) == (level == "debug")
    else:
        for key, value in fields.items():
            assert f"{key}={value}" in crash
        assert f"error='{error}'" in crash
        assert ("Traceback" in cli.stderr) == (level == "debug")
    assert "hunter2" not in cli.stderr  # local variables never (rich is installed here)


def test_a_handler_that_blocks_the_loop_is_named_in_a_loop_stalled_warning(start: Start) -> None:
    cli = start("trees:blocks_the_loop", ready="loop.stalled")  # after 1 s (the default)
    stalled = cli.lines[-1]
    assert "[warning" in stalled
    for field in ("path=/app/blocker", "message_type=Stall", "blocked_for="):
        assert field in stalled
    assert "path=/app/blocker" in cli.wait_for("loop.resumed")
    cli.send(signal.SIGINT)
    assert cli.exit_code() == 0


def test_log_level_debug_shows_more_than_info(start: Start) -> None:
    shown = {}
    for level in ("info", "debug"):
        cli = start("trees:tree", "--log-level", level)
        cli.send(signal.SIGINT)
        assert cli.exit_code() == 0
        shown[level] = cli.lines
    assert not any("[debug" in line for line in shown["info"])
    [options] = [line for line in shown["debug"] if "cli.options" in line]
    assert "[debug" in options and "target=trees:tree" in options


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


# -- run --listen, and status ------------------------------------------------------

SECRET = {"NODE_SECRET": "s3cret"}


def listening_at(cli: Running) -> str:
    """The bound address from `node.listening`, checked to come before the tree starts."""
    [at] = [n for n, line in enumerate(cli.lines) if "node.listening" in line]
    assert not any("actor.started" in line for line in cli.lines[:at])
    match = re.search(r"\bpath=(\S+)", cli.lines[at])
    assert match is not None
    return match[1]


@pytest.fixture(params=["unix", "tcp"])
def listen(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a node listens: a socket file in tmp_path, or TCP port 0."""
    return f"unix://{tmp_path}/node.sock" if request.param == "unix" else "tcp://127.0.0.1:0"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_status_prints_the_live_tree_of_a_listening_node(
    start: Start, listen: str, loop: str
) -> None:
    cli = start("trees:tree", "--listen", listen)
    address = listening_at(cli)
    assert address.startswith(listen.removesuffix("0"))
    result = invoke("status", address, "--loop", loop)
    assert result.returncode == 0, result.stderr
    drawn = [line.lstrip("│├└─ ").split("  ")[:3] for line in result.stdout.splitlines()]
    assert sorted(drawn) == sorted([path, kind, "running"] for path, kind in TREE)
    cli.send(signal.SIGTERM)
    assert cli.exit_code() == 0


def test_run_serves_prometheus_metrics_on_the_logged_url(start: Start) -> None:
    cli = start("trees:tree", "--metrics-port", "0")
    [line] = [line for line in cli.lines if "metrics.listening" in line]
    match = re.search(r"\burl=(http://127\.0\.0\.1:\d+/metrics)", line)
    assert match is not None, line
    with urllib.request.urlopen(match[1], timeout=WAIT) as response:
        text = response.read().decode()
    handled = {
        sample.labels["path"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mycelium_messages_handled_total"
    }
    assert sorted(handled) == sorted(path for path, _ in TREE)
    cli.send(signal.SIGTERM)
    assert cli.exit_code() == 0


def test_run_with_a_metrics_port_in_use_exits_1_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = invoke("run", "trees:tree", "--metrics-port", str(taken.getsockname()[1]))
    assert result.returncode == 1
    assert [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "actor.started" not in result.stderr


def ticker_of(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """The /clock/ticker node of a `trees:ticking` tree as JSON."""
    [root] = nodes
    [ticker] = root["children"]
    assert ticker["path"] == "/clock/ticker"
    return ticker


def test_status_json_carries_handled_and_p99(start: Start, tmp_path: Path) -> None:
    cli = start("trees:ticking", "--listen", f"unix://{tmp_path}/node.sock")
    address = listening_at(cli)
    figures = []
    for _ in range(2):
        result = invoke("status", address, "--json")
        assert result.returncode == 0, result.stderr
        figures.append(ticker_of(json.loads(result.stdout)))
        time.sleep(0.1)  # ten beats apart (a growing count is all that is checked)
    first, second = figures
    assert 0 < first["handled"] < second["handled"]
    assert 0 < second["handler_p99"] <= 10.0
    assert json.loads(invoke("status", address, "--json").stdout)[0]["handled"] == 0  # supervisor
    cli.send(signal.SIGTERM)
    assert cli.exit_code() == 0


@pytest.mark.parametrize("as_json", [False, True])
def test_status_watch_redraws_until_sigint(start: Start, tmp_path: Path, as_json: bool) -> None:
    cli = start("trees:ticking", "--listen", f"unix://{tmp_path}/node.sock")
    address = listening_at(cli)
    args = [str(CLI), "status", address, "--watch", "--interval", "0.2"]
    drawings: list[str] = []
    with subprocess.Popen(
        [*args, *(["--json"] if as_json else [])],
        cwd=APPS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        encoding="utf-8",
    ) as watch:
        assert watch.stdout is not None and watch.stderr is not None
        try:
            deadline = time.monotonic() + WAIT
            while len(drawings) < 2 and time.monotonic() < deadline:
                line = watch.stdout.readline()
                if as_json or line.startswith(address):  # a JSON document, or a header
                    drawings.append(line if as_json else watch.stdout.readline())
            assert len(drawings) == 2, drawings
            watch.send_signal(signal.SIGINT)
            assert watch.wait(WAIT) == 0, watch.stderr.read()
        finally:
            if watch.poll() is None:
                watch.kill()
    if as_json:
        counts = [ticker_of(json.loads(d))["handled"] for d in drawings]
        assert counts[0] < counts[1]
    else:
        assert all(d.startswith("/clock  supervisor  running") for d in drawings), drawings
    cli.send(signal.SIGTERM)
    assert cli.exit_code() == 0


def test_status_json_prints_the_live_tree_as_json(start: Start, tmp_path: Path) -> None:
    cli = start("trees:tree", "--listen", f"unix://{tmp_path}/node.sock")
    result = invoke("status", listening_at(cli), "--json")
    assert result.returncode == 0, result.stderr

    def flat(nodes: list[dict[str, object]]) -> list[tuple[object, object, object]]:
        return [
            item
            for node in nodes
            for item in [(node["path"], node["kind"], node["status"]), *flat(node["children"])]  # type: ignore[arg-type]
        ]

    assert sorted(flat(json.loads(result.stdout))) == sorted(
        (path, kind, "running") for path, kind in TREE
    )
    cli.send(signal.SIGTERM)
    assert cli.exit_code() == 0


@pytest.mark.parametrize(
    "option, says",
    [("--listen", "nats://host:port"), ("--log-format", "JSON"), ("--log-level", "debug adds")],
)
def test_run_help_explains_the_options(option: str, says: str) -> None:
    result = invoke("run", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())  # click wraps the help
    assert option in text
    described = text[text.index(option) :]
    assert says in described[: described.index(" --", 2)]


def test_sigterm_removes_the_socket_file(start: Start, tmp_path: Path) -> None:
    sock = tmp_path / "node.sock"
    cli = start("trees:tree", "--listen", f"unix://{sock}")
    assert sock.exists()
    cli.send(signal.SIGTERM)
    assert cli.exit_code() == 0
    assert not sock.exists()


@pytest.mark.parametrize(
    "env, says",
    [({}, "a secret is required"), ({"NODE_SECRET": "wrong"}, "did not prove")],
    ids=["no secret", "a wrong secret"],
)
def test_a_node_with_a_secret_shows_its_tree_only_to_those_who_know_it(
    start: Start, tmp_path: Path, env: dict[str, str], says: str
) -> None:
    cli = start(
        "trees:tree",
        "--listen",
        f"unix://{tmp_path}/node.sock",
        "--secret-env",
        "NODE_SECRET",
        env=SECRET,
    )
    address = listening_at(cli)
    assert invoke("status", address, "--secret-env", "NODE_SECRET", env=SECRET).returncode == 0
    options = ["--secret-env", "NODE_SECRET"] if env else []
    refused = invoke("status", address, *options, env=env)
    assert refused.returncode == 1
    [line] = refused.stderr.splitlines()
    assert line.startswith("error: ") and says in line
    assert refused.stdout == ""


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """trustme PEM files: ca, node-cert/-key (127.0.0.1), client-cert/-key, and
    other-ca (a CA that signed neither)."""
    folder = tmp_path_factory.mktemp("certs")
    files = {name: str(path) for name, path in Certs().write(folder).items()}
    files["other-ca"] = str(Certs().write(tmp_path_factory.mktemp("other"))["ca"])
    return files


def tls_args(pem: dict[str, str], *pairs: str) -> list[str]:
    """`--tls-cert node-cert ...` from "cert=node-cert" pairs."""
    return [
        arg for pair in pairs for arg in (f"--tls-{pair.split('=')[0]}", pem[pair.split("=")[1]])
    ]


@pytest.mark.parametrize(
    "status_tls, says",
    [
        (["ca=ca"], None),
        ([], "closed by the peer before it sent anything"),
        (["ca=other-ca"], "certificate was refused"),
    ],
    ids=["our CA", "no TLS", "another CA"],
)
def test_a_tls_node_shows_its_tree_to_a_status_that_trusts_its_ca(
    start: Start, pem: dict[str, str], status_tls: list[str], says: str | None
) -> None:
    cli = start(
        "trees:tree",
        "--listen",
        "tcp://127.0.0.1:0",
        *tls_args(pem, "cert=node-cert", "key=node-key"),
    )
    result = invoke("status", listening_at(cli), *tls_args(pem, *status_tls))
    if says is None:
        assert result.returncode == 0, result.stderr
        assert "/app/first" in result.stdout
    else:
        assert result.returncode == 1
        [line] = result.stderr.splitlines()
        assert line.startswith("error: cannot connect to tcp://") and says in line


@pytest.mark.parametrize("with_cert", [True, False], ids=["client cert", "none"])
def test_mutual_tls_lets_in_a_status_with_a_client_certificate(
    start: Start, pem: dict[str, str], with_cert: bool
) -> None:
    node = ("cert=node-cert", "key=node-key", "ca=ca", "client-ca=ca")
    cli = start("trees:tree", "--listen", "tcp://127.0.0.1:0", *tls_args(pem, *node))
    mine = ("cert=client-cert", "key=client-key") if with_cert else ()
    result = invoke("status", listening_at(cli), *tls_args(pem, "ca=ca", *mine))
    assert result.returncode == (0 if with_cert else 1), result.stderr
    if not with_cert:
        assert "client certificate" in result.stderr


@pytest.mark.parametrize(
    "command, pairs, says",
    [
        (["run", "trees:tree"], ["key=node-key"], "--tls-key needs --tls-cert"),
        (["run", "trees:tree"], ["client-ca=ca"], "--tls-client-ca needs --tls-cert"),
        (["status", "tcp://127.0.0.1:1"], ["cert=missing"], "--tls-cert"),
        (["run", "trees:tree"], ["cert=ca"], "--tls-cert"),  # a CA certificate has no key
        (["status", "tcp://127.0.0.1:1"], ["ca=node-key"], "--tls-ca"),  # not a certificate
    ],
    ids=["key alone", "client CA alone", "a missing file", "no key", "not a certificate"],
)
def test_certificate_options_that_do_not_load_exit_2_with_one_line(
    pem: dict[str, str], tmp_path: Path, command: list[str], pairs: list[str], says: str
) -> None:
    files = pem | {"missing": str(tmp_path / "missing.pem")}
    result = invoke(*command, *tls_args(files, *pairs))
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and says in line


def test_tls_on_a_unix_socket_exits_1_with_one_line(pem: dict[str, str], tmp_path: Path) -> None:
    listen = f"unix://{tmp_path}/node.sock"
    result = invoke(
        "run", "trees:tree", "--listen", listen, *tls_args(pem, "cert=node-cert", "key=node-key")
    )
    assert result.returncode == 1
    [line] = error_lines(result.stderr)
    assert "TLS is for tcp://" in line


@pytest.fixture
def port() -> Iterator[int]:
    """A TCP port bound but not listening: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("address", ["unix://{tmp}/gone.sock", "tcp://127.0.0.1:{port}"])
def test_status_of_a_dead_address_exits_1_with_one_line(
    address: str, tmp_path: Path, port: int
) -> None:
    address = address.format(tmp=tmp_path, port=port)
    result = invoke("status", address)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: cannot connect to {address}")
    assert result.stdout == ""


@pytest.mark.parametrize("command", [["run", "trees:tree"], ["status", "tcp://127.0.0.1:1"]])
@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_secret_env_naming_an_unset_or_empty_variable_exits_2(
    command: list[str], value: str | None
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NODE_SECRET"}
    if value is not None:
        env["NODE_SECRET"] = value
    result = subprocess.run(
        [str(CLI), *command, "--secret-env", "NODE_SECRET"],
        cwd=APPS,
        env=env,
        capture_output=True,
        encoding="utf-8",
        timeout=WAIT,
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and "NODE_SECRET" in line


@pytest.mark.parametrize(
    "listen, says",
    [
        ("unix:///tmp/" + "x" * 200 + ".sock", "longer than"),
        ("tcp://127.0.0.1:{port}", "address already in use"),
    ],
    ids=["a socket path too long", "a port in use"],
)
def test_a_bind_failure_exits_1_with_one_line_before_the_tree_starts(
    listen: str, says: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        result = invoke("run", "trees:tree", "--listen", listen.format(port=taken.getsockname()[1]))
    assert result.returncode == 1
    [line] = error_lines(result.stderr)
    assert says in line
    assert "actor.started" not in result.stderr


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

    from mycelium_actors.cli.render import render_spec, rich_spec
    from supervisors.bank import tree

    console = Console(record=True, width=200, color_system=None)
    console.print(rich_spec(tree))
    drawn = console.export_text()
    for line in render_spec(tree).splitlines():
        assert line.lstrip("│├└─ ") in drawn
