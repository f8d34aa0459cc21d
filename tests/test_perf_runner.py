"""The benchmark harness still runs end to end (a tiny scale; nothing is timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from perf.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent
JOBS = ["--jobs", "3"]  # the figures are not looked at: run the workers 3 at a time


@pytest.mark.timeout(300)
def test_runner_writes_positive_figures_for_every_workload(tmp_path: Path) -> None:
    out = tmp_path / "perf.json"
    cmd = [sys.executable, "-m", "perf", "--scale", "0.001", "--repeats", "1", *JOBS]
    cmd += ["--json", str(out)]
    # ~20 s alone on the 2-core machine (one fresh interpreter per measurement,
    # JOBS at once; ~40 s one at a time): the bound keeps a 5x margin.
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert set(doc["workloads"]) == {w.name for w in WORKLOADS}
    for name, entry in doc["workloads"].items():
        assert "ours" in entry["figures"], name  # the others only where they have an equivalent
        for impl, figures in entry["figures"].items():
            # RSS moves in pages: at this scale a hundred idle tasks may fit in
            # memory the interpreter already holds, so memory may read 0.
            assert figures["median"] > 0 or (name == "memory" and figures["median"] == 0), (
                name,
                impl,
            )
        assert all(ratio > 0 for ratio in entry["ratios"].values()), name
        assert entry["targets"] and all(isinstance(t["ok"], bool) for t in entry["targets"])
    assert "ours/pykka" in done.stdout
    assert "3 measurements ran at once" in done.stdout


@pytest.mark.timeout(120)
def test_loop_both_measures_each_workload_on_asyncio_and_on_uvloop(tmp_path: Path) -> None:
    out = tmp_path / "perf.json"
    only = ["--only", "tell", "--only", "unix_remote_ask"]
    cmd = [sys.executable, "-m", "perf", "--scale", "0.001", "--repeats", "1", "--loop", "both"]
    cmd += JOBS
    done = subprocess.run(
        [*cmd, *only, "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=100
    )
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert doc["meta"]["loops"] == ["asyncio", "uvloop"]
    names = ["tell", "tell@uvloop", "unix_remote_ask", "unix_remote_ask@uvloop"]
    assert list(doc["workloads"]) == names
    for name in names:
        entry = doc["workloads"][name]
        assert entry["loop"] == (name.partition("@")[2] or "asyncio")
        assert {"ours", "raw"} <= set(entry["figures"]), name
    assert "pykka" in doc["workloads"]["tell"]["figures"]
    assert "pykka" not in doc["workloads"]["tell@uvloop"]["figures"]  # threads: measured once
    assert "tell: on uvloop / on asyncio: ours " in done.stdout


def test_the_shared_memory_ring_prototype_runs_both_links() -> None:
    cmd = [sys.executable, "-m", "perf.shm_ring", "--n", "200", "--repeats", "1"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    assert "leaked shared_memory" not in done.stderr  # resource_tracker is handled
    rows = {
        words[0]: words[1:]
        for words in map(str.split, done.stdout.splitlines())
        if words and words[0] in ("shm", "unix") and words[1] != "/"
    }
    assert float(rows["shm"][0].replace(",", "")) > 0
    assert float(rows["unix"][1].replace(",", "")) > 0
    assert "shm / unix: ask" in done.stdout
