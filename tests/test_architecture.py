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


# Names every module of a kind defines, each its own: callers always name the module (``runes.build``,
# ``hershey.glyphs``). name → (the modules that may define it, as a path prefix under src/; why).
CONTRACTS = {
    "log": ("", "each module's logger"),
    "main": ("glyphlab/", "each `python -m glyphlab.<module>` command"),
    "build": ("glyphlab/data/", "each data option's builder: conf/data/<option>.yaml names <module>.build"),
    "glyphs": ("glyphlab/data/sources/", "each stroke source: a character's prototypes, placed as its family"),
    "raw_strokes": ("glyphlab/data/sources/", "a font source's strokes of a character as the font stores them"),
    "family_mapping": ("glyphlab/data/sources/", "a font source's scale and offset placing a character family"),
    "predict_proba": ("glyphlab/models/", "each family's mechanics (lit, sklearn): its Fitted.predict_proba"),
}


def public_definitions(src: Path) -> dict[str, list[str]]:
    """Public module-level functions, classes and assigned names: ``{name: [path under src, ...]}``.
    Imports (re-exports included) define nothing."""
    found: dict[str, list[str]] = {}
    for path in sorted(src.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names = [node.name]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
            else:
                continue
            for name in names:
                if not name.startswith("_") and name != "TYPE_CHECKING":
                    found.setdefault(name, []).append(path.relative_to(src).as_posix())
    return found


def defined_twice(found: dict[str, list[str]]) -> list[str]:
    """``"name: a.py, b.py"`` for each name defined in several modules, a contract's own modules apart."""
    twice = []
    for name, paths in sorted(found.items()):
        modules = sorted(set(paths))
        prefix = CONTRACTS.get(name, (None,))[0]
        if len(modules) > 1 and (prefix is None or not all(p.startswith(prefix) for p in modules)):
            twice.append(f"{name}: {', '.join(modules)}")
    return twice


def test_each_public_name_is_defined_in_one_module():
    twice = defined_twice(public_definitions(ROOT / "src"))
    assert not twice, ("public names defined in more than one module (keep one home and import it there, or "
                       "rename the one that is another thing):\n" + "\n".join(twice))


def test_the_name_check_sees_functions_classes_and_constants_but_not_imports(tmp_path):
    (tmp_path / "glyphlab" / "data").mkdir(parents=True)
    (tmp_path / "glyphlab" / "a.py").write_text("from glyphlab.b import LIMIT\nLIMIT2: int = 3\n\ndef load():\n    pass\n")
    (tmp_path / "glyphlab" / "b.py").write_text("LIMIT = 1\n_private = 2\n\nclass Load:\n    def load(self):\n        pass\n")
    (tmp_path / "glyphlab" / "data" / "c.py").write_text("LIMIT, LIMIT2 = 1, 2\n\ndef build():\n    pass\n")
    (tmp_path / "glyphlab" / "data" / "e.py").write_text("def build():\n    pass\n")
    found = public_definitions(tmp_path)
    assert "_private" not in found and found["load"] == ["glyphlab/a.py"] and found["Load"] == ["glyphlab/b.py"]
    assert defined_twice(found) == ["LIMIT: glyphlab/b.py, glyphlab/data/c.py",
                                    "LIMIT2: glyphlab/a.py, glyphlab/data/c.py"]   # build: the data options' contract
    (tmp_path / "glyphlab" / "d.py").write_text("def build():\n    pass\n")   # outside data/: no data option
    assert "build: glyphlab/d.py, glyphlab/data/c.py, glyphlab/data/e.py" in defined_twice(public_definitions(tmp_path))


LONG_FUNCTION = 60   # lines, def to last line: longer ones say why in a comment right above the def


def long_functions(src: Path) -> list[str]:
    """``path:line name (n lines)`` of each function longer than :data:`LONG_FUNCTION` lines with no comment
    line right above it (or above its decorators)."""
    found = []
    for path in sorted(src.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines), filename=str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if n > LONG_FUNCTION and not lines[first - 2].strip().startswith("#"):
                    found.append(f"{path.relative_to(src).as_posix()}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_no_long_function_without_a_reason():
    found = long_functions(ROOT / "src")
    assert not found, (f"functions over {LONG_FUNCTION} lines: split the concerns they mix, or say why they are one "
                       f"in a comment above the def:\n" + "\n".join(found))


def test_the_length_check_counts_lines_and_reads_the_reason(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(LONG_FUNCTION))
    (tmp_path / "m.py").write_text(f"def long():\n{body}\n\n# one story, told once\ndef kept():\n{body}\n\n"
                                   f"def short():\n    pass\n")
    assert long_functions(tmp_path) == [f"m.py:1 long ({LONG_FUNCTION + 1} lines)"]
