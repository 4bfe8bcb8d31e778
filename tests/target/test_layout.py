"""The target's layout limits (``tests/layout.py``) over target_duckdb's source: no import
circle (each module imports alone, and none but the entry point ``__main__`` imports
``target.py``), no class over 300 lines, no module over 450 lines."""

from __future__ import annotations

import pytest
import target_duckdb

from tests.layout import (
    Layout,
    assert_classes_within_limit,
    assert_imports_alone,
    assert_module_within_limit,
)

LAYOUT = Layout(target_duckdb, guarded="target_duckdb.target", entry_point="target_duckdb.__main__")
MODULES = LAYOUT.modules


def test_no_module_but_the_entry_point_imports_target_py():
    LAYOUT.assert_only_the_entry_point_imports_the_guarded_module()


def test_the_package_imports_form_no_circle():
    LAYOUT.assert_no_import_circle()


# Importing ``__main__`` runs the target (``python -m target_duckdb``): not imported here.
@pytest.mark.parametrize(
    "module", [LAYOUT.name(path) for path in MODULES if LAYOUT.name(path) != LAYOUT.entry_point]
)
def test_each_module_imports_alone(module):
    assert_imports_alone(module)


@pytest.mark.parametrize("path", MODULES, ids=LAYOUT.name)
def test_no_module_is_over_the_line_limit(path):
    assert_module_within_limit(LAYOUT.name(path), path)


@pytest.mark.parametrize("path", MODULES, ids=LAYOUT.name)
def test_no_class_is_over_the_line_limit(path):
    assert_classes_within_limit(LAYOUT.name(path), path)
