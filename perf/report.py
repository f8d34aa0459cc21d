"""Turn measurements into ratios, target verdicts, a table and a JSON document."""

from __future__ import annotations

import operator
from typing import Any

from .workloads import BY_NAME, Target, Workload

# Share of all CPUs taken by other processes above which a workload's figures are
# flagged as disturbed.
BUSY = 0.05
COLUMNS = (
    "workload",
    "unit",
    "ours",
    "raw asyncio",
    "pykka",
    "metrics off",
    "tracing on",
    "ours/raw",
    "ours/pykka",
    "ours/off",
    "ours/traced",
    "target",
)
# off: ours with metrics=False (what metrics cost); traced: with tracing=True (what it costs)
OTHERS = ("raw", "pykka", "off", "traced")


def judge(workload: Workload, figures: dict[str, Any], pinned: bool) -> dict[str, Any]:
    """Ratios of our median to the others' (those that ran), and each target's verdict."""
    ours = figures["ours"]["median"]
    # A zero median (too small a run to move RSS) gives no ratio rather than a crash.
    ratios = {o: ours / figures[o]["median"] for o in OTHERS if figures.get(o, {}).get("median")}
    values = {"abs": ours, **ratios, **figures["ours"].get("extras", {})}
    verdicts = []
    for target in workload.targets:
        bound = target.bound(pinned)
        value = values.get(target.against)
        if value is None:
            continue
        verdicts.append(
            {
                "target": _describe(workload, target, bound, value),
                "value": value,
                "ok": workload.better(target)(value, bound),
            }
        )
    return {"ratios": ratios, "targets": verdicts}


def workload_of(name: str) -> Workload:
    """The workload of a result: `tell` and `tell@uvloop` are both `tell`."""
    return BY_NAME[name.partition("@")[0]]


def document(results: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON written to disk: run settings, then per workload figures and verdicts."""
    workloads = {}
    for name, measured in results.items():
        workload = workload_of(name)
        workloads[name] = {
            "title": workload.title,
            "unit": workload.unit,
            **measured,
            **judge(workload, measured["figures"], meta["pinned"]),
        }
    return {"meta": meta, "workloads": workloads}


def table(doc: dict[str, Any]) -> str:
    """A plain-text table of the document, with notes on unequal sizes and noise."""
    rows = [COLUMNS]
    notes = []
    busy = []
    for name, entry in doc["workloads"].items():
        figures = entry["figures"]
        rows.append(
            (
                name,
                entry["unit"],
                *(
                    _figure(figures[impl]["median"], entry["unit"]) if impl in figures else "-"
                    for impl in ("ours", *OTHERS)
                ),
                *(f"{entry['ratios'][o]:.2f}x" if o in entry["ratios"] else "-" for o in OTHERS),
                ", ".join(
                    f"{v['target']} {'pass' if v['ok'] else 'MISS'}" for v in entry["targets"]
                ),
            )
        )
        sizes = {impl: f["size"] for impl, f in figures.items()}
        if len(set(sizes.values())) > 1:
            notes.append(f"{name}: n = " + ", ".join(f"{i} {s:,}" for i, s in sizes.items()))
        base, _, loop = name.partition("@")
        if loop and base in doc["workloads"]:
            notes.append(_across_loops(base, loop, figures, doc["workloads"][base]["figures"]))
        elif not loop and (note := BY_NAME[name].note):
            notes.append(note)
        for impl, f in figures.items():
            if "extras" in f:
                extras = ", ".join(f"{k} {_figure(v, '')}" for k, v in f["extras"].items())
                notes.append(f"{name} {impl}: {extras}")
        if entry["foreign_cpu"] > BUSY:
            busy.append(f"{name} {entry['foreign_cpu']:.0%}")
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    meta = doc["meta"]
    header = (
        f"mycelium-actors perf: medians of {meta['repeats']} runs, scale {meta['scale']}, "
        f"{'pinned to CPU 0' if meta['pinned'] else 'unpinned'}, "
        f"{meta['cpus']} CPUs, Python {meta['python']}, "
        f"event loop {' and '.join(meta.get('loops', ['asyncio']))}, commit {meta['commit']}"
    )
    if meta.get("jobs", 1) > 1:
        notes.append(f"{meta['jobs']} measurements ran at once: a smoke run, not a result")
    if busy:
        notes.append(
            "other processes took this share of the CPUs meanwhile, so these figures "
            f"are noisy: {', '.join(busy)}"
        )
    return "\n".join([header, "", *lines, *(f"  note: {n}" for n in notes)])


def _across_loops(name: str, loop: str, on_loop: dict[str, Any], on_asyncio: dict[str, Any]) -> str:
    """Same-run ratios of a workload's figures on `loop` to those on asyncio."""
    ratios = [
        f"{impl} {on_loop[impl]['median'] / on_asyncio[impl]['median']:.2f}x"
        for impl in ("ours", "raw")
        if impl in on_loop and on_asyncio.get(impl, {}).get("median")
    ]
    return f"{name}: on {loop} / on asyncio: {', '.join(ratios)}"


def _describe(workload: Workload, target: Target, bound: float, value: float) -> str:
    op = "<=" if workload.better(target) is operator.le else ">="
    if target.against == "abs":
        return f"{op} {_figure(bound, workload.unit)}"
    if target.against in OTHERS:
        return f"{op} {bound:g}x {target.against}"
    return f"{target.against} {_figure(value, '')} {op} {bound:g}"


def _figure(value: float, unit: str) -> str:
    if unit.startswith("bytes"):
        return f"{value / 1024:.2f} KiB"
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return f"{value:.3g}"
