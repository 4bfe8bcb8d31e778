"""Tables of an embedded list (invoice lines, subscription items, line items of quotes...):
rows of the parent's completed list, written with the parent, removed rows tombstoned."""

from __future__ import annotations

import time

from tap_stripe.changes import DELETED_AT

from tests.tap.conftest import base_config, run_tap
from tests.tap.fake_stripe import FakeStripe, make_object, stripe_list


def line(n: int) -> dict:
    return {"id": f"il_{n:06d}", "object": "line_item", "amount": n, "livemode": False}


def invoice_with(lines: list[dict], created: int, shown: int = 10) -> dict:
    """An invoice whose embedded ``lines`` hold the first ``shown`` of ``lines``, as Stripe."""
    invoice = make_object("invoice", created)
    url = f"/v1/invoices/{invoice['id']}/lines"
    invoice["lines"] = stripe_list(lines[:shown], url, has_more=len(lines) > shown)
    return invoice


def recent_state(stream: str, now: int, **extra: object) -> dict:
    entry = {
        "replication_key": "created",
        "replication_key_value": now - 60,
        "events_cursor": now - 600,
        **extra,
    }
    return {"bookmarks": {stream: entry}}


def test_a_full_sync_writes_every_line_of_every_invoice_with_its_invoice_id(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    long_lines = sorted((line(n) for n in range(12)), key=lambda x: x["id"], reverse=True)
    long = invoice_with(long_lines, now - 100)
    short = invoice_with([line(100)], now - 200)
    empty = invoice_with([], now - 300)
    stripe.add("invoice", [long, short, empty])
    stripe.nested[long["id"]] = long_lines

    result = run_tap(base_config(), streams=("invoice", "invoicelineitem"))

    assert result.error is None
    rows = result.records["invoicelineitem"]
    assert sorted((r["invoice"], r["id"]) for r in rows) == sorted(
        [(long["id"], x["id"]) for x in long_lines] + [(short["id"], "il_000100")]
    )
    assert [r["id"] for r in result.records["invoice"]] == [long["id"], short["id"], empty["id"]]
    schema = result.schemas["invoicelineitem"][0]
    assert schema["key_properties"] == ["_stripe_account", "invoice", "id"]
    assert schema["schema"]["properties"]["invoice"] == {"type": "string"}
    first_line = next(
        i for i, m in enumerate(result.messages) if m.get("stream") == "invoicelineitem"
    )
    assert result.messages[first_line]["type"] == "SCHEMA"
    lines_paths = [path for path, _ in stripe.requests if path.endswith("/lines")]
    assert lines_paths == [f"/v1/invoices/{long['id']}/lines"], "only the cut list is paged"
    state = result.entry("invoice")
    assert state["written_tables"] == ["invoice", "invoicelineitem"]


def test_a_child_alone_is_written_from_its_parents_pages_without_the_parents_rows(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    stripe.add("invoice", [invoice_with([line(1), line(2)], now - 100)])

    result = run_tap(base_config(), streams=("invoicelineitem",))

    assert result.error is None
    assert "invoice" not in result.records
    assert "invoice" not in result.schemas
    assert [r["id"] for r in result.records["invoicelineitem"]] == ["il_000001", "il_000002"]
    assert result.entry("invoice")["written_tables"] == ["invoicelineitem"]


def test_a_child_selected_after_its_parent_has_a_bookmark_rereads_the_parent_once(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    old = invoice_with([line(1)], now - 86_400)
    stripe.add("invoice", [old])

    before = recent_state("invoice", now)
    result = run_tap(base_config(), state=before, streams=("invoice", "invoicelineitem"))

    assert result.error is None
    assert [r["id"] for r in result.records["invoicelineitem"]] == ["il_000001"]
    first_list = stripe.list_requests("invoice")[0]
    assert "created[gte]" not in first_list or int(first_list["created[gte]"]) < now - 86_400
    after = result.last_state
    again = run_tap(base_config(), state=after, streams=("invoice", "invoicelineitem"))
    assert "invoicelineitem" not in again.records, "the next run is incremental again"


def test_a_line_removed_from_a_draft_invoice_gets_a_tombstone(stripe: FakeStripe) -> None:
    now = int(time.time())
    kept, removed = line(1), line(2)
    invoice = invoice_with([kept], now - 86_400)
    stripe.add("invoice", [invoice])
    before = {**invoice, "lines": stripe_list([kept, removed], invoice["lines"]["url"])}
    stripe.add_event(
        "invoice.updated",
        invoice,
        created=now - 100,
        previous={"lines": {"data": before["lines"]["data"]}},
    )

    result = run_tap(
        base_config(),
        state=recent_state("invoice", now, written_tables=["invoice", "invoicelineitem"]),
        streams=("invoice", "invoicelineitem"),
    )

    assert result.error is None
    rows = {r["id"]: r for r in result.records["invoicelineitem"]}
    assert rows["il_000001"].get(DELETED_AT) is None
    assert rows["il_000002"][DELETED_AT] is not None
    assert rows["il_000002"]["invoice"] == invoice["id"]
    assert [r["id"] for r in result.records["invoice"]] == [invoice["id"]]


def test_the_lines_of_a_deleted_invoice_get_tombstones(stripe: FakeStripe) -> None:
    now = int(time.time())
    invoice = invoice_with([line(1), line(2)], now - 86_400)
    stripe.add_event("invoice.deleted", invoice, created=now - 100)

    result = run_tap(
        base_config(),
        state=recent_state("invoice", now, written_tables=["invoice", "invoicelineitem"]),
        streams=("invoice", "invoicelineitem"),
    )

    assert result.error is None
    rows = result.records["invoicelineitem"]
    assert sorted(r["id"] for r in rows) == ["il_000001", "il_000002"]
    assert all(r[DELETED_AT] for r in rows)
    assert result.records["invoice"][0][DELETED_AT]


def test_line_items_left_out_unless_expanded_are_requested_with_the_list(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    quote = make_object("quote", now - 100)
    items = [{"id": f"li_{n}", "object": "item"} for n in range(3)]
    quote["line_items"] = stripe_list(items, f"/v1/quotes/{quote['id']}/line_items")
    stripe.add("quote", [quote])

    result = run_tap(base_config(), streams=("quotelineitem",))

    assert result.error is None
    assert all(p["expand[]"] == ["data.line_items"] for p in stripe.list_requests("quote"))
    assert [(r["quote"], r["id"]) for r in result.records["quotelineitem"]] == [
        (quote["id"], item["id"]) for item in items
    ]


def test_children_of_a_table_read_whole_retire_under_its_version(stripe: FakeStripe) -> None:
    link = make_object("paymentlink", 0)
    link["line_items"] = stripe_list(
        [{"id": "li_1", "object": "item"}], f"/v1/payment_links/{link['id']}/line_items"
    )
    stripe.add("paymentlink", [link])

    result = run_tap(base_config(), streams=("paymentlinklineitem",))

    assert result.error is None
    messages = [m for m in result.messages if m.get("stream") == "paymentlinklineitem"]
    version = messages[-1]
    assert version["type"] == "ACTIVATE_VERSION"
    assert all(m["version"] == version["version"] for m in messages if m["type"] == "RECORD")
    assert not [m for m in result.messages if m.get("stream") == "paymentlink"]
