"""Stripe's list behaviour: order, paging both ways, limits, created filters, nested lists."""

from __future__ import annotations

import pytest

from tests.stripe_sim.conftest import NOW, small_sim, walk

LIST_PATHS = {
    "charge": "/v1/charges",
    "customer": "/v1/customers",
    "invoice": "/v1/invoices",
    "coupon": "/v1/coupons",
    "product": "/v1/products",
    "price": "/v1/prices",
    "balancetransaction": "/v1/balance_transactions",
    "event": "/v1/events",
}


@pytest.mark.parametrize("stream", sorted(LIST_PATHS))
def test_walking_all_pages_returns_every_object_once_newest_first(sim, stream):
    objects = walk(sim, LIST_PATHS[stream], {"limit": 100})
    ids = [o["id"] for o in objects]
    assert len(ids) == len(set(ids))
    assert ids == sim.ids(stream)
    keys = [(o["created"], o["id"]) for o in objects]
    assert keys == sorted(keys, reverse=True)


def test_list_envelope_and_default_limit(sim):
    page = sim.request("/v1/charges").json()
    assert page["object"] == "list"
    assert page["url"] == "/v1/charges"
    assert page["has_more"] is True
    assert len(page["data"]) == 10


def test_ending_before_walks_back_to_the_first_page(sim):
    ids = sim.ids("customer")
    page = sim.request("/v1/customers", {"limit": 7, "ending_before": ids[20]}).json()
    assert [o["id"] for o in page["data"]] == ids[13:20]
    assert page["has_more"] is True
    first = sim.request("/v1/customers", {"limit": 7, "ending_before": ids[5]}).json()
    assert [o["id"] for o in first["data"]] == ids[:5]
    assert first["has_more"] is False


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_limit_out_of_range_is_a_stripe_400(sim, limit):
    result = sim.request("/v1/charges", {"limit": limit})
    assert result.status == 400
    error = result.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "limit"


def test_created_filters_match_the_truth(sim):
    objects = sim.objects("charge")
    pivot = objects[len(objects) // 2]["created"]
    expected = {
        "gte": [o["id"] for o in objects if o["created"] >= pivot],
        "gt": [o["id"] for o in objects if o["created"] > pivot],
        "lte": [o["id"] for o in objects if o["created"] <= pivot],
        "lt": [o["id"] for o in objects if o["created"] < pivot],
    }
    for op, ids in expected.items():
        got = walk(sim, "/v1/charges", {f"created[{op}]": pivot, "limit": 100})
        assert [o["id"] for o in got] == ids, op
    exact = walk(sim, "/v1/charges", {"created": pivot, "limit": 100})
    assert [o["id"] for o in exact] == [o["id"] for o in objects if o["created"] == pivot]
    window = walk(
        sim, "/v1/charges", {"created[gte]": pivot - 86_400, "created[lt]": pivot, "limit": 100}
    )
    assert all(pivot - 86_400 <= o["created"] < pivot for o in window)


def test_created_filter_with_unknown_operator_is_rejected(sim):
    result = sim.request("/v1/charges", {"created[since]": 1})
    assert result.status == 400
    assert "created[since]" in result.json()["error"]["message"]


def test_starting_after_unknown_id_is_resource_missing(sim):
    result = sim.request("/v1/charges", {"starting_after": "ch_missing"})
    assert result.status == 400
    assert result.json()["error"]["code"] == "resource_missing"


def test_subscriptions_hide_canceled_unless_status_all(sim):
    truth = sim.objects("subscription")
    default = walk(sim, "/v1/subscriptions", {"limit": 100})
    everything = walk(sim, "/v1/subscriptions", {"limit": 100, "status": "all"})
    canceled = walk(sim, "/v1/subscriptions", {"limit": 100, "status": "canceled"})
    assert [s["id"] for s in everything] == [s["id"] for s in truth]
    assert all(s["status"] != "canceled" for s in default)
    assert canceled and all(s["status"] == "canceled" for s in canceled)
    assert len(default) + len(canceled) == len(everything)


def test_invoice_lines_beyond_ten_are_served_by_the_lines_endpoint(sim):
    invoices = [i for i in sim.objects("invoice") if i["lines"]["has_more"]]
    assert invoices, "the data set must hold invoices with more than 10 lines"
    invoice = invoices[0]
    assert len(invoice["lines"]["data"]) == 10
    lines = walk(sim, invoice["lines"]["url"], {"limit": 4})
    assert len(lines) > 10
    assert len({line["id"] for line in lines}) == len(lines)
    assert [line["id"] for line in lines[:10]] == [line["id"] for line in invoice["lines"]["data"]]


def test_subscription_items_beyond_ten_are_served_by_subscription_items(sim):
    subscriptions = [s for s in sim.objects("subscription") if s["items"]["has_more"]]
    assert subscriptions, "the data set must hold subscriptions with more than 10 items"
    subscription = subscriptions[0]
    items = walk(sim, "/v1/subscription_items", {"subscription": subscription["id"]})
    assert len(items) > 10
    assert all(item["subscription"] == subscription["id"] for item in items)
    missing = sim.request("/v1/subscription_items")
    assert missing.status == 400


def test_related_ids_join(sim):
    customers = set(sim.ids("customer"))
    charges = set(sim.ids("charge"))
    subscriptions = set(sim.ids("subscription"))
    products = set(sim.ids("product"))
    assert all(c["customer"] in customers for c in sim.objects("charge") if c["customer"])
    assert all(
        bt["source"] in charges
        for bt in sim.objects("balancetransaction")
        if bt["type"] == "charge"
    )
    invoices = sim.objects("invoice")
    assert all(i["customer"] in customers for i in invoices)
    assert all(i["subscription"] in subscriptions for i in invoices if i["subscription"])
    assert all(p["product"] in products for p in sim.objects("price"))


def test_list_filters(sim):
    charge = next(c for c in sim.objects("charge") if c["customer"])
    mine = walk(sim, "/v1/charges", {"customer": charge["customer"], "limit": 100})
    assert charge["id"] in {c["id"] for c in mine}
    assert all(c["customer"] == charge["customer"] for c in mine)
    active = walk(sim, "/v1/prices", {"active": "true", "limit": 100})
    assert all(p["active"] is True for p in active)


def test_retrieve_by_id_and_expand(sim):
    charge = next(c for c in sim.objects("charge") if c["customer"])
    got = sim.request(f"/v1/charges/{charge['id']}").json()
    assert got == charge
    expanded = sim.request(
        f"/v1/charges/{charge['id']}", {"expand[]": ["customer", "balance_transaction"]}
    ).json()
    assert expanded["customer"]["id"] == charge["customer"]
    assert expanded["customer"]["object"] == "customer"
    assert expanded["balance_transaction"]["source"] == charge["id"]
    page = sim.request("/v1/charges", {"expand[]": "data.customer", "limit": 20}).json()
    assert any(isinstance(c["customer"], dict) for c in page["data"])
    bad = sim.request("/v1/charges", {"expand[]": "data.nope"})
    assert bad.status == 400


def test_stripe_account_scopes_the_data(sim):
    other = sim.request("/v1/charges", headers={"Stripe-Account": sim.connected_account_id})
    assert other.status == 200
    other_ids = {c["id"] for c in other.json()["data"]}
    assert other_ids and not other_ids & set(sim.ids("charge"))
    assert sim.request("/v1/account").json()["id"] == sim.account_id
    connected = sim.request("/v1/account", headers={"Stripe-Account": sim.connected_account_id})
    assert connected.json()["id"] == sim.connected_account_id
    unknown = sim.request("/v1/charges", headers={"Stripe-Account": "acct_unknown"})
    assert unknown.status == 403
    assert unknown.json()["error"]["code"] == "account_invalid"


def test_data_is_spread_over_the_configured_span_and_deterministic(sim):
    created = [c["created"] for c in sim.objects("charge")]
    assert max(created) <= NOW
    assert min(created) >= NOW - 120 * 86_400
    with small_sim() as again:
        assert again.ids("charge") == sim.ids("charge")
    with small_sim(seed=7) as other:
        assert not set(other.ids("charge")) & set(sim.ids("charge"))
