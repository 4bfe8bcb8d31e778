"""The registry: all 60 tables, every kind as data, children checked against their parents."""

import pytest
from tap_stripe.tables import (
    TABLES,
    TABLES_BY_NAME,
    Parent,
    ParentParam,
    ReadMode,
    TableKind,
    TableSpec,
    check_children,
    embedded_children,
    tracks_deletes,
)

LINES = TableSpec(
    name="invoiceline",
    path="/v1/invoices/{invoice}/lines",
    read=ReadMode.FULL,
    object="line_item",
    parent=Parent("invoice", "invoice", embedded_field="lines"),
)
ITEMS = TableSpec(
    name="subscriptionitem",
    path="/v1/subscription_items",
    read=ReadMode.FULL,
    object="subscription_item",
    parent=Parent("subscription", "subscription", ParentParam.QUERY),
)


def test_the_registry_holds_all_sixty_tables_of_every_kind():
    assert len(TABLES) == 60
    assert {spec.kind for spec in TABLES} == set(TableKind)
    assert TABLES_BY_NAME["account"].single_object
    assert TABLES_BY_NAME["account"].replication_key is None
    assert TABLES_BY_NAME["charge"].replication_key == "created"
    assert TABLES_BY_NAME["balancetransaction"].object == "balance_transaction"
    assert TABLES_BY_NAME["charge"].object == "charge"
    for spec in TABLES:
        parent_column = spec.parent.column if spec.parent is not None else None
        expected = (("id",), (parent_column, "id"), (spec.snapshot_field,))
        assert spec.key_properties in expected, spec.name


def test_every_embedded_child_is_read_from_its_parents_nested_list():
    children = [spec for spec in TABLES if spec.kind is TableKind.EMBEDDED_CHILD]
    assert len(children) == 12
    for child in children:
        parent = TABLES_BY_NAME[child.parent.table]
        assert child in embedded_children(parent.name)
        assert child.parent.embedded_field in parent.nested_lists
        assert child.replication_key is None
        assert tracks_deletes(child) == bool(parent.event_types)
    assert [spec.name for spec in embedded_children("invoice")] == ["invoicelineitem"]
    assert TABLES_BY_NAME["invoicelineitem"].key_properties == ("invoice", "id")


def test_a_child_whose_parent_does_not_page_its_path_is_refused():
    tables = dict(TABLES_BY_NAME)
    tables["invoicelineitem"] = TableSpec(
        name="invoicelineitem",
        path="/v1/invoices/{invoice}/line_items",
        object="line_item",
        parent=Parent("invoice", "invoice", embedded_field="lines", column="invoice"),
    )
    with pytest.raises(ValueError, match=r"must page 'lines' from /v1/invoices/\{id\}/line_items"):
        check_children(tables)
    tables["invoicelineitem"] = TableSpec(
        name="invoicelineitem",
        path="/v1/invoices/{invoice}/lines",
        parent=Parent("nosuchtable", "invoice", embedded_field="lines", column="invoice"),
    )
    with pytest.raises(ValueError, match="parent 'nosuchtable' must be a top-level table"):
        check_children(tables)


def test_kinds_follow_from_read_mode_and_parent():
    assert LINES.kind is TableKind.EMBEDDED_CHILD
    assert ITEMS.kind is TableKind.PER_PARENT_CHILD
    newest = TableSpec(name="payout", path="/v1/payouts", read=ReadMode.NEWEST_FIRST)
    assert newest.kind is TableKind.NEWEST_FIRST
    assert newest.replication_key == "created"
    assert TableSpec(name="x", path="/v1/x", read=ReadMode.FULL).replication_key is None


def test_a_path_placeholder_needs_the_parent_parameter():
    with pytest.raises(ValueError, match=r"must hold \{invoice\}"):
        TableSpec(name="bad", path="/v1/invoices/{id}/lines", parent=Parent("invoice", "invoice"))
    with pytest.raises(ValueError, match="no parent"):
        TableSpec(name="bad", path="/v1/invoices/{invoice}/lines")
