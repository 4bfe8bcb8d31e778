"""The target's layout limits, checked over target_duckdb's source so that they stay true:
no import circle (each module imports alone, and none but the entry point ``__main__``
imports ``target.py``), no class over 300 lines, no module over 450 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import target_duckdb

PACKAGE = Path(target_duckdb.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 300
TARGET = "target_duckdb.target"
ENTRY_POINT = "target_duckdb.__main__"


def _name(path: Path) -> str:
    return "target_duckdb" if path.stem == "__init__" else f"target_duckdb.{path.stem}"


def _imports(path: Path) -> set[str]:
    """The target_duckdb modules ``path`` imports, at any level (TYPE_CHECKING included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("target_duckdb.")}


def test_no_module_but_the_entry_point_imports_target_py():
    importers = [
        _name(path) for path in MODULES if _name(path) != ENTRY_POINT and TARGET in _imports(path)
    ]
    assert not importers, f"{importers} import {TARGET}: only the entry point may"


def test_the_package_imports_form_no_circle():
    graph = {_name(path): _imports(path) & {_name(p) for p in MODULES} for path in MODULES}
    done: set[str] = set()

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, f"import circle: {' -> '.join((*trail, module))}"
        if module in done:
            return
        for imported in sorted(graph[module]):
            visit(imported, (*trail, module))
        done.add(module)

    for module in sorted(graph):
        visit(module, ())


# Importing ``__main__`` runs the target (``python -m target_duckdb``): not imported here.
@pytest.mark.parametrize("module", [_name(path) for path in MODULES if _name(path) != ENTRY_POINT])
def test_each_module_imports_alone(module):
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{module} does not import alone:\n{result.stderr}"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_is_over_the_line_limit(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{_name(path)} has {lines} lines (> {MAX_MODULE_LINES})"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_class_is_over_the_line_limit(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            lines = node.end_lineno - node.lineno + 1
            assert lines <= MAX_CLASS_LINES, (
                f"{_name(path)}.{node.name} has {lines} lines (> {MAX_CLASS_LINES})"
            )
