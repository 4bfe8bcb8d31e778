"""The tap's layout limits (``tests/layout.py``) over tap_stripe's source: no import
circle (each module imports alone, and none but the entry point imports ``tap.py``), no
class over 300 lines, no module over 450 lines."""

from __future__ import annotations

import pytest
import tap_stripe

from tests.layout import (
    Layout,
    assert_classes_within_limit,
    assert_imports_alone,
    assert_module_within_limit,
)

# The entry point is tap.py itself: no other module may import it.
LAYOUT = Layout(tap_stripe, guarded="tap_stripe.tap", entry_point="tap_stripe.tap")
MODULES = LAYOUT.modules


def test_no_module_but_the_entry_point_imports_tap_py():
    LAYOUT.assert_only_the_entry_point_imports_the_guarded_module()


def test_the_package_imports_form_no_circle():
    LAYOUT.assert_no_import_circle()


@pytest.mark.parametrize("module", [LAYOUT.name(path) for path in MODULES])
def test_each_module_imports_alone(module):
    assert_imports_alone(module)


@pytest.mark.parametrize("path", MODULES, ids=LAYOUT.name)
def test_no_module_is_over_the_line_limit(path):
    assert_module_within_limit(LAYOUT.name(path), path)


@pytest.mark.parametrize("path", MODULES, ids=LAYOUT.name)
def test_no_class_is_over_the_line_limit(path):
    assert_classes_within_limit(LAYOUT.name(path), path)
