"""The registry: all 60 tables, every kind as data, children checked against their parents."""

import json
from fnmatch import fnmatchcase
from pathlib import Path

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

REPO = Path(__file__).resolve().parents[2]
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


# Tables that take none of their object's events, and why: read whole every run instead
# (account, balance, payment links), or events of a connected account, which the
# platform's /v1/events does not list (connected accounts, persons, capabilities).
EVENTS_NOT_READ = {
    "account": "read whole every run",
    "balance": "read whole every run",
    "paymentlink": "read whole every run",
    "connectedaccount": "a connected account's events are its own",
    "person": "a connected account's events are its own",
    "capability": "a connected account's events are its own",
    "externalaccount": "a connected account's events are its own",
}
# Event types of an object shared by two tables that belong to the other one: a connected
# account's external cards and bank accounts are not a customer's.
OTHER_TABLES_EVENTS = {
    "card": "account.external_account.*",
    "bankaccount": "account.external_account.*",
}


def test_every_tables_event_types_are_its_objects_events_at_the_pinned_version():
    shapes = json.loads((REPO / "stripe_sim" / "shapes.json").read_text())
    carried = {name: set(kind.split("|")) for name, kind in shapes["event_objects"].items()}
    assert set(carried) == set(shapes["event_types"])
    for spec in TABLES:
        objects = set(spec.object.split("|"))
        expected = {name for name, kinds in carried.items() if kinds & objects}
        if spec.name in EVENTS_NOT_READ:
            expected = set()
        others = OTHER_TABLES_EVENTS.get(spec.name, "")
        expected = {name for name in expected if not (others and fnmatchcase(name, others))}
        read = {
            name
            for name in shapes["event_types"]
            if any(fnmatchcase(name, pattern) for pattern in spec.event_types)
        }
        assert read == expected, (spec.name, sorted(read ^ expected))
