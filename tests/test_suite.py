"""The test suite's own shape: test files share code through helpers.py (and fixtures through conftest.py),
never by importing each other or conftest."""
from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_files_import_nothing_from_each_other_or_conftest():
    found = []
    for path in sorted(TESTS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.name}:{node.lineno} imports {name}" for name in names
                      if name == "conftest" or name.startswith("test_")]
    assert not found, "shared test code lives in tests/helpers.py:\n" + "\n".join(found)
