"""The registry: every table's kind as data, and kinds not built yet refused by name."""

import pytest
from tap_stripe.tables import (
    BUILT_KINDS,
    TABLES,
    TABLES_BY_NAME,
    NotBuiltError,
    Parent,
    ParentParam,
    ReadMode,
    TableKind,
    TableSpec,
    check_children,
    embedded_children,
    require_built,
    tracks_deletes,
)
from tap_stripe.tap import TapStripe

LINES = TableSpec(
    name="invoiceline",
    path="/v1/invoices/{invoice}/lines",
    read=ReadMode.FULL,
    object="line_item",
    parent=Parent("invoice", "invoice", embedded_field="lines"),
    parent_event_types=("invoice.*",),
)
ITEMS = TableSpec(
    name="subscriptionitem",
    path="/v1/subscription_items",
    read=ReadMode.FULL,
    object="subscription_item",
    parent=Parent("subscription", "subscription", ParentParam.QUERY),
)


def test_todays_tables_are_all_of_a_built_kind():
    assert {spec.kind for spec in TABLES} <= BUILT_KINDS
    for spec in TABLES:
        require_built(spec)
    assert TABLES_BY_NAME["account"].single_object
    assert TABLES_BY_NAME["account"].replication_key is None
    assert TABLES_BY_NAME["charge"].replication_key == "created"
    assert TABLES_BY_NAME["balancetransaction"].object == "balance_transaction"
    assert TABLES_BY_NAME["charge"].object == "charge"
    for spec in TABLES:
        parent_column = spec.parent.column if spec.parent is not None else None
        assert spec.key_properties in (("id",), (parent_column, "id")), spec.name


def test_every_embedded_child_is_read_from_its_parents_nested_list():
    children = [spec for spec in TABLES if spec.kind is TableKind.EMBEDDED_CHILD]
    assert len(children) == 8
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


def test_a_kind_not_built_is_refused_with_its_name():
    require_built(LINES)
    with pytest.raises(NotBuiltError, match=rf"table '{ITEMS.name}': kind '{ITEMS.kind}'"):
        require_built(ITEMS)


def test_the_tap_refuses_such_a_table_when_building_its_stream():
    tap = TapStripe(config={"api_key": "sk_test_layout"}, parse_env_config=False)
    with pytest.raises(NotBuiltError, match="not read yet"):
        tap.stream_for(ITEMS)


def test_a_path_placeholder_needs_the_parent_parameter():
    with pytest.raises(ValueError, match=r"must hold \{invoice\}"):
        TableSpec(name="bad", path="/v1/invoices/{id}/lines", parent=Parent("invoice", "invoice"))
    with pytest.raises(ValueError, match="no parent"):
        TableSpec(name="bad", path="/v1/invoices/{invoice}/lines")
