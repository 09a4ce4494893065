"""Imports point one way (issue 30, docs/architecture.md "Layers").

Every import of every evalkit module is parsed, those made inside functions included (they run as
surely as the others). An import fails the test when it reaches a package of a higher layer, or when
it closes a cycle between modules. Nothing is exempt: there is no list of exceptions.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "evalkit"

# Bottom first. A module belongs to the first entry its dotted name starts with; a layer may import
# its own and every lower one. docs/architecture.md shows the same table (a test below checks it).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("evalkit", "evalkit.config"),          # the version; the settings types and their defaults
    ("evalkit.core",),                      # records, statistics, store, journals, locks, plugin loading
    ("evalkit.data",),                      # registry, adapters, datasets, prompts, suites, overlap
    ("evalkit.serving",),                   # engines (backends/), launching, probes, the client
    ("evalkit.scoring",),                   # extraction, scorers, metrics, judges, agreement
    ("evalkit.run",),                       # planning, dispatch, the runner, run directories, passes
    ("evalkit.results",),                   # reports, leaderboard, gate, compare, formats, pages, trackers
    ("evalkit.benchmarks",),                # one folder per benchmark kind with code of its own
    ("evalkit.sweep",),                     # checkpoints of a training run
    ("evalkit.web",),                       # the live view and rating studies
    ("evalkit.api",),                       # the operations
    ("evalkit.cli", "evalkit.__main__"),    # the command line
)


def module_name(path: Path) -> str:
    """The dotted name of the module at PATH (a package's __init__ is the package)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    """Every module of evalkit by its dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The layer index of MODULE: the longest prefix that names one."""
    best, length = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add its package to LAYERS")
    return best


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[int, str]]:
    """(line, module) of every evalkit module NAME imports, at any depth; ``from pkg import mod``
    counts as mod when mod is a module, relative imports are resolved."""
    found = []
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "evalkit"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "evalkit":
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.append((node.lineno, full if full in modules else target))
    out = []
    for line, target in found:
        while target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        if target in modules and target != name:
            out.append((line, target))
    return sorted(set(out))


def import_graph() -> tuple[dict[str, Path], dict[str, list[tuple[int, str]]]]:
    """Every module and, for each, the evalkit modules it imports with the line of each import."""
    modules = all_modules()
    return modules, {name: imported_modules(name, path, modules) for name, path in modules.items()}


def upward_imports(modules, graph) -> list[str]:
    """Every import that reaches a higher layer, as ``file:line: a (layer) imports b (layer)``."""
    bad = []
    for name, edges in graph.items():
        for line, target in edges:
            if layer_of(target) > layer_of(name):
                bad.append(f"{modules[name].relative_to(ROOT)}:{line}: {name} (layer {layer_of(name)}) "
                           f"imports {target} (layer {layer_of(target)})")
    return bad


def cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(t for _, t in graph[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for target in edges:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(t for _, t in graph[target])))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_points_up_a_layer():
    modules, graph = import_graph()
    bad = upward_imports(modules, graph)
    assert not bad, f"{len(bad)} imports point up (docs/architecture.md, Layers):\n" + "\n".join(bad)


def test_no_import_closes_a_cycle():
    _, graph = import_graph()
    found = cycles(graph)
    assert not found, "modules importing each other (break the cycle):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_every_module_has_a_layer():
    for name in all_modules():
        layer_of(name)


def test_the_checks_see_what_they_should(tmp_path, monkeypatch):
    """Function-level and relative imports are seen; an upward one and a cycle are reported."""
    root = tmp_path
    pkg = root / "evalkit"
    (pkg / "core").mkdir(parents=True)
    (pkg / "results").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "results" / "__init__.py").write_text("")
    (pkg / "core" / "store.py").write_text("def f():\n    from evalkit.results import report\n")
    (pkg / "results" / "report.py").write_text("from ..core import store\n")
    this = sys.modules[__name__]
    monkeypatch.setattr(this, "ROOT", root)
    monkeypatch.setattr(this, "PACKAGE", pkg)
    modules = {module_name(p): p for p in sorted(pkg.rglob("*.py"))}
    graph = {n: imported_modules(n, p, modules) for n, p in modules.items()}
    assert graph["evalkit.core.store"] == [(2, "evalkit.results.report")]
    assert graph["evalkit.results.report"] == [(1, "evalkit.core.store")]
    assert upward_imports(modules, graph) == [
        "evalkit/core/store.py:2: evalkit.core.store (layer 1) imports evalkit.results.report (layer 6)"]
    assert cycles(graph) == [["evalkit.core.store", "evalkit.results.report"]]


def test_at_most_fourteen_entries_at_the_top():
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert len(entries) <= 14, entries


@pytest.mark.parametrize("layer", range(len(LAYERS)))
def test_the_architecture_page_lists_each_layer(layer):
    """docs/architecture.md's layer table names each package in the order the test enforces."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = [line for line in text.splitlines() if line.startswith("| ") and "layer" not in line.lower()[:12]]
    rows = [line for line in table if line.split("|")[1].strip().isdigit()]
    assert len(rows) == len(LAYERS), "the page's layer table has one row per layer"
    row = rows[layer]
    assert int(row.split("|")[1]) == layer
    for prefix in LAYERS[layer]:
        shown = prefix.removeprefix("evalkit.").replace(".", "/") if prefix != "evalkit" else "evalkit/__init__"
        assert f"`{shown}" in row, f"layer {layer} row does not name {shown}: {row}"
