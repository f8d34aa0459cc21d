"""The import rule of docs/design.md that import-linter's contracts cannot say:
run-time imports have no cycle, imports inside functions included. (The layers
themselves are the contracts in pyproject.toml, run by `lint-imports` in CI.)"""

from __future__ import annotations

import grimp

#: An optional backend loaded by name: the one cycle the rule allows.
ALLOWED = {frozenset(("mycelium_actors.wire.codec", "mycelium_actors.wire.codec_cattrs"))}


def _run_time_graph() -> grimp.ImportGraph:
    return grimp.build_graph("mycelium_actors", exclude_type_checking_imports=True, cache_dir=None)


def test_run_time_imports_have_no_cycle() -> None:
    graph = _run_time_graph()
    cycles = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if {module, imported} in ALLOWED:
                continue
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                cycles.append(" -> ".join((module, *back)))
    assert cycles == []


def test_imports_inside_functions_are_in_the_graph() -> None:
    """The allowed cycle is an import inside a function: seeing it proves such
    imports are checked at all."""
    graph = _run_time_graph()
    codec, backend = sorted(next(iter(ALLOWED)))
    assert graph.direct_import_exists(importer=codec, imported=backend)
    assert graph.direct_import_exists(importer=backend, imported=codec)
