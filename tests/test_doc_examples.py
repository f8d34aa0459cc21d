"""The code behind docs/: every example runs and shows what the pages say, and the
snippets on the pages are still verbatim copies of the files they name."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from certs import Certs
from click.testing import CliRunner

from examples.docs import (
    backoff,
    context_tour,
    discovery,
    events,
    handlers,
    import_job,
    intensity,
    lifecycle,
    mailboxes,
    pool,
    refs,
    remote_tour,
    shutdown,
    supervision_tree,
    two_processes,
)

# The testing page's tests and fixtures run here as they are (pytest collects them).
from examples.docs.testing_example import (  # noqa: F401
    clock,
    fake_system,
    system,
    test_a_crash_is_logged_and_the_child_restarted,
    test_a_reminder_fires_after_its_delay,
    test_ask_timeouts_follow_the_fake_clock,
    test_with_the_plugin_fixtures,
)
from mycelium_actors import ActorSystem
from mycelium_actors.cli import main as cli_main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
EXAMPLES = sorted((ROOT / "examples" / "docs").glob("*.py")) + sorted(
    (ROOT / "examples" / "getting_started").glob("*.py")
)

# -- the pages cannot drift from the code -------------------------------------------

# The pages written with these examples; the conventions below (every non-trivial
# block marked, a caption naming the file, links that resolve) are checked on them.
# Marked blocks on any page in docs/ are checked for drift.
OUR_PAGES = {
    "index.md",
    "getting-started.md",
    "concepts.md",
    "supervision.md",
    "design.md",
    "testing.md",
    "cli.md",
    "remote.md",
    "contracts.md",
}
MARKER = re.compile(r"^<!-- from (\S+) -->$")
CAPTION = re.compile(r"^\*File: \[([^\]]+)\]\(([^)]+)\)\*$")
TRIVIAL_LINES = 5  # an unmarked ```python block may be at most this long


def python_blocks() -> list[tuple[str, int, str | None, str, str | None]]:
    """(page, line, marked file, code, caption file) for every ```python block."""
    blocks = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        i = 0
        while i < len(lines):
            if lines[i].strip() == "```python":
                start = i
                j = i + 1
                while lines[j].strip() != "```":
                    j += 1
                code = "\n".join(lines[start + 1 : j])
                before = lines[start - 1] if start > 0 else ""
                marked = MARKER.match(before)
                after = lines[j + 1] if j + 1 < len(lines) else ""
                caption = CAPTION.match(after)
                blocks.append(
                    (
                        page.name,
                        start + 1,
                        marked.group(1) if marked else None,
                        code,
                        caption.group(1) if caption else None,
                    )
                )
                i = j
            i += 1
    return blocks


BLOCKS = python_blocks()


def test_the_pages_have_python_blocks() -> None:
    assert {p.name for p in PAGES} >= OUR_PAGES
    assert sum(1 for b in BLOCKS if b[2]) >= 20


@pytest.mark.parametrize(
    ("page", "line", "source", "code", "caption"),
    BLOCKS,
    ids=[f"{b[0]}:{b[1]}" for b in BLOCKS],
)
def test_a_snippet_is_a_verbatim_copy_of_the_file_it_names(
    page: str, line: int, source: str | None, code: str, caption: str | None
) -> None:
    ours = page in OUR_PAGES
    if source is None:
        assert not ours or len(code.splitlines()) <= TRIVIAL_LINES, (
            f"{page}:{line}: a non-trivial snippet needs a '<!-- from path -->' line above it"
        )
        return
    path = ROOT / source
    assert path.is_file(), f"{page}:{line}: {source} does not exist"
    assert code in path.read_text(), f"{page}:{line}: the snippet is not in {source} verbatim"
    if ours:
        assert caption == source, f"{page}:{line}: the caption under the snippet must name {source}"


def test_every_marker_sits_right_above_a_python_block() -> None:
    for page in PAGES:
        lines = page.read_text().splitlines()
        for n, text in enumerate(lines):
            if MARKER.match(text):
                assert lines[n + 1].strip() == "```python", f"{page.name}:{n + 1}"


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"\s", "-", text)


def _anchors(page: Path) -> set[str]:
    return {
        _slug(line.lstrip("#")) for line in page.read_text().splitlines() if line.startswith("#")
    }


OWNED_ELSEWHERE = {"executors.md", "performance.md"}  # other people's pages
OURS = [p for p in PAGES if p.name in OUR_PAGES]


@pytest.mark.parametrize("page", OURS, ids=[p.name for p in OURS])
def test_local_links_resolve(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if file.name in OWNED_ELSEWHERE and file.parent == DOCS and not file.exists():
            continue  # not written yet
        assert file.exists(), f"{page.name}: broken link {target}"
        if anchor:
            assert anchor in _anchors(file), f"{page.name}: no heading for #{anchor}"


@pytest.mark.parametrize("module", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_module_is_named_on_a_page(module: Path) -> None:
    if module.name == "__init__.py":
        return
    named = "".join(p.read_text() for p in PAGES)
    assert module.relative_to(ROOT).as_posix() in named


# -- getting-started.md -------------------------------------------------------------

GETTING_STARTED = ROOT / "examples" / "getting_started"


@pytest.mark.parametrize("name", ["bank.py", "main.py"])
def test_getting_started_shows_whole_files(name: str) -> None:
    """A reader copies each snippet into a file of that name: it must be all of it."""
    source = f"examples/getting_started/{name}"
    [code] = [b[3] for b in BLOCKS if b[0] == "getting-started.md" and b[2] == source]
    assert code + "\n" == (ROOT / source).read_text()


def test_getting_started_main_prints_what_the_page_shows() -> None:
    """`python main.py` in the folder of the two files, as the page says."""
    proc = subprocess.run(
        [sys.executable, "main.py"], cwd=GETTING_STARTED, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert f"$ python main.py\n{proc.stdout}```" in (DOCS / "getting-started.md").read_text()
    assert "alice after a refusal: 100\nalice after a crash: 0\n" in proc.stdout


# -- concepts.md --------------------------------------------------------------------


async def test_dispatch_rules() -> None:
    result = await handlers.main()
    assert result["replies"] == [
        "payment of 5",
        "payment of 2",  # Refund -> the Payment handler (closest base)
        "event",  # Opened -> the Event handler
        "pong",
        "pause",
        "resume",
        "unhandled",
        "fallback for str",
        "payment of 1",
    ]
    assert result["dead_letters"] == 1
    assert result["overrides"] == ["overridden", "payment of 1"]


async def test_refs_tour() -> None:
    assert await refs.main() == {
        "total": 3,
        "timed_out": True,
        "from_thread": 13,
        "reset": 100,
        "stopped": True,
        "name": "counter",
    }


@pytest.mark.parametrize(
    ("policy", "third", "handled", "dead_letters"),
    [
        ("block", "waiting", ["a", "b", "c"], 0),
        ("drop_new", "returned", ["a", "b"], 1),
        ("drop_old", "returned", ["b", "c"], 1),
        ("fail", "raised MailboxFull", ["a", "b"], 0),
    ],
)
async def test_overflow_policies_table(
    policy: str, third: str, handled: list[str], dead_letters: int
) -> None:
    assert await mailboxes.overflow(policy) == {
        "third": third,
        "handled": handled,
        "dead_letters": dead_letters,
    }


async def test_tell_nowait_raises_under_block_when_full() -> None:
    assert await mailboxes.tell_nowait_when_full() == "MailboxFull"


async def test_context_tour() -> None:
    result = await context_tour.main()
    assert result["beats"] >= 3  # every 10 ms until the 50 ms deadline
    assert result["ended"] == ("/manager/worker", "normal")
    assert result["worker"] == "/manager/worker"
    assert result["while_fetching"] == []
    ok, missing = result["results"]
    assert ok == "OK"
    assert isinstance(missing, KeyError)


async def test_discovery_and_publish() -> None:
    assert await discovery.main() == {
        "traders": ["/desk/ann", "/desk/ben", "/solo"],
        "cautious": ["/desk/ben"],
        "listeners": ["/desk/ann", "/desk/ben", "/solo"],
        "delivered": 3,
        "after_stop": 2,
        "everyone": ["/desk/ann", "/desk/ben", "/desk/cal"],
    }


async def test_lifecycle_event_sequence() -> None:
    events = await lifecycle.main()
    assert events == [
        ("actor.started", "/root/f", ""),
        ("actor.started", "/root", ""),
        ("actor.crashed", "/root/f", "handler"),
        ("actor.stopped", "/root/f", "crash"),
        ("actor.started", "/root/f", ""),
        ("actor.restarted", "/root/f", ""),
        ("actor.stopped", "/root/f", "shutdown"),
        ("actor.stopped", "/root", "shutdown"),
    ]
    page = (DOCS / "concepts.md").read_text()
    for event, path, detail in events:
        assert re.search(rf"{re.escape(event)}\s+{re.escape(path)}\s+\S*{detail}", page)


def test_json_logs_recipe_writes_one_json_object_per_event() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "examples.docs.json_logs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines()]
    [crashed] = [e for e in events if e["event"] == "actor.crashed"]
    assert (crashed["exc_type"], crashed["error"], crashed["level"]) == (
        "ValueError",
        "a negative charge: -5",
        "error",
    )
    assert "Traceback" in crashed["exception"]
    assert "actor.restarted" in [e["event"] for e in events]


async def test_a_hand_written_contract_crosses_two_processes() -> None:
    assert await two_processes.main() == "hello, ada hello, ada"
    assert "hello, ada hello, ada" in (DOCS / "contracts.md").read_text()


async def test_events_subscribe_counts_crashes(capsys: pytest.CaptureFixture[str]) -> None:
    result = await events.main()
    assert result["crashes"] == {"/root/billing": 1}
    assert result["seen"][:2] == ["actor.started", "actor.started"]
    assert "actor.restarted" in result["seen"]
    out = capsys.readouterr().out
    assert "/root/billing crashed: ValueError: a negative charge: -5\n250\n" in out


# -- supervision.md -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "journal"),
    [
        ("one_for_one", "stop:b start:b"),
        ("one_for_all", "stop:b stop:c stop:a start:a start:b start:c"),
        ("rest_for_one", "stop:b stop:c start:b start:c"),
    ],
)
async def test_strategies_table(strategy: str, journal: str) -> None:
    assert await supervision_tree.strategy(strategy) == journal.split()
    assert f"| `{strategy}` |" in (DOCS / "supervision.md").read_text()
    assert f"`{journal}`" in (DOCS / "supervision.md").read_text()


async def test_the_bank_trees_start_and_stop() -> None:
    from supervisors import bank

    async with ActorSystem("docs") as docs_system:
        await docs_system.start(bank.tree)
        assert docs_system.lookup("/bank/accounts/alice") is not None
        await docs_system.start(supervision_tree.bank_like_tree([]))
        [_, app] = docs_system.tree()
        assert [n.path for n in app.children] == ["/app/db", "/app/web", "/app/metrics"]
        assert [n.kind for n in app.children] == ["supervisor", "supervisor", "actor"]


async def test_intensity_is_a_sliding_window() -> None:
    assert await intensity.main() == [
        (0.0, "restarted"),
        (1.0, "restarted"),
        (2.0, "restarted"),
        (5.5, "restarted"),
        (6.0, "gave up"),
    ]


async def test_pool_routes_restarts_and_discovers_its_workers() -> None:
    result = await pool.main()
    assert result["answers"] == [
        "0 resized to 100 at q85",
        "1 resized to 200 at q85",
        "2 resized to 300 at q85",
        "0 resized to 400 at q85",
    ]
    assert result["crashed"] == "corrupt image"  # worker 1 took it
    after = result["after"]
    assert after[:2] == ["2 resized to 500 at q85", "0 resized to 500 at q85"]
    assert after[2] in ("1 resized to 500 at q85", "2 resized to 500 at q85")  # 1, once back
    assert result["discover"] == [f"/root/resizers/{i}" for i in range(3)]
    assert result["tree"] == (
        "pool",
        [
            ("/root/resizers/0", "actor", 0),
            ("/root/resizers/1", "actor", 1),
            ("/root/resizers/2", "actor", 0),
        ],
    )


async def test_backoff_delays() -> None:
    assert await backoff.main() == {
        "back to back": [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0],
        "after a quiet 5.5 s": [1.0, 2.0, 4.0, 1.0],
    }
    page = (DOCS / "supervision.md").read_text()
    assert "| 1, 2, 4, 8, 10, 10, 10 |" in page
    assert "| 1, 2, 4, 1 |" in page


async def test_an_import_job_finishes_and_the_system_stops_with_it() -> None:
    assert await import_job.main() == list(range(10))


async def test_escalation_reaches_a_transient_parent() -> None:
    result = await supervision_tree.escalation("transient")
    assert result["journal"] == [
        "start:solo",
        "start:i1",
        "start:i2",
        "stop:i1",
        "start:i1",  # first crash: restarted
        "stop:i1",
        "stop:i2",  # second crash: inner gives up and stops i2
        "start:i1",
        "start:i2",  # root restarts inner
    ]
    assert result["inner_restarts"] == 1
    assert result["inner_status"] == "running"


async def test_the_root_giving_up_stops_the_system() -> None:
    result = await supervision_tree.root_gives_up()
    assert result == {
        "gave_up": "/root gave up: more than 0 restarts within 5.0s",
        "running": False,
        "journal": ["start:w", "stop:w"],
    }


async def test_giving_up_does_not_drain_the_children() -> None:
    assert await supervision_tree.give_up_fails_queued_asks() == ["ActorStopped"] * 3


async def test_shutdown_order_and_timeouts() -> None:
    result = await shutdown.main()
    assert result["journal"] == [
        "on_stop:stubborn",
        "cancelled:stubborn",  # ignored the cancel: abandoned after kill_grace
        # brutal: shutdown=0, on_stop never runs
        "on_stop:slow",
        "cancelled:slow",
        "on_stop:quick",
        "done:quick",
    ]
    assert result["stopped"] == [
        ("/root/brutal", "killed"),
        ("/root/slow", "killed"),
        ("/root/quick", "shutdown"),
        ("/root", "shutdown"),
    ]
    assert result["abandoned"] == ["/root/stubborn"]
    assert 0.35 <= result["elapsed"] < 1.5


async def test_start_failure_names_the_path() -> None:
    result = await supervision_tree.start_failure()
    assert result["path"] == "/root/bad"
    assert result["message"] == "/root/bad failed to start: RuntimeError: cannot start"
    assert isinstance(result["cause"], RuntimeError)
    assert result["journal"] == ["start:a", "stop:a"]
    assert result["message"] in (DOCS / "supervision.md").read_text()


async def test_children_at_run_time() -> None:
    assert await supervision_tree.children_at_run_time() == {
        "ref": "/root/extra",
        "duplicate": "/root/extra is already started",
        "order": ["/root/a", "/root/extra"],
        "status": "stopped",
    }


async def test_an_outside_stop_is_for_good_until_restart_child() -> None:
    assert await supervision_tree.outside_stop_is_for_good() == {
        "status": "stopped",
        "asked": "ActorStopped",
        "after_restart_child": "pong",
    }


async def test_the_mailbox_survives_a_restart() -> None:
    assert await supervision_tree.mailbox_survives_a_restart() == {"seen": [1, 2, 3], "starts": 2}


async def test_death_watch_ignores_restarts() -> None:
    assert await supervision_tree.death_watch() == {
        "after_restart": [],
        "after_stop": [("/root/w", "shutdown")],
    }


# -- remote.md ----------------------------------------------------------------------


async def test_remote_basics() -> None:
    assert await remote_tour.basics() == {
        "address": True,
        "total": 5,
        "equal": True,
        "greeted": "hello back",
        "errors": ["KeyError", "RemoteError", "ActorStopped"],
        "remote_type": "CustomError",
        "nodes": ["b"],
    }


async def test_remote_secrets() -> None:
    assert await remote_tour.secrets() == {
        "None": "refused: a secret is required",
        "wrong": "wrong secret (or none): it did not prove the shared secret",
        "s3cret": "in",
    }


async def test_remote_tls_with_a_client_certificate(tmp_path: Path) -> None:
    pem = Certs().write(tmp_path)
    assert await remote_tour.tls(str(pem["node-cert"]), str(pem["node-key"]), str(pem["ca"])) == {
        "tls": "sealed",
        "plaintext": "the connection closed during the handshake: closed by the peer before "
        "it sent anything (a node that listens with TLS closes a plaintext connection so: "
        "connect with ssl=)",
    }


async def test_remote_node_loss_and_reconnect() -> None:
    assert await remote_tour.node_loss() == {
        "asked": "TransportError",
        "notices": ["/root/counter shutdown"],
        "again": "reconnected",
    }


async def test_remote_cluster_discovery_and_publish() -> None:
    result = await remote_tour.cluster()
    assert result["found"][0] == "/here" and result["found"][1].endswith("/b.sock/root/counter")
    assert result["accepted"] == 2
    assert result["totals"] == [10, 10]


async def test_serialize_local_catches_a_non_contract_message() -> None:
    assert await remote_tour.serialize_local() == "SerializationError"


# -- cli.md -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "page"),
    [
        (
            ["tree", "bank:tree", "--app-dir", str(ROOT / "examples/getting_started")],
            "getting-started.md",
        ),
        (["tree", "examples.docs.cli_trees:make_tree", "--factory"], "cli.md"),
    ],
)
def test_the_tree_command_prints_what_the_page_shows(args: list[str], page: str) -> None:
    result = CliRunner().invoke(cli_main, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() in (DOCS / page).read_text()


@pytest.mark.parametrize(
    "target",
    [
        "nocolon",
        "examples.docs.nope:tree",
        "examples.docs.cli_trees:nope",
        "examples.docs.cli_trees:make_tree",
    ],
)
def test_a_target_that_does_not_load_exits_2_with_one_line(target: str) -> None:
    result = CliRunner().invoke(cli_main, ["run", target])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith("error: ")
    assert line in (DOCS / "cli.md").read_text()


def _cli(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("mycelium-actors")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from mycelium_actors.cli import main; main()", *args]


@pytest.mark.parametrize("target", ["broken", "doomed"])
def test_a_tree_that_fails_or_gives_up_exits_1(target: str) -> None:
    proc = subprocess.run(
        _cli("run", f"examples.docs.cli_trees:{target}"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1
    [reason] = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert reason in (DOCS / "cli.md").read_text()


class Running:
    """A `mycelium-actors run` subprocess whose stderr is read as it comes."""

    def __init__(self, target: str, *options: str) -> None:
        self.proc = subprocess.Popen(
            _cli("run", target, "--log-format", "json", *options),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def events(self) -> list[str]:
        found = []
        for line in list(self.lines):
            try:
                found.append(json.loads(line)["event"])
            except (ValueError, KeyError, TypeError):
                pass
        return found

    def wait_for(self, predicate: object, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():  # type: ignore[operator]
            assert time.monotonic() < deadline, "\n".join(self.lines)
            time.sleep(0.02)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def finish(self) -> int:
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
            self._reader.join(5)
            assert self.proc.stderr is not None
            self.proc.stderr.close()


def test_run_prints_the_live_tree_on_sigusr1_and_exits_0_on_sigint() -> None:
    run = Running("bank:tree", "--app-dir", "examples/getting_started")
    run.wait_for(lambda: "cli.running" in run.events())
    run.signal(signal.SIGUSR1)
    run.wait_for(lambda: any(line.startswith("└── /bank/bob") for line in run.lines))
    run.signal(signal.SIGINT)
    assert run.finish() == 0
    tree = [line for line in run.lines if "/bank" in line and not line.startswith("{")]
    page = (DOCS / "cli.md").read_text()
    assert all(line in page for line in tree), tree
    assert run.events()[-1] == "actor.stopped"
    assert "cli.stopping" in run.events()


def test_status_every_prints_the_tree_periodically() -> None:
    run = Running("bank:tree", "--app-dir", "examples/getting_started", "--status-every", "0.1")
    run.wait_for(lambda: sum(line.startswith("/bank  supervisor") for line in run.lines) >= 2)
    run.signal(signal.SIGTERM)
    assert run.finish() == 0


def test_a_second_signal_exits_130_at_once() -> None:
    run = Running("examples.docs.cli_trees:lingering")
    run.wait_for(lambda: "cli.running" in run.events())
    run.signal(signal.SIGINT)
    run.wait_for(lambda: "cli.stopping" in run.events())
    run.signal(signal.SIGINT)
    assert run.finish() == 130
    assert "second signal: exiting at once" in run.lines
