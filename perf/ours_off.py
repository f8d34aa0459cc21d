"""Ours with metrics off (`ActorSystem(..., metrics=False)`), for the workloads
whose per-message cost metrics could change: the `ours/off` column is what
metrics cost (API.md 11: "measured in perf/, tell and ask, on and off").
`worker_ask`: with metrics off the worker process keeps and reports none either."""

from __future__ import annotations

from . import ours
from .ours import ask, ask_async, tell, tell_async, worker_ask

ours.SYSTEM_OPTIONS["metrics"] = False  # each measurement runs in its own process

__all__ = ["ask", "ask_async", "tell", "tell_async", "worker_ask"]
