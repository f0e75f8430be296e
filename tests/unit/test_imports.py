"""The library's modules import one another without a circle (issue #17).

A circle (``batch`` importing ``cli`` for a helper while ``cli`` imports
``batch``) means two modules that cannot be understood, tested or moved
apart, and it works only as long as one side imports lazily. The graph is
read from the source with ``ast``: every ``import`` and ``from ... import``,
at module level or inside a function, naming a module of ``segmentation``
(``from . import config`` counts as importing ``segmentation.config``). As
import checkers usually do, importing ``a.b.c`` is an edge to ``a.b.c`` only,
not to the packages above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "segmentation"


def _modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of ``package`` (a package by its ``__init__``)."""
    found = {}
    for f in (root / package).rglob("*.py"):
        parts = list(f.relative_to(root).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return found


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that ``name`` (at ``path``) imports anywhere in its source."""
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = here[:len(here) - node.level + 1] if node.level else []
            base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in modules and t != name}
    return out


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    modules = _modules(root, package)
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of two or more modules that import one another, each sorted (Tarjan's strongly
    connected components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def test_no_import_circle_among_the_library_modules():
    graph = import_graph()
    assert "segmentation.cli" in graph and "segmentation.batch" in graph
    found = cycles(graph)
    assert not found, "modules that import one another: " + "; ".join(", ".join(c) for c in found)


def test_the_check_sees_a_circle_through_a_lazy_import(tmp_path):
    """What the check would have said before issue #17: batch imported cli's helper inside a function."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("from . import batch\nfrom .sub import tool\n")
    (pkg / "batch.py").write_text("def f():\n    from .cli import _save_image\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "tool.py").write_text("from ..errors import E\n")
    (pkg / "errors.py").write_text("")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.cli"] == {"pkg.batch", "pkg.sub.tool"} and graph["pkg.sub.tool"] == {"pkg.errors"}
    assert cycles(graph) == [["pkg.batch", "pkg.cli"]]


def test_batch_does_not_import_the_command_line():
    graph = import_graph()
    batch = [m for m in graph if m == "segmentation.batch" or m.startswith("segmentation.batch.")]
    assert len(batch) > 3
    for m in batch:
        assert not {d for d in graph[m] if d.startswith("segmentation.cli")}, m
