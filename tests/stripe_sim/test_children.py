"""Child tables: the rows of their parents' nested lists, paged at the child's endpoint,
embedded as the first page (or only when expanded), changed by mutations with the
parent's event, and their truth with the rows removed."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest

from stripe_sim.children import link
from stripe_sim.runner import SimHandle
from stripe_sim.tables import INCLUDABLE, SPECS
from tests.stripe_sim.conftest import small_sim, walk

PREFIXES = {
    "invoicelineitem": {"il", "sli"},
    "subscriptionitem": {"si"},
    "creditnotelineitem": {"cnli"},
    "quotelineitem": {"li"},
    "checkoutsessionlineitem": {"li"},
    "paymentlinklineitem": {"li"},
    "transferreversal": {"trr"},
    "feerefund": {"fr"},
}
# The children of line items, reversals and refunds (cards, tax ids...: test_kin.py).
CHILD_TABLES = sorted(PREFIXES)
# The parents made from their shape, whose children the simulator makes with them.
DERIVED_PARENTS = ("creditnote", "quote", "checkoutsession", "paymentlink", "transfer")
BACK_REFERENCES = {"subscriptionitem": "subscription", "transferreversal": "transfer"}


def walk_url(sim: SimHandle, url: str, **params: Any) -> list[dict[str, Any]]:
    """Every entry of a nested list's ``url`` (its parent's id in the path or the query)."""
    path, _, query = url.partition("?")
    return walk(sim, path, {**dict(parse_qsl(query)), **params})


def parents(sim: SimHandle, child: str) -> list[dict[str, Any]]:
    """The child's parents as the truth has them (with the registry's expansions)."""
    return sim.objects(link(child)[0])


@pytest.mark.parametrize("child", CHILD_TABLES)
def test_child_endpoints_page_past_ten_and_agree_with_the_embedded_first_page(sim, child):
    _, field, column = link(child)
    owners = parents(sim, child)
    long = [p for p in owners if p[field]["has_more"]]
    assert long, f"some {link(child)[0]} must have more than 10 {field}"
    owner = long[0]
    entries = walk_url(sim, owner[field]["url"], limit=4)
    ids = [entry["id"] for entry in entries]
    assert len(ids) > 10 and len(set(ids)) == len(ids)
    assert owner[field]["data"] == entries[:10]
    path, _, query = owner[field]["url"].partition("?")
    back = sim.request(path, {**dict(parse_qsl(query)), "ending_before": ids[-1], "limit": 3})
    assert [e["id"] for e in back.json()["data"]] == ids[-4:-1]
    truth = {obj["id"]: obj for obj in sim.objects(child)}
    assert [{**entry, column: owner["id"]} for entry in entries] == [truth[i] for i in ids]


@pytest.mark.parametrize("child", CHILD_TABLES)
def test_child_rows_are_the_truth_with_stripe_ids_and_their_parent(sim, child):
    parent_table, field, column = link(child)
    rows = sim.objects(child)
    assert rows and {row["object"] for row in rows} == {SPECS[child].object}
    assert len({row["id"] for row in rows}) == len(rows)
    assert {row["id"].rsplit("_", 1)[0] for row in rows} <= PREFIXES[child]
    owners = {p["id"]: p for p in parents(sim, child)}
    assert {row[column] for row in rows} <= set(owners)
    reference = BACK_REFERENCES.get(child) or ("fee" if child == "feerefund" else None)
    if reference:
        assert all(row[reference] == row[column] for row in rows)
    counts = [len(walk_url(sim, owner[field]["url"], limit=100)) for owner in owners.values()]
    assert sum(counts) == len(rows) == sim.info()["counts"][sim.account_id][child]
    if parent_table in DERIVED_PARENTS:
        assert sum(1 <= n <= 3 for n in counts) > len(counts) / 2
        assert any(n > 10 for n in counts)
        assert any(n == 0 for n in counts) or child == "paymentlinklineitem"


@pytest.mark.parametrize("child", CHILD_TABLES)
def test_child_endpoints_refuse_unknown_parameters_and_missing_parents(sim, child):
    owner = next(p for p in parents(sim, child) if p[link(child)[1]]["data"])
    path, _, query = owner[link(child)[1]]["url"].partition("?")
    params = dict(parse_qsl(query))
    unknown = sim.request(path, {**params, "colour": "red"})
    assert unknown.status == 400
    assert unknown.json()["error"]["message"] == "Received unknown parameter: colour"
    if params:  # an id in the query is a bad parameter: 400, naming it
        (name,) = params
        missing = sim.request(path, {name: "sub_NeverExisted0000"})
        assert (missing.status, missing.json()["error"]["param"]) == (400, name)
    else:
        missing = sim.request(path.replace(owner["id"], "xx_NeverExisted0000"))
        assert missing.status == 404
    assert missing.json()["error"]["code"] == "resource_missing"


@pytest.mark.parametrize("parent", sorted(p for p, f in INCLUDABLE.items() if "line_items" in f))
def test_includable_line_items_appear_only_when_expanded(sim, parent):
    path = SPECS[parent].path
    plain = walk(sim, path, {"limit": 100})
    assert plain and not any("line_items" in obj for obj in plain)
    listed = walk(sim, path, {"limit": 100, "expand[]": "data.line_items"})
    assert [obj["id"] for obj in listed] == [obj["id"] for obj in plain]
    for obj in listed:
        entries = walk_url(sim, obj["line_items"]["url"], limit=100)
        assert obj["line_items"]["data"] == entries[:10]
        assert obj["line_items"]["has_more"] is (len(entries) > 10)
    one = plain[0]["id"]
    assert "line_items" not in sim.request(f"{path}/{one}").json()
    retrieved = sim.request(f"{path}/{one}", {"expand[]": "line_items"}).json()
    assert retrieved["line_items"] == listed[0]["line_items"]
    assert {obj["id"]: obj for obj in sim.objects(parent)}[one] == retrieved


def test_events_never_carry_line_items(fresh_sim):
    sim = fresh_sim
    sim.mutate(quote={"create": 3, "update": 2}, checkoutsession={"update": 2})
    events = walk(sim, "/v1/events", {"limit": 100, "type": "quote.*"})
    events += walk(sim, "/v1/events", {"limit": 100, "type": "checkout.session.*"})
    assert {e["data"]["object"]["object"] for e in events} == {"quote", "checkout.session"}
    assert not any("line_items" in e["data"]["object"] for e in events)


def test_removing_a_subscription_item_updates_the_subscription_with_its_event(fresh_sim):
    sim = fresh_sim
    before = {s["id"]: s for s in sim.objects("subscription")}
    owners = {item["id"]: item["subscription"] for item in sim.objects("subscriptionitem")}
    result = sim.mutate(subscriptionitem={"delete": 1})
    (removed,) = result["delete"]["subscriptionitem"]
    owner_id = owners[removed]
    after = sim.request(f"/v1/subscriptions/{owner_id}").json()
    assert removed not in walk_ids(sim, after, "items")
    had = [item for item, subscription in owners.items() if subscription == owner_id]
    assert walk_ids(sim, after, "items") == [item for item in had if item != removed]
    (event,) = [e for e in events_of(sim, result) if e["data"]["object"]["id"] == owner_id]
    assert event["type"] == "customer.subscription.updated"
    assert event["data"]["object"] == after
    previous = event["data"]["previous_attributes"]["items"]
    assert previous == before[owner_id]["items"]
    if not before[owner_id]["items"]["has_more"]:
        assert removed in {item["id"] for item in previous["data"]}
    assert sim.removed("subscriptionitem") == [
        {"id": removed, "subscription": owner_id, "removed_at": result["now"]}
    ]
    assert removed not in sim.ids("subscriptionitem")


def test_invoice_lines_change_on_drafts_with_their_totals(fresh_sim):
    sim = fresh_sim
    result = sim.mutate(invoicelineitem={"create": 2, "update": 1, "delete": 1})
    touched = [i for op in ("create", "update", "delete") for i in result[op]["invoicelineitem"]]
    assert len(touched) == 4
    events = events_of(sim, result)
    assert [e["type"] for e in events] == ["invoice.updated"] * 4
    assert all("lines" in e["data"]["previous_attributes"] for e in events)
    latest = {e["data"]["object"]["id"]: e["data"]["object"] for e in events}
    for invoice_id, invoice in latest.items():
        assert sim.request(f"/v1/invoices/{invoice_id}").json() == invoice
        assert invoice["status"] == "draft"
        lines = walk_ids(sim, invoice, "lines", objects=True)
        assert invoice["total"] == invoice["amount_due"] == sum(line["amount"] for line in lines)
    (removed,) = result["delete"]["invoicelineitem"]
    (gone,) = sim.removed("invoicelineitem")
    assert gone["id"] == removed and removed not in sim.ids("invoicelineitem")
    created = set(result["create"]["invoicelineitem"]) - {removed}
    assert created <= set(sim.ids("invoicelineitem"))


def test_a_deleted_draft_invoice_carries_its_lines_and_they_count_as_removed(fresh_sim):
    sim = fresh_sim
    before = {i["id"]: i for i in sim.objects("invoice")}
    result = sim.mutate(invoice={"delete": 1})
    (invoice_id,) = result["delete"]["invoice"]
    (event,) = events_of(sim, result)
    assert event["type"] == "invoice.deleted"
    assert event["data"]["object"]["lines"] == before[invoice_id]["lines"]
    lines = [line["id"] for line in before[invoice_id]["lines"]["data"]]
    removed = sim.removed("invoicelineitem")
    assert [r["id"] for r in removed][: len(lines)] == lines
    assert {(r["invoice"], r["removed_at"]) for r in removed} == {(invoice_id, result["now"])}
    assert not set(lines) & set(sim.ids("invoicelineitem"))
    assert sim.request(f"/v1/invoices/{invoice_id}/lines").status == 404


def test_a_transfer_reversed_and_a_fee_refunded_add_a_child_with_the_parents_event(fresh_sim):
    sim = fresh_sim
    before = {t["id"]: t for t in sim.objects("transfer")}
    result = sim.mutate(transferreversal={"create": 1}, feerefund={"create": 1})
    events = {e["type"]: e for e in events_of(sim, result)}
    assert set(events) == {"transfer.reversed", "application_fee.refunded"}
    transfer = events["transfer.reversed"]["data"]["object"]
    (reversal,) = result["create"]["transferreversal"]
    reversals = walk_ids(sim, transfer, "reversals", objects=True)
    assert reversals[-1]["id"] == reversal and reversals[-1]["transfer"] == transfer["id"]
    assert transfer["amount_reversed"] == sum(r["amount"] for r in reversals) <= transfer["amount"]
    previous = events["transfer.reversed"]["data"]["previous_attributes"]
    assert previous["reversals"] == before[transfer["id"]]["reversals"]
    assert previous["amount_reversed"] == before[transfer["id"]]["amount_reversed"]
    fee = events["application_fee.refunded"]["data"]["object"]
    (refund,) = result["create"]["feerefund"]
    assert refund in walk_ids(sim, fee, "refunds")
    assert fee["amount_refunded"] == sum(r["amount"] for r in walk_ids(sim, fee, "refunds", True))


def test_quote_and_payment_link_line_items_change_without_events(fresh_sim):
    sim = fresh_sim
    result = sim.mutate(quotelineitem={"create": 1}, paymentlinklineitem={"create": 1})
    assert result["events"] == []
    (quote_item,) = result["create"]["quotelineitem"]
    (link_item,) = result["create"]["paymentlinklineitem"]
    quotes = {row["id"]: row["quote"] for row in sim.objects("quotelineitem")}
    quote = sim.request(f"/v1/quotes/{quotes[quote_item]}", {"expand[]": "line_items"}).json()
    assert quote["status"] == "draft"
    assert quote_item in walk_ids(sim, quote, "line_items")
    entries = walk_ids(sim, quote, "line_items", objects=True)
    assert quote["amount_total"] == sum(item["amount_total"] for item in entries)
    links = {row["id"]: row["payment_link"] for row in sim.objects("paymentlinklineitem")}
    items = walk_url(sim, f"/v1/payment_links/{links[link_item]}/line_items")
    assert items[-1]["id"] == link_item


def test_child_mutations_stripe_cannot_make_are_refused(fresh_sim):
    sim = fresh_sim
    for body in (
        {"transferreversal": {"delete": 1}},
        {"feerefund": {"update": 1}},
        {"creditnotelineitem": {"create": 1}},
        {"checkoutsessionlineitem": {"delete": 1}},
        {"subscriptionitem": {"remove": 1}},
    ):
        result = sim.request("/_sim/mutate", method="POST", body=body, auth=False)
        assert result.status == 400, body
        assert "error" in result.json()


def test_children_and_their_mutations_are_deterministic(sim):
    bodies = {child: admin_bytes(sim, child) for child in CHILD_TABLES}
    body = {child: {"create": 2} for child in ("subscriptionitem", "feerefund", "quotelineitem")}
    body |= {"invoicelineitem": {"update": 1, "delete": 1}, "paymentlinklineitem": {"delete": 1}}
    done = []
    for _ in range(2):
        with small_sim() as again:
            assert {child: admin_bytes(again, child) for child in CHILD_TABLES} == bodies
            answer = again.mutate(body)
            answer.pop("now")
            done.append(answer)
    assert done[0] == done[1]
    assert (
        sum(len(ids) for op in ("create", "update", "delete") for ids in done[0][op].values()) == 9
    )


def admin_bytes(sim: SimHandle, stream: str) -> bytes:
    result = sim.request(f"/_sim/objects/{stream}", auth=False)
    assert result.status == 200
    return result.body


def events_of(sim: SimHandle, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The events a mutation appended, in the order it appended them."""
    return [sim.request(f"/v1/events/{e['id']}").json() for e in result["events"]]


def walk_ids(sim: SimHandle, parent: dict[str, Any], field: str, objects: bool = False) -> Any:
    """The ids (or entries) of a parent's complete list ``field``."""
    entries = walk_url(sim, parent[field]["url"], limit=100)
    return entries if objects else [entry["id"] for entry in entries]
