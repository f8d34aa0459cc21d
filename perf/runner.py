"""Run every (implementation, workload) measurement in its own subprocess.

Implementations alternate within each workload (ours, raw, pykka, ours, ...)
so slow drift of the machine spreads evenly; the median of the repeats is kept.
With several event loops, the loops alternate too (ours and raw on asyncio,
then on uvloop, ...); pykka runs threads, not a loop, so it runs once.
"""

from __future__ import annotations

import importlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import loops, meter
from .workloads import IMPLEMENTATIONS, Workload

ROOT = Path(__file__).resolve().parent.parent  # where `python -m perf.worker` resolves


def run_worker(
    impl: str, workload: Workload, size: int, pin: bool, loop: str = "asyncio"
) -> dict[str, Any]:
    """One measurement in a fresh interpreter on `loop`: the worker's record (delta, extras)."""
    cmd = [sys.executable, "-m", "perf.worker", impl, workload.name, str(size)]
    if pin:
        cmd = ["taskset", "-c", "0", *cmd]
    env = os.environ | {loops.ENV: loop}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    record: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return record


def implementations(workload: Workload) -> list[str]:
    """The implementations that have this workload."""
    return [
        impl
        for impl, module in IMPLEMENTATIONS.items()
        if hasattr(importlib.import_module(module), workload.name)
    ]


#: Implementations that run no event loop of their own: measured on the first loop only.
LOOPLESS = frozenset({"pykka"})


def key(name: str, loop: str) -> str:
    """A result's name: the workload's on asyncio, `name@loop` on another loop."""
    return name if loop == "asyncio" else f"{name}@{loop}"


def run(
    workloads: Iterable[Workload],
    repeats: int,
    scale: float,
    pin: bool,
    loop_names: tuple[str, ...] = ("asyncio",),
    jobs: int = 1,
) -> dict[str, Any]:
    """Measure everything: per workload and loop (`key()`), each implementation's
    size, figures and median (and the median of each extra), and `foreign_cpu`,
    the share of all CPUs that other processes took meanwhile.

    `jobs` > 1 runs that many of a workload's measurements at once: a smoke
    run's shortcut (the test suite's), whose figures are not comparable."""
    results: dict[str, Any] = {}
    for workload in workloads:
        sizes = {
            (loop, impl): workload.size_for(impl, scale)
            for n, loop in enumerate(loop_names)
            for impl in implementations(workload)
            if n == 0 or impl not in LOOPLESS
        }
        records: dict[tuple[str, str], list[dict[str, Any]]] = {at: [] for at in sizes}
        order = [
            (f"{workload.name} {round_}/{repeats}", impl, workload, size, pin, loop)
            for round_ in range(1, repeats + 1)
            for (loop, impl), size in sizes.items()
        ]
        with meter.stopwatch() as wall, meter.foreign_cpu() as foreign:
            if jobs > 1:
                with ThreadPoolExecutor(jobs) as pool:
                    measured = list(pool.map(lambda call: _measure(*call), order))
            else:
                measured = [_measure(*call) for call in order]
        for (_, impl, _, _, _, loop), record in zip(order, measured, strict=True):
            records[loop, impl].append(record)
        assert wall.delta is not None and foreign.delta is not None
        foreign_cpu = max(0.0, foreign.delta / (wall.delta * (os.cpu_count() or 1)))
        for loop in loop_names:
            results[key(workload.name, loop)] = {
                "loop": loop,
                "figures": {
                    impl: _summary(workload, sizes[on, impl], runs)
                    for (on, impl), runs in records.items()
                    if on == loop
                },
                "foreign_cpu": foreign_cpu,
            }
    _progress("")
    return results


def _measure(
    label: str, impl: str, workload: Workload, size: int, pin: bool, loop: str
) -> dict[str, Any]:
    _progress(f"{label} {impl} on {loop} n={size}")
    return run_worker(impl, workload, size, pin, loop)


def _summary(workload: Workload, size: int, records: list[dict[str, Any]]) -> dict[str, Any]:
    runs = [workload.figure(size, r["delta"], r["extras"]) for r in records]
    summary = {"size": size, "runs": runs, "median": statistics.median(runs)}
    if extras := [r["extras"] for r in records if r["extras"]]:
        summary["extras"] = {k: statistics.median(e[k] for e in extras) for k in extras[0]}
    return summary


def _progress(text: str) -> None:
    if sys.stderr.isatty():
        print(f"\r\033[K{text}", end="", file=sys.stderr, flush=True)
