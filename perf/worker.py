"""One measurement in a fresh process: `python -m perf.worker IMPL WORKLOAD SIZE`.

Prints one JSON object, `{"impl", "workload", "size", "delta", "extras"}`, where
`delta` is what the workload's meter read (seconds, or bytes of RSS) and
`extras` what the workload returned (or null).
"""

from __future__ import annotations

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

from . import loops
from .workloads import BY_NAME, IMPLEMENTATIONS, Extras

Report = Callable[[float, Extras | None], None]


def measure(impl: str, name: str, size: int, report: Report) -> None:
    """Run workload `name` on `impl` once at `size`; `report` gets the meter's delta."""
    workload = BY_NAME[name]
    run = getattr(importlib.import_module(IMPLEMENTATIONS[impl]), name)
    meter = workload.new_meter()
    if not workload.teardown:
        meter.then = lambda delta: _exit_now(report, delta)
    gc.collect()
    extras = run(size, meter)
    if inspect.iscoroutine(extras):
        extras = loops.run(extras)
    if meter.delta is None:
        raise RuntimeError(f"{impl}.{name} never entered its meter")
    report(meter.delta, extras)


def _exit_now(report: Report, delta: float) -> NoReturn:
    report(delta, None)
    sys.stdout.flush()
    os._exit(0)


def main(argv: list[str]) -> None:
    impl, name, size = argv[0], argv[1], int(argv[2])
    # Lifecycle events are info level (crashes: error): drop them so logging,
    # tracebacks included, is not what we measure.
    level = logging.CRITICAL if BY_NAME[name].crashes else logging.WARNING
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )

    def report(delta: float, extras: Extras | None) -> None:
        record = {"impl": impl, "workload": name, "size": size, "delta": delta, "extras": extras}
        print(json.dumps(record))

    measure(impl, name, size, report)


if __name__ == "__main__":
    main(sys.argv[1:])
