"""Benchmarks: mycelium-actors beside a raw asyncio floor and pykka, in one run.

`python -m perf` runs every workload (`workloads.py`) on every implementation
(`ours.py`, `raw.py`, `pykka_threads.py`), each measurement in a fresh
subprocess (`worker.py`), and prints a table of medians and ratios
(`report.py`). See `perf/README.md`.
"""
