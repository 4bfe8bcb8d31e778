"""Stripe's rate limits in the simulator: the limiters with a fake clock, then a real server
answering 429 with the limiter's reason, and the API ignoring unknown parameters."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from stripe_sim import limits
from stripe_sim.limits import (
    ENDPOINT_CONCURRENCY,
    ENDPOINT_RATE,
    GLOBAL_CONCURRENCY,
    GLOBAL_RATE,
    Admission,
    LimitKnobs,
    Limits,
    Request,
    template_of,
)
from tests.stripe_sim.conftest import small_sim

LIVE, TEST = True, False


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(**knobs: Any) -> tuple[Limits, FakeClock]:
    defaults = {
        "limits": True,
        "live_rate": 100.0,
        "test_rate": 25.0,
        "endpoint_rate": 25.0,
        "concurrency_limit": 0,
        "endpoint_concurrency_limit": 0,
    }
    clock = FakeClock()
    return Limits(LimitKnobs(**{**defaults, **knobs}), clock), clock


def call(route: str, live: bool = TEST, account: str | None = None) -> Request:
    return Request(account, live, "GET", route)


def admitted(
    limits_: Limits, requests: list[Request], rate_limit: float = 0.0
) -> tuple[int, list[str | None]]:
    """How many of ``requests`` are admitted (each answered at once), and every reason."""
    reasons = []
    for request in requests:
        admission = limits_.admit(request, rate_limit)
        reasons.append(admission.reason)
        limits_.release(admission)
    return reasons.count(None), reasons


def spread(count: int, live: bool = TEST, account: str | None = None) -> list[Request]:
    """``count`` requests over 20 endpoints, so no endpoint's rate is reached first."""
    return [call(f"/v1/e{i % 20}", live, account) for i in range(count)]


# Path templates


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/v1/charges", "/v1/charges"),
        ("/v1/charges/", "/v1/charges"),
        ("/v1/charges/ch_1", "/v1/charges/{id}"),
        ("/v1/customers/cus_1/payment_methods", "/v1/customers/{id}/payment_methods"),
        ("/v1/customers/cus_1/sources/card_1", "/v1/customers/{id}/sources/{id}"),
        ("/v1/invoices/in_1/lines", "/v1/invoices/{id}/lines"),
        ("/v1/checkout/sessions", "/v1/checkout/sessions"),
        ("/v1/checkout/sessions/cs_1/line_items", "/v1/checkout/sessions/{id}/line_items"),
        ("/v1/issuing/cards/ic_1", "/v1/issuing/cards/{id}"),
        ("/v1/account", "/v1/account"),
        # Coupon ids are any text, literal segments of other routes included.
        ("/v1/coupons/50%25%20OFF", "/v1/coupons/{id}"),
        ("/v1/coupons/lines", "/v1/coupons/{id}"),
        ("/v1/coupons/issuing", "/v1/coupons/{id}"),
        ("/v1/coupons/a.b~c%2Fd", "/v1/coupons/{id}"),
        ("/v1/coupons/%C3%9CBER", "/v1/coupons/{id}"),
        # Not served: the served routes' literal segments stay, the others are ids.
        ("/v1/widgets/w_1/lines", "/v1/widgets/{id}/lines"),
    ],
)
def test_template_replaces_every_id(path, template):
    assert template_of(path) == template


def test_two_ids_are_one_endpoint():
    limits_, _ = limiter(test_rate=0)
    first = Request.of("GET", "/v1/charges/ch_1", {})
    second = Request.of("GET", "/v1/charges/ch_2", {})
    assert first.endpoint == second.endpoint == "GET /v1/charges/{id}"
    count, reasons = admitted(limits_, [first, second] * 20)
    assert count == 25
    assert set(reasons[25:]) == {ENDPOINT_RATE}
    assert limits_.admit(Request.of("GET", "/v1/charges", {}), 0).reason is None
    assert limits_.admit(Request.of("DELETE", "/v1/charges/ch_1", {}), 0).reason is None


# Keys and accounts


@pytest.mark.parametrize(
    ("authorization", "live"),
    [
        ("Bearer sk_live_abc", True),
        ("Bearer rk_live_abc", True),
        ("Bearer sk_test_abc", False),
        ("Bearer pk_live_abc", False),
        (None, False),
        ("Basic " + base64.b64encode(b"sk_live_abc:").decode(), True),
        ("Basic !!!", False),
    ],
)
def test_live_key(authorization, live):
    assert limits.is_live(authorization) is live


def test_live_key_gets_the_live_rate_and_other_keys_the_test_rate():
    limits_, clock = limiter()
    count, reasons = admitted(limits_, spread(150, LIVE))
    assert (count, set(reasons[100:])) == (100, {GLOBAL_RATE})
    count, reasons = admitted(limits_, spread(50, TEST))
    assert (count, set(reasons[25:])) == (25, {GLOBAL_RATE})
    clock.now += 0.0625  # 6.25 live tokens, 1.56 test tokens
    assert admitted(limits_, spread(10, LIVE))[0] == 6
    assert admitted(limits_, spread(10, TEST))[0] == 1


def test_each_account_has_its_own_budget():
    limits_, _ = limiter()
    assert admitted(limits_, spread(30))[0] == 25
    assert admitted(limits_, spread(30, account="acct_1"))[0] == 25
    assert admitted(limits_, spread(30, account="acct_2"))[0] == 25
    assert admitted(limits_, spread(1))[0] == 0


def test_burst_is_one_seconds_worth_and_at_least_one():
    limits_, clock = limiter(test_rate=0.5, endpoint_rate=0)
    clock.now += 100
    assert admitted(limits_, spread(3))[0] == 1
    clock.now += 1.0
    assert admitted(limits_, spread(1))[0] == 0
    clock.now += 1.0
    assert admitted(limits_, spread(1))[0] == 1


def test_rate_limit_knob_applies_with_limits_off_and_the_lower_rate_wins():
    off, _ = limiter(limits=False)
    assert admitted(off, spread(500))[0] == 500
    assert admitted(off, spread(20, account="acct_1"), rate_limit=5)[0] == 5
    assert admitted(off, spread(1, account="acct_2"), rate_limit=5)[0] == 0  # shared
    lower_knob, _ = limiter()
    assert admitted(lower_knob, spread(30), rate_limit=10)[0] == 10
    lower_key_rate, _ = limiter()
    assert admitted(lower_key_rate, spread(60), rate_limit=50)[0] == 25


# Concurrency


def test_concurrency_limits_requests_in_flight():
    limits_, _ = limiter(concurrency_limit=2, endpoint_concurrency_limit=1)
    held = limits_.admit(call("/v1/a"), 0)
    assert held.reason is None
    assert limits_.admit(call("/v1/a"), 0).reason == ENDPOINT_CONCURRENCY
    other = limits_.admit(call("/v1/b"), 0)
    assert other.reason is None
    assert limits_.admit(call("/v1/c"), 0).reason == GLOBAL_CONCURRENCY
    assert limits_.admit(call("/v1/c", account="acct_1"), 0).reason is None
    limits_.release(held)
    assert limits_.admit(call("/v1/a"), 0).reason is None


def test_concurrency_is_checked_before_the_rates():
    limits_, _ = limiter(concurrency_limit=1, test_rate=1)
    held = limits_.admit(call("/v1/a"), 0)
    assert limits_.admit(call("/v1/b"), 0).reason == GLOBAL_CONCURRENCY
    limits_.release(held)
    assert limits_.admit(call("/v1/b"), 0).reason == GLOBAL_RATE


def test_release_of_a_request_admitted_with_limits_off_counts_nothing():
    limits_, _ = limiter(limits=False, concurrency_limit=1)
    before = limits_.admit(call("/v1/a"), 0)
    limits_.knobs.limits = True
    held = limits_.admit(call("/v1/a"), 0)
    limits_.release(before)
    assert limits_.admit(call("/v1/a"), 0).reason == GLOBAL_CONCURRENCY
    limits_.release(held)
    limits_.release(Admission("global-rate"))
    assert limits_.admit(call("/v1/a"), 0).reason is None


# A refused request spends nothing


def test_endpoint_refusal_spends_no_global_token():
    limits_, _ = limiter(live_rate=100)
    assert admitted(limits_, [call("/v1/a", LIVE)] * 75)[0] == 25
    others = [call(f"/v1/{name}", LIVE) for name in "bcd" for _ in range(25)]
    count, reasons = admitted(limits_, [*others, call("/v1/e", LIVE)])
    assert (count, reasons[-1]) == (75, GLOBAL_RATE)


def test_global_refusal_spends_no_endpoint_token():
    limits_, _ = limiter(test_rate=100)
    assert admitted(limits_, [call("/v1/a")] * 10, rate_limit=1)[0] == 1
    count, reasons = admitted(limits_, [call("/v1/a")] * 30)
    assert (count, set(reasons[24:])) == (24, {ENDPOINT_RATE})


def test_concurrency_refusal_spends_no_rate_token():
    limits_, _ = limiter(concurrency_limit=1, test_rate=100)
    held = limits_.admit(call("/v1/a"), 0)
    assert admitted(limits_, [call("/v1/a")] * 30)[0] == 0
    limits_.release(held)
    count, reasons = admitted(limits_, [call("/v1/a")] * 30)
    assert (count, set(reasons[24:])) == (24, {ENDPOINT_RATE})


# The server


def test_429_names_its_limiter_with_stripes_body_and_is_counted():
    with small_sim(limits=True, endpoint_rate=0.01) as sim:
        sim.reset_stats()
        assert sim.request("/v1/charges/ch_a").status == 404
        limited = sim.request("/v1/charges/ch_b")
        assert sim.request("/v1/charges").status == 200
        stats = sim.stats()
    assert limited.status == 429
    assert limited.headers["Stripe-Rate-Limited-Reason"] == "endpoint-rate"
    assert "Stripe-Should-Retry" not in limited.headers
    assert "Retry-After" not in limited.headers
    error = limited.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "rate_limit"
    assert error["doc_url"] == "https://stripe.com/docs/error-codes/rate-limit"
    assert "rate limit" in error["message"]
    assert stats["rate_limited"] == {
        "by_reason": {"endpoint-rate": 1},
        "by_endpoint": {"GET /v1/charges/{id}": {"endpoint-rate": 1}},
    }
    assert stats["by_route"]["/v1/charges/{id}"] == {"404": 1, "429": 1}


def test_live_key_and_accounts_on_the_server():
    with small_sim(api_key="sk_live_simulator", limits=True, live_rate=3, endpoint_rate=0) as sim:
        assert [sim.request("/v1/coupons").status for _ in range(4)] == [200, 200, 200, 429]
        connected = {"Stripe-Account": sim.connected_account_id}
        assert sim.request("/v1/coupons", headers=connected).status == 200
        sim.set_knobs(live_rate=0.01)  # a new rate: the buckets start full again
        assert sim.request("/v1/coupons").status == 200
        assert sim.request("/v1/coupons").status == 429
        assert sim.stats()["rate_limited"]["by_reason"] == {"global-rate": 2}


def test_concurrency_429_is_answered_at_once_without_the_latency():
    with small_sim(limits=True, latency_ms=400, concurrency_limit=1) as sim:

        def timed(path: str) -> tuple[int, str | None, float]:
            started = time.monotonic()
            result = sim.request(path)
            reason = result.headers.get("Stripe-Rate-Limited-Reason")
            return result.status, reason, time.monotonic() - started

        with ThreadPoolExecutor(2) as pool:
            outcomes = sorted(pool.map(timed, ["/v1/coupons", "/v1/charges"]))
        (ok, _, slow), (refused, reason, fast) = outcomes
        assert (ok, refused, reason) == (200, 429, "global-concurrency")
        assert slow >= 0.4 > fast
        sim.set_knobs(concurrency_limit=0, endpoint_concurrency_limit=1)
        with ThreadPoolExecutor(3) as pool:
            paths = ["/v1/charges/ch_a", "/v1/charges/ch_b", "/v1/coupons"]
            statuses = sorted(pool.map(lambda path: timed(path)[:2], paths))
        assert statuses == [(200, None), (404, None), (429, "endpoint-concurrency")]


def test_rate_limit_knob_alone_keeps_its_headers():
    with small_sim(rate_limit=0.01) as sim:
        sim.request("/v1/coupons")
        limited = sim.request("/v1/coupons")
    assert limited.headers["Stripe-Rate-Limited-Reason"] == "global-rate"
    assert limited.headers["Stripe-Should-Retry"] == "true"


def test_limit_knobs_are_validated_and_reported(fresh_sim):
    knobs = fresh_sim.set_knobs(limits=True, concurrency_limit=3, test_rate=10)
    assert (knobs["limits"], knobs["concurrency_limit"], knobs["test_rate"]) == (True, 3, 10.0)
    assert fresh_sim.info()["knobs"]["strict_params"] is True
    for bad in ({"limits": 1}, {"concurrency_limit": 1.5}, {"endpoint_rate": -1}):
        with pytest.raises(RuntimeError):
            fresh_sim.set_knobs(**bad)


# strict_params


UNKNOWN = [
    ("/v1/charges", {"foo": "1", "created[since]": "5", "9bad": "x"}),
    ("/v1/coupons/some_id", {"include_deleted": "true"}),
    ("/v1/customers", {"limit": 3, "email_verified": "yes"}),
]


def test_unknown_parameters_are_ignored_when_not_strict(fresh_sim):
    sim = fresh_sim
    assert [sim.request(path, params).status for path, params in UNKNOWN] == [400, 400, 400]
    customer = sim.ids("customer")[0]
    kin = f"/v1/customers/{customer}/payment_methods"
    assert sim.request(kin, {"bogus": "1"}).status == 400
    sim.set_knobs(strict_params=False)
    statuses = [sim.request(path, params).status for path, params in UNKNOWN]
    assert statuses == [200, 404, 200]
    assert len(sim.request("/v1/customers", {"limit": 3, "x": "y"}).json()["data"]) == 3
    assert sim.request(kin, {"bogus": "1"}).status == 200
    lines = f"/v1/invoices/{sim.ids('invoice')[0]}/lines"
    assert sim.request(lines, {"bogus": "1"}).status == 200
    assert sim.request("/v1/charges", {"limit": 500}).status == 400  # known, still checked


def test_strict_params_from_the_config():
    with small_sim(strict_params=False) as sim:
        assert sim.request("/v1/charges", {"foo": "1"}).status == 200
