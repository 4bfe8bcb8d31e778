"""The simulator serves the tap's registry and refuses a table it cannot synthesize."""

from __future__ import annotations

import dataclasses

import pytest
from tap_stripe.tables import TABLES, Parent, ParentParam, TableKind, TableSpec

from stripe_sim import tables
from stripe_sim.nested import NESTED_ROUTES
from stripe_sim.tables import CHILDREN, PLURALS, STREAMS, check_registry


def test_every_registry_table_is_served():
    assert set(STREAMS) == {spec.name for spec in TABLES}
    lists = {spec.path for spec in TABLES if not spec.single_object and spec.parent is None}
    assert {f"/v1/{plural}" for plural in PLURALS} == lists
    templates = {(s.name, f, t) for s in TABLES for f, t in s.nested_lists.items()}
    assert {(r.table, r.field, r.template) for r in NESTED_ROUTES} == templates


def test_children_are_served_through_their_parents_nested_lists():
    children = [spec for spec in TABLES if spec.kind is TableKind.EMBEDDED_CHILD]
    assert children
    routes = {(r.table, r.field) for r in NESTED_ROUTES}
    for spec in children:
        assert spec.parent is not None
        assert (spec.parent.table, spec.parent.embedded_field) in routes
        assert spec.name in CHILDREN[spec.parent.table]
        assert spec.path.removeprefix("/v1/") not in PLURALS


def test_a_registry_table_whose_object_has_no_shape_stops_the_simulator():
    widget = TableSpec(name="widget", path="/v1/widgets")
    with pytest.raises(RuntimeError, match="table 'widget': object 'widget' has no shape"):
        check_registry((*TABLES, widget))


def test_every_kind_of_the_registry_is_served():
    assert {spec.kind for spec in TABLES} <= tables.SERVED_KINDS
    assert set(check_registry(TABLES)) == {spec.name for spec in TABLES}


def test_a_registry_table_of_a_kind_not_served_stops_the_simulator(monkeypatch):
    notes = TableSpec(
        name="creditnote_by_invoice",
        path="/v1/credit_notes",
        object="credit_note",
        parent=Parent("invoice", "invoice", ParentParam.QUERY, column="invoice"),
    )
    assert notes.kind is TableKind.PER_PARENT_CHILD
    served = tables.SERVED_KINDS - {TableKind.PER_PARENT_CHILD}
    monkeypatch.setattr(tables, "SERVED_KINDS", served)
    with pytest.raises(RuntimeError, match="'creditnote_by_invoice' is of kind 'per_parent_child'"):
        check_registry((*TABLES, notes))


def test_a_child_its_parent_does_not_page_stops_the_simulator():
    refunds = TableSpec(
        name="chargerefund",
        path="/v1/charges/{charge}/refunds",
        object="refund",
        parent=Parent("charge", "charge", embedded_field="refunds", column="charge"),
    )
    with pytest.raises(RuntimeError, match="'chargerefund': its parent 'charge' must page"):
        check_registry((*TABLES, refunds))


def test_a_nested_list_without_its_entry_object_stops_the_simulator():
    charge = next(spec for spec in TABLES if spec.name == "charge")
    refunds = dataclasses.replace(charge, nested_lists={"refunds": "/v1/refunds?charge={id}"})
    tables = tuple(refunds if spec.name == "charge" else spec for spec in TABLES)
    with pytest.raises(RuntimeError, match="nested list 'refunds' has no object"):
        check_registry(tables)
