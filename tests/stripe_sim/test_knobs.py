"""Knobs: rate limit answered with 429 and Stripe's headers, injected faults, stats."""

from __future__ import annotations

import http.client
import urllib.error

import pytest

from tests.stripe_sim.conftest import small_sim


def test_rate_limit_answers_429_with_stripe_headers(fresh_sim):
    sim = fresh_sim
    sim.set_knobs(rate_limit=0.01)  # one request, then one token per 100 s
    assert sim.request("/v1/coupons").status == 200
    limited = sim.request("/v1/coupons")
    assert limited.status == 429
    assert limited.json()["error"]["code"] == "rate_limit"
    assert limited.headers["Stripe-Rate-Limited-Reason"] == "global-rate"
    assert limited.headers["Stripe-Should-Retry"] == "true"
    assert sim.stats()["by_path"]["/v1/coupons"] == {"200": 1, "429": 1}


def test_fault_rate_one_fails_every_request(fresh_sim):
    sim = fresh_sim
    sim.set_knobs(fault_rate=1.0)
    outcomes = set()
    for _ in range(40):
        try:
            outcomes.add(sim.request("/v1/coupons").status)
        except http.client.IncompleteRead:
            outcomes.add("truncated")
        except (urllib.error.URLError, ConnectionError):
            outcomes.add("dropped")
    assert outcomes == {500, 502, 503, "dropped", "truncated"}
    stats = sim.stats()
    assert stats["total"] == 40
    assert "200" not in stats["by_status"]
    sim.set_knobs(fault_rate=0)
    assert sim.request("/v1/coupons").status == 200


def test_stats_count_per_path_and_reset(fresh_sim):
    sim = fresh_sim
    sim.reset_stats()
    sim.request("/v1/charges")
    sim.request("/v1/charges", {"limit": 500})
    stats = sim.stats(log=True, reset=True)
    assert stats["by_path"]["/v1/charges"] == {"200": 1, "400": 1}
    assert stats["log"][1]["query"] == "limit=500"
    assert sim.stats()["total"] == 0
    sim.request("/v1/invoices/in_a/lines")
    sim.request("/v1/invoices/in_b/lines")
    assert sim.stats()["by_route"] == {"/v1/invoices/{id}/lines": {"404": 2}}


def test_unknown_knob_is_rejected(fresh_sim):
    with pytest.raises(RuntimeError):
        fresh_sim.set_knobs(speed=3)


def test_fault_kinds_can_be_narrowed():
    with small_sim(fault_rate=1.0, fault_kinds=("503",)) as sim:
        assert {sim.request("/v1/coupons").status for _ in range(5)} == {503}
