"""The shape of the package: its import graph has no cycle.

Both module-level and function-level imports count: a lazy ``import`` inside a function that reaches
back up is still a module that needs the one that needs it (and the only thing keeping it from an
ImportError is when it runs). The graph is read from the source with ``ast``, nothing is imported.
"""
from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = "glyphlab"


def modules(src: Path) -> dict[str, Path]:
    """``{"glyphlab.data.strokes": path, "glyphlab.data": path of its __init__.py, ...}``"""
    out = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> dict[str, int]:
    """The package's modules that module ``name`` imports anywhere in it: ``{module: first line}``.

    ``from a.b import c`` is an import of ``a.b.c`` when that is a module, else of ``a.b``; a name
    that is no module is taken as its nearest enclosing one (``import a.b.x`` → ``a.b``).
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..data import y
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.setdefault(target, node.lineno)
    return found


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def import_graph(src: Path) -> dict[str, dict[str, int]]:
    known = modules(src)
    return {name: imports(name, path, known) for name, path in known.items()}


def test_the_import_graph_has_no_cycle():
    graph = import_graph(ROOT / "src")
    assert len(graph) > 20 and "glyphlab.experiment" in graph["glyphlab.cli"]  # the graph was read
    found = cycles(graph)
    described = [" ; ".join(f"{a} → {b} (line {graph[a][b]})" for a in cycle for b in graph[a] if b in cycle)
                 for cycle in found]
    assert not found, "import cycles (move the shared piece down):\n" + "\n".join(described)


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    """A cycle closed only by an import inside a function, through a relative import, is found."""
    pkg = tmp_path / PACKAGE / "sub"
    pkg.mkdir(parents=True)
    (tmp_path / PACKAGE / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from glyphlab.sub import high\n    return high\n")
    (pkg / "high.py").write_text("from . import low\n")
    (tmp_path / PACKAGE / "top.py").write_text("import glyphlab.sub.high.name_not_a_module\n")
    graph = import_graph(tmp_path)
    assert graph["glyphlab.top"] == {"glyphlab.sub.high": 1}
    assert cycles(graph) == [["glyphlab.sub.high", "glyphlab.sub.low"]]
