"""OpenTelemetry for the tracing tests: this process's one tracer provider
(OpenTelemetry allows no other) recording into an in-memory exporter, and the
spans of other processes as they report them.

Another process (a node, a worker) that imports this module with
`$MYCELIUM_TEST_SPANS` set records its finished spans in that file instead,
one JSON array per line: `[name, trace id, parent span id or null, actor.path
or null]`, ids in hex; `reported(path)` reads them back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

#: Where another process writes its spans (set in its environment).
SPANS_FILE = "MYCELIUM_TEST_SPANS"


class FileExporter(SpanExporter):
    """Appends each finished span to a file, one JSON line (see the module doc)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a") as out:
            for span in spans:
                parent = None if span.parent is None else hex_id(span.parent.span_id)
                path = (span.attributes or {}).get("actor.path")
                line = [span.name, hex_id(span.context.trace_id, 32), parent, path]
                out.write(json.dumps(line) + "\n")
        return SpanExportResult.SUCCESS


def hex_id(value: int, digits: int = 16) -> str:
    return format(value, f"0{digits}x")


def reported(path: Path | str) -> list[list[Any]]:
    """The spans another process wrote to `path` so far."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.endswith("]")]


EXPORTER: SpanExporter
if os.environ.get(SPANS_FILE):
    EXPORTER = FileExporter(os.environ[SPANS_FILE])
else:
    EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_PROVIDER)
TRACER = trace.get_tracer("tests")


def named(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    """The one finished span called `name`."""
    [span] = [s for s in exporter.get_finished_spans() if s.name == name]
    return span


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None
