"""An editable install from a clone, as a user makes one: it exposes `mycelium_actors`
and nothing else of the repository (its contracts/, examples/, supervisors/)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# A user's project as contracts.md recommends: contracts/ built from YAML, here
# without an __init__.py (a namespace package, which a regular package of the
# same name anywhere on sys.path would shadow), and a tree that uses them.
JOBS = """
import attrs
from mycelium_actors import message

@message(id=9001)
@attrs.frozen
class Job:
    n: int
"""
APP = """
from contracts.jobs import Job
from mycelium_actors import Actor, Child, Supervisor, handler

class Runner(Actor):
    @handler
    def run(self, job: Job) -> int:
        return job.n

tree = Supervisor("jobs", children=[Child(Runner)])
"""
CHECK = """
import importlib.util, pathlib, mycelium_actors
from contracts.jobs import Job
print(Job(3))
print(pathlib.Path(mycelium_actors.__file__).parent)
print([m for m in ("examples", "supervisors") if importlib.util.find_spec(m) is not None])
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with `pip install -e <clone>` (its dependencies from pip's cache)."""
    where = tmp_path_factory.mktemp("install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=60)
    install = subprocess.run(
        [str(where / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "-e", REPO],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert install.returncode == 0, install.stderr
    return where


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "jobs.py").write_text(textwrap.dedent(JOBS))
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "check.py").write_text(textwrap.dedent(CHECK))
    return tmp_path


@pytest.mark.install
@pytest.mark.timeout(150)
def test_an_editable_install_exposes_only_the_package(venv: Path, project: Path) -> None:
    run = subprocess.run(
        [str(venv / "bin" / "python"), "check.py"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 0, run.stderr
    job, package, shadows = run.stdout.splitlines()
    assert job == "Job(n=3)"  # the user's contracts package, not the repository's
    assert Path(package) == REPO / "mycelium_actors"  # editable: the clone's code
    assert shadows == "[]"
    tree = subprocess.run(
        [str(venv / "bin" / "mycelium-actors"), "tree", "app:tree"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert tree.returncode == 0, tree.stderr
    assert tree.stdout.startswith("jobs  supervisor")
