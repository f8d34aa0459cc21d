"""Finding this test process's worker processes (psutil)."""

from __future__ import annotations

import psutil


def workers() -> list[psutil.Process]:
    """Worker processes of this test process, and zombies (a worker not reaped)."""
    return [
        p
        for p in psutil.Process().children(recursive=True)
        if "mycelium_actors.workers.child" in " ".join(_cmdline(p)) or _zombie(p)
    ]


def _zombie(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []
