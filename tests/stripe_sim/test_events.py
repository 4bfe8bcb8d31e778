"""``/v1/events``: 30-day retention, type filters, payloads that are the objects."""

from __future__ import annotations

from tap_stripe.tables import TABLES

from tests.stripe_sim.conftest import walk

THIRTY_DAYS = 30 * 86_400


def test_events_are_kept_thirty_days_and_cover_recent_creations(sim):
    now = sim.info()["now"]
    events = walk(sim, "/v1/events", {"limit": 100})
    assert events
    assert all(e["created"] >= now - THIRTY_DAYS for e in events)
    recent_customers = {
        c["id"] for c in sim.objects("customer") if c["created"] >= now - THIRTY_DAYS
    }
    created = {e["data"]["object"]["id"] for e in events if e["type"] == "customer.created"}
    assert created == recent_customers


def test_event_shape(sim):
    event = sim.request("/v1/events", {"limit": 1}).json()["data"][0]
    assert event["object"] == "event"
    assert event["api_version"] == "2023-08-16"
    assert set(event) >= {"id", "type", "created", "data", "livemode", "request"}
    obj = event["data"]["object"]
    stream = next(spec.name for spec in TABLES if spec.object == obj["object"])
    assert obj in sim.objects(stream)
    assert sim.request(f"/v1/events/{event['id']}").json() == event


def test_type_wildcard_and_types_filters(sim):
    customers = walk(sim, "/v1/events", {"type": "customer.*", "limit": 100})
    assert customers and all(e["type"].startswith("customer.") for e in customers)
    subs = walk(sim, "/v1/events", {"types[]": ["customer.subscription.created"], "limit": 100})
    assert subs and all(e["type"] == "customer.subscription.created" for e in subs)
    assert {e["id"] for e in subs} <= {e["id"] for e in customers}
    both = sim.request("/v1/events", {"type": "invoice.created", "types[]": "invoice.created"})
    assert both.status == 400
    wildcard = sim.request("/v1/events", {"types[]": ["customer.*"]})
    assert wildcard.status == 400
    assert wildcard.json()["error"]["param"] == "types"


def test_events_older_than_thirty_days_are_gone(sim):
    old = sim.request("/v1/events", {"created[lt]": sim.info()["now"] - THIRTY_DAYS})
    assert old.json()["data"] == []
