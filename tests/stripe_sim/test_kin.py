"""The children listed per parent (payment methods, setup attempts, persons, a payout's
balance transactions...) and the lists Stripe includes only when expanded (a customer's
sources and tax ids, an account's external accounts): paging, filters, joins, errors,
the balance, and their mutations with their events and truth."""

from __future__ import annotations

from typing import Any

import pytest

from stripe_sim.per_parent import KIN_TABLES, MANUAL_PAYOUT
from stripe_sim.runner import SimHandle
from stripe_sim.tables import SPECS
from tests.stripe_sim.conftest import small_sim, walk

PREFIXES = {
    "paymentmethod": "pm",
    "customerbalancetransaction": "cbtxn",
    "customercashbalancetransaction": "ccsbtxn",
    "setupattempt": "setatt",
    "person": "person",
    "usagerecordsummary": "sis",
    "payoutbalancetransaction": "txn",
    "card": "card",
    "bankaccount": "ba",
    "taxid": "txi",
}
# Includable list -> (parent table, child tables made of it).
INCLUDED = {
    "sources": ("customer", ("card", "bankaccount")),
    "tax_ids": ("customer", ("taxid",)),
    "external_accounts": ("connectedaccount", ("externalaccount",)),
}


def column(child: str) -> str:
    parent = SPECS[child].parent
    assert parent is not None
    return parent.column


def listing(child: str, parent_id: str) -> tuple[str, dict[str, Any]]:
    """The path and query listing ``child`` under one parent."""
    spec = SPECS[child]
    parent = spec.parent
    assert parent is not None
    path = spec.path.replace(f"{{{parent.parameter}}}", parent_id)
    query = {} if f"{{{parent.parameter}}}" in spec.path else {parent.parameter: parent_id}
    return path, {**query, **spec.filters}


def by_parent(rows: list[dict[str, Any]], name: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row[name], []).append(row)
    return found


@pytest.mark.parametrize("child", KIN_TABLES)
def test_per_parent_lists_page_and_are_the_truth(sim, child):
    name = column(child)
    truth = sim.objects(child)
    assert truth and len({(row[name], row["id"]) for row in truth}) == len(truth)
    if child in PREFIXES:
        assert {row["id"].split("_")[0] for row in truth} == {PREFIXES[child]}
    groups = by_parent(truth, name)
    assert len(groups) > 1
    longest = max(groups, key=lambda p: len(groups[p]))
    path, query = listing(child, longest)
    listed = walk(sim, path, {**query, "limit": 3})
    assert [{**row, name: longest} for row in listed] == groups[longest]
    assert sum(len(rows) for rows in groups.values()) == sim.info()["counts"][sim.account_id][child]
    # Paged past Stripe's default 10 (at most 3 payment methods; a usage summary per month).
    if child not in ("capability", "paymentmethod", "usagerecordsummary"):
        assert len(groups[longest]) > 10


def test_children_join_their_parents(sim):
    customers = set(sim.ids("customer"))
    for child in ("paymentmethod", "customerbalancetransaction", "customercashbalancetransaction"):
        rows = sim.objects(child)
        assert {row["customer"] for row in rows} <= customers
    per_customer = by_parent(sim.objects("paymentmethod"), "customer")
    assert max(len(rows) for rows in per_customer.values()) <= 3
    assert len(per_customer) < len(customers)  # some customers have none
    balances = {c["id"]: c["balance"] for c in sim.objects("customer")}
    for customer, moves in by_parent(sim.objects("customerbalancetransaction"), "customer").items():
        assert moves[0]["ending_balance"] == balances[customer]  # newest first
        assert sum(m["amount"] for m in moves) == balances[customer]
    intents = {s["id"]: s for s in sim.objects("setupintent")}
    for intent, attempts in by_parent(sim.objects("setupattempt"), "setup_intent").items():
        assert intents[intent]["latest_attempt"] == attempts[0]["id"]
    accounts = {a["id"]: a for a in sim.objects("connectedaccount")}
    for account, caps in by_parent(sim.objects("capability"), "account").items():
        assert {c["id"]: c["status"] for c in caps} == accounts[account]["capabilities"]
        assert {"card_payments", "transfers"} <= {c["id"] for c in caps}
    assert {p["account"] for p in sim.objects("person")} <= set(accounts)


def test_usage_summaries_belong_to_metered_items(sim):
    items = {item["id"]: item for item in sim.objects("subscriptionitem")}
    summaries = by_parent(sim.objects("usagerecordsummary"), "subscription_item")
    assert summaries
    for item_id, rows in summaries.items():
        assert items[item_id]["price"]["recurring"]["usage_type"] == "metered"
        assert all(row["subscription_item"] == item_id for row in rows)
        assert rows[0]["invoice"] is None and rows[0]["period"]["end"] is None
    licensed = next(i for i in items if i not in summaries)
    path = f"/v1/subscription_items/{licensed}/usage_record_summaries"
    assert sim.request(path).json()["data"] == []


def test_payout_transactions_are_in_the_ledger_and_the_balance_sums_it(sim):
    ledger = {row["id"]: row for row in sim.objects("balancetransaction")}
    linked = sim.objects("payoutbalancetransaction")
    payouts = {p["id"]: p for p in sim.objects("payout")}
    for payout_id, rows in by_parent(linked, "payout").items():
        payout = payouts[payout_id]
        assert payout["automatic"] and payout["status"] == "paid"
        assert all(
            {k: v for k, v in row.items() if k != "payout"} == ledger[row["id"]] for row in rows
        )
        own = [row for row in rows if row["type"] == "payout"]
        assert [row["id"] for row in own] == [payout["balance_transaction"]]
        assert sum(row["net"] for row in rows) == 0  # it pays out what it lists
    assert "payout" not in next(iter(ledger.values()))
    balance = sim.request("/v1/balance").json()
    assert balance["object"] == "balance" and balance == sim.objects("balance")[0]
    available = sum(t["net"] for t in ledger.values() if t["status"] == "available")
    pending = sum(t["net"] for t in ledger.values() if t["status"] == "pending")
    assert balance["available"][0]["amount"] == available > 0
    assert balance["pending"][0]["amount"] == pending


def test_sources_filter_by_object_and_tax_ids_page(sim):
    customers = walk(sim, "/v1/customers", {"limit": 100, "expand[]": "data.sources"})
    long = next(c for c in customers if c["sources"]["has_more"])
    everything = walk(sim, f"/v1/customers/{long['id']}/sources", {"limit": 7})
    assert len(everything) > 10 and everything[:10] == long["sources"]["data"]
    cards = walk(sim, f"/v1/customers/{long['id']}/sources", {"object": "card", "limit": 4})
    assert cards == [s for s in everything if s["object"] == "card"]
    assert {c["customer"] for c in cards} == {long["id"]}
    truth = {row["id"] for row in sim.objects("card") if row["customer"] == long["id"]}
    assert {c["id"] for c in cards} == truth


@pytest.mark.parametrize("field", sorted(INCLUDED))
def test_includable_lists_appear_only_when_expanded(sim, field):
    parent, children = INCLUDED[field]
    path = SPECS[parent].path
    plain = walk(sim, path, {"limit": 100})
    assert plain and not any(field in obj for obj in plain)
    listed = walk(sim, path, {"limit": 100, "expand[]": f"data.{field}"})
    assert [obj["id"] for obj in listed] == [obj["id"] for obj in plain]
    rows = [row for child in children for row in sim.objects(child)]
    name = column(children[0])
    for obj in listed:
        entries = walk(sim, obj[field]["url"], {"limit": 100})
        assert obj[field]["data"] == entries[:10]
        assert obj[field]["has_more"] is (len(entries) > 10)
        mine = {row["id"] for row in rows if row[name] == obj["id"]}
        assert {entry["id"] for entry in entries} == mine
    assert any(obj[field]["has_more"] for obj in listed)
    one = plain[0]["id"]
    retrieved = sim.request(f"{path}/{one}", {"expand[]": field}).json()
    assert retrieved[field] == listed[0][field]


def test_errors_of_per_parent_lists(sim):
    customer = sim.ids("customer")[0]
    bad = sim.request(f"/v1/customers/{customer}/payment_methods", {"colour": "red"})
    assert bad.status == 400 and "colour" in bad.json()["error"]["message"]
    missing = sim.request("/v1/customers/cus_nope/payment_methods")
    assert missing.status == 404 and missing.json()["error"]["code"] == "resource_missing"
    assert sim.request("/v1/customers/cus_nope/sources").status == 404
    assert sim.request("/v1/accounts/acct_nope/persons").status == 404
    attempts = sim.request("/v1/setup_attempts")
    assert attempts.status == 400 and attempts.json()["error"]["param"] == "setup_intent"
    # A parent named in the query is a bad parameter, as Stripe answers it.
    for path, query in (
        ("/v1/setup_attempts", {"setup_intent": "seti_nope"}),
        ("/v1/balance_transactions", {"payout": "po_nope"}),
    ):
        unknown = sim.request(path, query)
        assert unknown.status == 400 and unknown.json()["error"]["code"] == "resource_missing"
    manual = next(p for p in sim.objects("payout") if not p["automatic"])
    refused = sim.request("/v1/balance_transactions", {"payout": manual["id"]})
    assert refused.status == 400 and refused.json()["error"]["message"] == MANUAL_PAYOUT
    usage = sim.request("/v1/subscription_items/si_nope/usage_record_summaries")
    assert usage.status == 404
    assert sim.request("/v1/balance", {"limit": 3}).status == 400


def test_children_are_retrieved_at_their_registry_paths(sim):
    for child in (
        "card",
        "bankaccount",
        "taxid",
        "paymentmethod",
        "customercashbalancetransaction",
    ):
        row = sim.objects(child)[0]
        got = sim.request(SPECS[child].retrieve_path(row))
        assert got.status == 200 and got.json() == row
    ghost = SPECS["card"].retrieve_path({"customer": sim.ids("customer")[0], "id": "card_nope"})
    assert sim.request(ghost).status == 404


def events_of(sim: SimHandle, result: dict[str, Any]) -> list[dict[str, Any]]:
    ids = {e["id"] for e in result["events"]}
    return [e for e in walk(sim, "/v1/events", {"limit": 100}) if e["id"] in ids]


def test_sources_and_tax_ids_change_with_their_own_events(fresh_sim):
    sim = fresh_sim
    ops = {"create": 1, "update": 1, "delete": 1}
    result = sim.mutate(card=ops, bankaccount=ops, taxid=ops, externalaccount=ops)
    events = events_of(sim, result)
    types = sorted(e["type"] for e in events)
    assert types == sorted(
        [f"customer.source.{a}" for a in ("created", "updated", "deleted")] * 2
        + [f"customer.tax_id.{a}" for a in ("created", "updated", "deleted")]
    )
    for event in events:
        obj = event["data"]["object"]
        assert obj["object"] in ("card", "bank_account", "tax_id") and obj["customer"]
        assert "sources" not in obj and "tax_ids" not in obj
    for child in ("card", "bankaccount", "taxid", "externalaccount"):
        live = {row["id"] for row in sim.objects(child)}
        assert result["create"][child][0] in live
        assert result["update"][child][0] in live
        (gone,) = sim.removed(child)
        assert gone["id"] == result["delete"][child][0] not in live
        assert gone[column(child)] and gone["removed_at"] == result["now"]
    updated = next(e for e in events if e["type"] == "customer.source.updated")
    assert "metadata" in updated["data"]["previous_attributes"]


def test_payment_methods_attach_update_and_detach(fresh_sim):
    sim = fresh_sim
    result = sim.mutate(paymentmethod={"create": 1, "update": 2, "delete": 1})
    events = {e["type"]: e for e in events_of(sim, result)}
    attached = events["payment_method.attached"]["data"]["object"]
    assert attached["id"] == result["create"]["paymentmethod"][0] and attached["customer"]
    detached = events["payment_method.detached"]["data"]["object"]
    assert detached["customer"] is None
    assert set(events) - {"payment_method.attached", "payment_method.detached"} <= {
        "payment_method.updated",
        "payment_method.automatically_updated",
    }
    (gone,) = sim.removed("paymentmethod")
    assert gone["id"] == detached["id"] not in sim.ids("paymentmethod")
    again = sim.request(f"/v1/payment_methods/{detached['id']}").json()
    assert again["customer"] is None


def test_balances_and_setup_attempts_change_through_their_parents_events(fresh_sim):
    sim = fresh_sim
    result = sim.mutate(
        customerbalancetransaction={"create": 1},
        customercashbalancetransaction={"create": 1},
        setupattempt={"create": 2},
    )
    events = events_of(sim, result)
    (updated,) = [e for e in events if e["type"] == "customer.updated"]
    customer = updated["data"]["object"]
    (new,) = result["create"]["customerbalancetransaction"]
    row = next(r for r in sim.objects("customerbalancetransaction") if r["id"] == new)
    assert customer["balance"] == row["ending_balance"]
    previous = updated["data"]["previous_attributes"]
    assert previous == {"balance": customer["balance"] - row["amount"]}
    (cash,) = [e for e in events if e["type"] == "customer_cash_balance_transaction.created"]
    assert cash["data"]["object"]["id"] in sim.ids("customercashbalancetransaction")
    intents = [e for e in events if e["type"].startswith("setup_intent.")]
    assert len(intents) == 2
    for event in intents:
        intent = event["data"]["object"]
        assert intent["latest_attempt"] in result["create"]["setupattempt"]
        assert "status" in event["data"]["previous_attributes"]


def test_connected_account_children_change_without_platform_events(fresh_sim):
    sim = fresh_sim
    result = sim.mutate(
        person={"create": 1, "update": 1, "delete": 1},
        capability={"update": 1},
        usagerecordsummary={"update": 1},
    )
    assert result["events"] == []
    (cap,) = result["update"]["capability"]
    caps = {(c["account"], c["id"]): c["status"] for c in sim.objects("capability")}
    accounts = {a["id"]: a["capabilities"] for a in sim.objects("connectedaccount")}
    assert {(a, n): s for a, c in accounts.items() for n, s in c.items()} == caps
    assert any(name == cap for _, name in caps)
    assert sim.removed("person")[0]["id"] == result["delete"]["person"][0]


def test_paying_an_automatic_payout_lists_its_transactions(fresh_sim):
    sim = fresh_sim
    before = sim.request("/v1/balance").json()["available"][0]["amount"]
    result = sim.mutate(payoutbalancetransaction={"create": 1})
    (payout_id,) = result["create"]["payoutbalancetransaction"]
    types = [e["type"] for e in events_of(sim, result)]
    assert {"payout.paid", "payout.reconciliation_completed"} <= set(types)
    listed = walk(sim, "/v1/balance_transactions", {"payout": payout_id, "limit": 100})
    ledger = {row["id"] for row in sim.objects("balancetransaction")}
    assert listed and {row["id"] for row in listed} <= ledger
    paid_out = sum(row["net"] for row in listed if row["type"] != "payout")
    after = sim.request("/v1/balance").json()["available"][0]["amount"]
    assert after == before - paid_out
    charges = walk(sim, "/v1/balance_transactions", {"payout": payout_id, "type": "charge"})
    assert charges and {row["type"] for row in charges} == {"charge"}


def test_refused_child_mutations_name_what_stripe_allows(fresh_sim):
    for body in ({"capability": {"create": 1}}, {"customerbalancetransaction": {"delete": 1}}):
        answer = fresh_sim.request("/_sim/mutate", method="POST", body=body, auth=False)
        assert answer.status == 400 and "only:" in answer.json()["error"]


def test_per_parent_children_and_their_mutations_are_deterministic():
    def run() -> tuple[Any, ...]:
        with small_sim() as sim:
            result = sim.mutate(
                paymentmethod={"create": 1, "delete": 1}, setupattempt={"create": 1}
            )
            return (
                result["create"],
                [e["type"] for e in result["events"]],
                {child: sim.ids(child) for child in KIN_TABLES},
                sim.request("/v1/balance").json(),
            )

    assert run() == run()
