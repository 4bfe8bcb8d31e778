"""The simulator serves the tap's registry and refuses a table it cannot synthesize."""

from __future__ import annotations

import dataclasses

import pytest
from tap_stripe.tables import TABLES, Parent, TableSpec

from stripe_sim.nested import NESTED_ROUTES
from stripe_sim.tables import PLURALS, STREAMS, check_registry


def test_every_registry_table_is_served():
    assert set(STREAMS) == {spec.name for spec in TABLES}
    lists = {spec.path for spec in TABLES if not spec.single_object}
    assert {f"/v1/{plural}" for plural in PLURALS} == lists
    templates = {(s.name, f, t) for s in TABLES for f, t in s.nested_lists.items()}
    assert {(r.table, r.field, r.template) for r in NESTED_ROUTES} == templates


def test_a_registry_table_whose_object_has_no_shape_stops_the_simulator():
    widget = TableSpec(name="widget", path="/v1/widgets")
    with pytest.raises(RuntimeError, match="table 'widget': object 'widget' has no shape"):
        check_registry((*TABLES, widget))


def test_a_registry_table_of_a_kind_not_served_stops_the_simulator():
    lines = TableSpec(
        name="charge",
        path="/v1/invoices/{invoice}/lines",
        parent=Parent("invoice", "invoice", embedded_field="lines"),
    )
    tables = tuple(lines if spec.name == "charge" else spec for spec in TABLES)
    with pytest.raises(RuntimeError, match="kind 'embedded_child'"):
        check_registry(tables)


def test_a_nested_list_without_its_entry_object_stops_the_simulator():
    charge = next(spec for spec in TABLES if spec.name == "charge")
    refunds = dataclasses.replace(charge, nested_lists={"refunds": "/v1/refunds?charge={id}"})
    tables = tuple(refunds if spec.name == "charge" else spec for spec in TABLES)
    with pytest.raises(RuntimeError, match="nested list 'refunds' has no object"):
        check_registry(tables)
