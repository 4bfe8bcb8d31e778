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
    assert sim.request(f"/v1/customers/{deleted[0]}").status == 404
    newest = sim.request("/v1/customers", {"limit": 3}).json()["data"]
    assert {c["id"] for c in newest} == set(created)
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


def test_subscription_delete_emits_customer_subscription_deleted(fresh_sim):
    sim = fresh_sim
    result = sim.mutate(subscription={"delete": 1})
    (sub_id,) = result["delete"]["subscription"]
    assert sub_id not in sim.ids("subscription")
    events = walk(sim, "/v1/events", {"type": "customer.subscription.deleted"})
    assert events[0]["data"]["object"]["id"] == sub_id
    assert events[0]["data"]["object"]["status"] == "canceled"


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
