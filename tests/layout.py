"""A package's layout limits, checked over its source so that they stay true: no import
circle (each module imports alone, and only the entry point imports the guarded module),
no class over 300 lines, no module over 450 lines. ``tests/tap/test_layout.py`` and
``tests/target/test_layout.py`` apply them to the two packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

MAX_MODULE_LINES = 450
MAX_CLASS_LINES = 300


@dataclass(frozen=True)
class Layout:
    """The modules of ``package``; only ``entry_point`` may import ``guarded``."""

    package: ModuleType
    guarded: str
    entry_point: str

    @property
    def modules(self) -> list[Path]:
        return sorted(Path(self.package.__file__ or "").parent.glob("*.py"))

    def name(self, path: Path) -> str:
        root = self.package.__name__
        return root if path.stem == "__init__" else f"{root}.{path.stem}"

    def imports(self, path: Path) -> set[str]:
        """The package's modules ``path`` imports, at any level (TYPE_CHECKING included)."""
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        return {name for name in found if name.startswith(f"{self.package.__name__}.")}

    def assert_only_the_entry_point_imports_the_guarded_module(self) -> None:
        importers = [
            self.name(path)
            for path in self.modules
            if self.name(path) != self.entry_point and self.guarded in self.imports(path)
        ]
        assert not importers, f"{importers} import {self.guarded}: only the entry point may"

    def assert_no_import_circle(self) -> None:
        names = {self.name(p) for p in self.modules}
        graph = {self.name(path): self.imports(path) & names for path in self.modules}
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


def assert_imports_alone(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{module} does not import alone:\n{result.stderr}"


def assert_module_within_limit(name: str, path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{name} has {lines} lines (> {MAX_MODULE_LINES})"


def assert_classes_within_limit(name: str, path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ClassDef):
            lines = node.end_lineno - node.lineno + 1
            assert lines <= MAX_CLASS_LINES, (
                f"{name}.{node.name} has {lines} lines (> {MAX_CLASS_LINES})"
            )
