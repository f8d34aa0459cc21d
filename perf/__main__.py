"""`python -m perf`: measure, print the table, write the JSON."""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from . import loops, report, runner
from .workloads import BY_NAME, WORKLOADS

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m perf", description=__doc__)
    p.add_argument("--repeats", type=int, default=3, help="runs per measurement (median kept)")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every size (e.g. 0.001)")
    p.add_argument(
        "--only",
        action="append",
        choices=list(BY_NAME),
        metavar="WORKLOAD",
        help=f"run only this workload (repeatable): {', '.join(BY_NAME)}",
    )
    p.add_argument("--pin", action="store_true", help="run every worker under `taskset -c 0`")
    p.add_argument(
        "--loop",
        choices=[*loops.LOOPS, "both"],
        default="asyncio",
        help="the event loop of ours and raw (both: each workload on asyncio and on uvloop, "
        "alternating; rows on uvloop are named WORKLOAD@uvloop)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="measurements of a workload run at once (a smoke run's shortcut: "
        "its figures are not comparable)",
    )
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.scale <= 0 or args.jobs < 1:
        p.error("--repeats and --jobs must be >= 1 and --scale > 0")
    args.loops = loops.LOOPS if args.loop == "both" else (args.loop,)
    if "uvloop" in args.loops:
        try:
            import uvloop  # noqa: F401
        except ImportError as exc:
            p.error(f"--loop {args.loop}: {exc} (pip install -e '.[perf]')")
    return args


def _commit() -> str | None:
    """The checked-out commit, "+dirty" if the package has local changes; None without git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=runner.ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        dirty = git("status", "--porcelain", "--", "mycelium_actors")
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    workloads = [w for w in WORKLOADS if not args.only or w.name in args.only]
    started = time.monotonic()
    results = runner.run(workloads, args.repeats, args.scale, args.pin, args.loops, args.jobs)
    meta = {
        "repeats": args.repeats,
        "scale": args.scale,
        "pinned": args.pin,
        "loops": list(args.loops),
        "jobs": args.jobs,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": _commit(),
        "seconds": round(time.monotonic() - started, 1),
    }
    doc = report.document(results, meta)
    print(report.table(doc))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
