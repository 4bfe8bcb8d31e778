"""Mutation between runs: creates, updates, deletes, each with its events."""

from __future__ import annotations

from tests.stripe_sim.conftest import walk


def test_create_update_delete_change_the_truth_and_append_events(fresh_sim):
    sim = fresh_sim
    before = set(sim.ids("customer"))
    result = sim.mutate(customer={"create": 3, "update": 2, "delete": 1}, charge={"create": 4})
    created = result["create"]["customer"]
    updated = result["update"]["customer"]
    deleted = result["delete"]["customer"]
    assert len(created) == 3 and len(updated) == 2 and len(deleted) == 1
    after = set(sim.ids("customer"))
    assert after == (before | set(created)) - set(deleted)
    stub = sim.request(f"/v1/customers/{deleted[0]}")
    assert stub.status == 200
    assert stub.json() == {"id": deleted[0], "object": "customer", "deleted": True}
    live_created = set(created) - set(deleted)
    newest = sim.request("/v1/customers", {"limit": len(live_created)}).json()["data"]
    assert {c["id"] for c in newest} == live_created
    types = [e["type"] for e in result["events"]]
    assert types.count("customer.created") == 3
    assert types.count("customer.updated") == 2
    assert types.count("customer.deleted") == 1
    events = walk(sim, "/v1/events", {"type": "customer.updated", "limit": 100})
    event = next(e for e in events if e["data"]["object"]["id"] == updated[0])
    assert "email" in event["data"]["previous_attributes"]
    current = sim.request(f"/v1/customers/{updated[0]}").json()
    assert event["data"]["object"] == current
    charges = result["create"]["charge"]
    sources = {bt["source"] for bt in sim.objects("balancetransaction")}
    assert len(charges) == 4
    assert all(c in sources for c in charges if sim.request(f"/v1/charges/{c}").json()["paid"])


def test_new_objects_are_found_with_created_gte(fresh_sim):
    sim = fresh_sim
    start = sim.info()["now"]
    result = sim.mutate(invoice={"create": 2}, subscription={"create": 2})
    page = walk(sim, "/v1/invoices", {"created[gte]": start})
    assert {i["id"] for i in page} >= set(result["create"]["invoice"])
    subs = walk(sim, "/v1/subscriptions", {"created[gte]": start, "status": "all"})
    assert {s["id"] for s in subs} >= set(result["create"]["subscription"])


def test_subscription_delete_cancels_and_keeps_the_subscription(fresh_sim):
    sim = fresh_sim
    result = sim.mutate(subscription={"delete": 1})
    (sub_id,) = result["delete"]["subscription"]
    now = result["now"]
    got = sim.request(f"/v1/subscriptions/{sub_id}")
    assert got.status == 200
    sub = got.json()
    assert (sub["status"], sub["canceled_at"], sub["ended_at"]) == ("canceled", now, now)
    assert sub_id in {s["id"] for s in walk(sim, "/v1/subscriptions", {"status": "all"})}
    assert sub_id not in {s["id"] for s in walk(sim, "/v1/subscriptions", {"limit": 100})}
    truth = {s["id"]: s for s in sim.objects("subscription")}
    assert truth[sub_id] == sub
    items = walk(sim, "/v1/subscription_items", {"subscription": sub_id})
    assert items and {i["subscription"] for i in items} == {sub_id}
    events = walk(sim, "/v1/events", {"type": "customer.subscription.deleted"})
    assert events[0]["data"]["object"] == sub


def test_only_live_subscriptions_and_draft_invoices_are_deleted(fresh_sim):
    sim = fresh_sim
    before = {s["id"]: s["status"] for s in sim.objects("subscription")}
    drafts = {i["id"] for i in sim.objects("invoice") if i["status"] == "draft"}
    result = sim.mutate(subscription={"delete": 200}, invoice={"delete": 1000})
    live = {i for i, status in before.items() if status not in ("canceled", "incomplete_expired")}
    assert live and drafts and live != set(before)
    assert set(result["delete"]["subscription"]) == live
    assert set(result["delete"]["invoice"]) == drafts
    after = {s["id"]: s for s in sim.objects("subscription")}
    assert set(after) == set(before)
    assert all(after[i]["status"] == "canceled" for i in live)
    assert all(after[i]["canceled_at"] != result["now"] for i in set(before) - live)


def test_deleted_customer_cancels_its_live_subscriptions(fresh_sim):
    sim = fresh_sim
    subs = sim.objects("subscription")
    live = [s for s in subs if s["status"] not in ("canceled", "incomplete_expired")]
    owner = live[0]["customer"]
    owned = {s["id"] for s in live if s["customer"] == owner}
    sim.mutate(customer={"delete": len(sim.ids("customer"))})
    statuses = {s["id"]: s["status"] for s in sim.objects("subscription")}
    assert {statuses[i] for i in owned} == {"canceled"}
    events = walk(sim, "/v1/events", {"type": "customer.subscription.deleted", "limit": 100})
    assert owned <= {e["data"]["object"]["id"] for e in events}
    charges = sim.request("/v1/charges", {"limit": 100, "expand[]": "data.customer"}).json()
    owners = [c["customer"] for c in charges["data"] if c["customer"]]
    assert owners and all(c["object"] == "customer" and c["deleted"] for c in owners)


def test_deleted_customer_is_a_stub_and_other_deletes_are_404(fresh_sim):
    sim = fresh_sim
    result = sim.mutate(
        product={"delete": 1},
        price={"delete": 1},
        coupon={"delete": 1},
        customer={"delete": 1},
        invoice={"delete": 1},
    )
    deleted = result["delete"]
    (customer,) = deleted["customer"]
    assert customer not in sim.ids("customer")
    assert customer not in {c["id"] for c in walk(sim, "/v1/customers", {"limit": 100})}
    stub = {"id": customer, "object": "customer", "deleted": True}
    assert sim.request(f"/v1/customers/{customer}").json() == stub
    assert sim.request("/v1/customers/cus_NeverExisted00").status == 404
    for stream, plural in (
        ("product", "products"),
        ("price", "prices"),
        ("coupon", "coupons"),
        ("invoice", "invoices"),
    ):
        (object_id,) = deleted[stream]
        got = sim.request(f"/v1/{plural}/{object_id}")
        assert got.status == 404, stream
        assert got.json()["error"]["code"] == "resource_missing"
        assert object_id not in sim.ids(stream)
    connected = sim.connected_account_id
    (theirs,) = sim.mutate(account=connected, customer={"delete": 1})["delete"]["customer"]
    on_connected = sim.request(f"/v1/customers/{theirs}", headers={"Stripe-Account": connected})
    assert on_connected.json() == {"id": theirs, "object": "customer", "deleted": True}
    assert sim.request(f"/v1/customers/{theirs}").status == 404


def test_other_api_version_events(fresh_sim):
    sim = fresh_sim
    sim.set_knobs(other_api_version_rate=1.0)
    sim.mutate(product={"update": 2})
    events = walk(sim, "/v1/events", {"type": "product.updated"})
    assert len(events) == 2
    assert {e["api_version"] for e in events} == {"2020-08-27"}


def test_invalid_mutations_are_rejected(fresh_sim):
    sim = fresh_sim
    for body in ({"charge": {"delete": 1}}, {"widget": {"create": 1}}, {"customer": {"make": 1}}):
        result = sim.request("/_sim/mutate", method="POST", body=body, auth=False)
        assert result.status == 400, body
        assert "error" in result.json()


def test_objects_created_in_the_same_second_page_by_id(fresh_sim):
    sim = fresh_sim
    created = set(sim.mutate(coupon={"create": 7})["create"]["coupon"])
    start = sim.info()["now"] - 1
    pages = walk(sim, "/v1/coupons", {"created[gte]": start, "limit": 2})
    assert [c["id"] for c in pages if c["id"] in created] == sorted(created, reverse=True)
    back = sim.request("/v1/coupons", {"ending_before": pages[-1]["id"], "limit": 2}).json()
    assert [c["id"] for c in back["data"]] == [c["id"] for c in pages[-3:-1]]
