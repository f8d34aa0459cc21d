"""One measurement in a fresh process: `python -m perf.worker IMPL WORKLOAD SIZE`.

Prints one JSON object, `{"impl", "workload", "size", "delta"}`, where `delta`
is what the workload's meter read (seconds, or bytes of RSS).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import NoReturn

import structlog

from .workloads import BY_NAME, IMPLEMENTATIONS


def measure(impl: str, name: str, size: int, report: Callable[[float], None]) -> None:
    """Run workload `name` on `impl` once at `size`; `report` gets the meter's delta."""
    workload = BY_NAME[name]
    run = getattr(importlib.import_module(IMPLEMENTATIONS[impl]), name)
    meter = workload.new_meter()
    if not workload.teardown:
        meter.then = lambda delta: _exit_now(report, delta)
    gc.collect()
    outcome = run(size, meter)
    if inspect.iscoroutine(outcome):
        asyncio.run(outcome)
    if meter.delta is None:
        raise RuntimeError(f"{impl}.{name} never entered its meter")
    report(meter.delta)


def _exit_now(report: Callable[[float], None], delta: float) -> NoReturn:
    report(delta)
    sys.stdout.flush()
    os._exit(0)


def main(argv: list[str]) -> None:
    impl, name, size = argv[0], argv[1], int(argv[2])
    # Lifecycle events are info level: drop them so logging is not what we measure.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        cache_logger_on_first_use=True,
    )

    def report(delta: float) -> None:
        print(json.dumps({"impl": impl, "workload": name, "size": size, "delta": delta}))

    measure(impl, name, size, report)


if __name__ == "__main__":
    main(sys.argv[1:])
