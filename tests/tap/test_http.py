"""The client: headers, retries (429, 409, 5xx, connection errors), errors, rate budget."""

from __future__ import annotations

import itertools
import json
import logging

import pytest
import requests
import requests_mock
from tap_stripe.budgets import (
    DEFAULT_ENDPOINT_RATE,
    EndpointBudgets,
    RateLimiter,
    default_rate_for_key,
    endpoint_of,
    send_when_clear,
)
from tap_stripe.client import PAUSE_STEP_SECONDS, StripeAPIError, StripeClient, StripeError
from tap_stripe.log_once import OncePerMinute
from tap_stripe.tap import TapStripe

from tests.tap.conftest import base_config, run_tap
from tests.tap.fake_stripe import API_KEY, API_URL, FakeStripe, error, make_object


def one_charge(stripe: FakeStripe) -> dict:
    return stripe.add("charge", [make_object("charge", 1_700_000_000)])[0]


def test_every_request_carries_auth_version_and_account(stripe: FakeStripe) -> None:
    one_charge(stripe)
    with_account = base_config(account_id="acct_connected", api_version="2023-08-16")

    run_tap(with_account, streams=("charge",))

    request = stripe.mocker.request_history[0]
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"
    assert request.headers["Stripe-Version"] == "2023-08-16"
    assert request.headers["Stripe-Account"] == "acct_connected"
    assert API_KEY not in request.url


def test_429_then_success_honours_retry_after(stripe: FakeStripe, no_sleep: list[float]) -> None:
    expected = one_charge(stripe)
    stripe.failures.append(
        error(
            429,
            {"Retry-After": "7", "Stripe-Rate-Limited-Reason": "global-rate"},
            {"error": {"type": "rate_limit_error", "message": "Too many requests"}},
        )
    )

    result = run_tap(streams=("charge",))

    assert result.error is None
    assert result.records["charge"] == [expected]
    assert len(stripe.list_requests("charge")) == 2
    assert max(no_sleep) == pytest.approx(7, abs=0.1)


@pytest.mark.parametrize("status", [409, 500, 502, 503])
def test_conflict_and_server_errors_are_retried(
    stripe: FakeStripe, no_sleep: list[float], status: int
) -> None:
    expected = one_charge(stripe)
    stripe.failures += [error(status), error(status)]

    result = run_tap(base_config(retry_backoff_seconds=2.0), streams=("charge",))

    assert result.error is None
    assert result.records["charge"] == [expected]
    assert len(stripe.list_requests("charge")) == 3
    # Two backoffs (1-2 s, then 2-4 s), slept in steps so that a cancel cuts them short.
    assert 3.0 <= sum(no_sleep) <= 6.0
    assert max(no_sleep) <= PAUSE_STEP_SECONDS


def test_backoff_is_exponential_with_jitter() -> None:
    client = StripeClient(api_key=API_KEY, api_url=API_URL, backoff_base=2.0, backoff_max=60)

    # Attempt n waits between half and all of base * 2**(n-1), at most backoff_max.
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (7, 60), (12, 60)]:
        delays = [client._backoff(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), attempt


def test_connection_errors_and_cut_off_bodies_are_retried(
    stripe: FakeStripe, no_sleep: list[float]
) -> None:
    expected = one_charge(stripe)

    def drop(request: object, context: object) -> dict:
        raise requests.ConnectionError("connection reset by peer")

    def time_out(request: object, context: object) -> dict:
        raise requests.Timeout("read timed out")

    def cut_off(request: object, context: object) -> dict:
        raise requests.exceptions.ChunkedEncodingError("IncompleteRead(1000 bytes read)")

    stripe.failures += [drop, time_out, cut_off]

    result = run_tap(streams=("charge",))

    assert result.error is None
    assert result.records["charge"] == [expected]
    assert len(no_sleep) == 3


def test_a_cut_short_body_is_retried(stripe: FakeStripe, no_sleep: list[float]) -> None:
    expected = one_charge(stripe)
    full = '{"object": "list", "data": [], "has_more": false, "url": "/v1/charges"}'
    stripe.mocker.get(
        f"{stripe.api_url}/v1/charges",
        [{"text": full[:30]}, {"text": stripe_list_text(expected)}],
    )

    result = run_tap(streams=("charge",))

    assert result.error is None
    assert result.records["charge"] == [expected]
    assert len(no_sleep) == 1


# A proxy's error page that echoes the request's key across the 80th character (an
# error line quotes 80).
PROXY_PAGE = (
    f"<html><head><title>Proxy error</title></head>\n<body>Bearer {API_KEY}</body></html>\n"
)
BOOKMARK = 1_700_000_000
TXN_STATE = {
    "bookmarks": {
        "balancetransaction": {"replication_key": "created", "replication_key_value": BOOKMARK}
    }
}
TXN_URL = f"{API_URL}/v1/balance_transactions"


def answer(status: int, text: str, content_type: str) -> dict:
    return {
        "status_code": status,
        "text": text,
        "headers": {"Content-Type": content_type, "Request-Id": "req_proxy"},
    }


def assert_no_key(*texts: str) -> None:
    for text in texts:
        assert API_KEY[:16] not in text


@pytest.mark.parametrize(
    ("status", "body", "content_type", "kind"),
    [
        (200, PROXY_PAGE, "text/html; charset=utf-8", "a body that is not JSON"),
        (200, "[]", "application/json", "JSON that is not an object (an array)"),
        (200, '"ok"', "application/json", "JSON that is not an object (a string)"),
        (200, "", "text/plain", "an empty body"),
        (502, PROXY_PAGE, "text/html", "a body that is not JSON"),
        (503, '{"status": "down"}', "application/json", "a JSON object that is not a Stripe"),
    ],
)
def test_a_body_that_is_not_a_stripe_object_is_retried_then_fails_saying_what_it_was(
    stripe: FakeStripe,
    no_sleep: list[float],
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: str,
    content_type: str,
    kind: str,
) -> None:
    route = stripe.mocker.get(TXN_URL, [answer(status, body, content_type)])

    with caplog.at_level(logging.WARNING):
        result = run_tap(state=TXN_STATE, streams=("balancetransaction",))

    message = str(result.error)
    assert isinstance(result.error, StripeError)
    assert message.startswith("stream 'balancetransaction': giving up after 8 attempts")
    assert f"HTTP {status} with {kind}" in message
    assert f"Content-Type: {content_type}, {len(body)} bytes, starts: " in message
    assert "Request-Id: req_proxy" in message
    assert "\n" not in message and "error: OK" not in message
    assert route.call_count == 8
    # One warning for the endpoint's fault, not one per retry (the next would come after
    # a minute, with how many went unsaid).
    [retry] = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert f"GET /v1/balance_transactions: HTTP {status} with {kind}" in retry
    # No record, and no state but the one the run started from.
    assert "balancetransaction" not in result.records
    assert {result_bookmark(state) for state in result.states} == {BOOKMARK}
    assert_no_key(message, caplog.text)


def result_bookmark(state: dict) -> int:
    return state["bookmarks"]["balancetransaction"]["replication_key_value"]


def test_a_proxy_page_is_quoted_printable_and_scrubbed(stripe: FakeStripe) -> None:
    stripe.mocker.get(TXN_URL, [answer(200, PROXY_PAGE, "text/html")])

    result = run_tap(base_config(retry_backoff_seconds=0), streams=("balancetransaction",))

    message = str(result.error)
    # Whitespace folded, the key replaced before the cut at 80 characters.
    head = "<html><head><title>Proxy error</title></head> <body>Bearer <api_key></body></htm"
    assert f"starts: '{head}'" in message
    assert_no_key(message)


def test_a_proxy_page_once_is_retried(
    stripe: FakeStripe, no_sleep: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    txn = stripe.add("balancetransaction", [make_object("balancetransaction", BOOKMARK + 10)])[0]
    listed = json.dumps(
        {"object": "list", "data": [txn], "has_more": False, "url": "/v1/balance_transactions"}
    )
    stripe.mocker.get(
        TXN_URL,
        [answer(200, PROXY_PAGE, "text/html"), answer(200, listed, "application/json")],
    )

    with caplog.at_level(logging.WARNING):
        result = run_tap(state=TXN_STATE, streams=("balancetransaction",))

    assert result.error is None
    assert result.records["balancetransaction"] == [txn]
    [retry] = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert retry.startswith(
        "stream 'balancetransaction': GET /v1/balance_transactions: HTTP 200 with a body "
        "that is not JSON (Content-Type: text/html, "
    )
    assert retry.endswith("Request-Id: req_proxy), retry 1 of 7 in 0.0s")
    assert_no_key(retry)


def test_a_4xx_that_is_not_json_says_what_it_got(stripe: FakeStripe) -> None:
    stripe.mocker.get(TXN_URL, [{**answer(403, PROXY_PAGE, "text/html"), "reason": "Forbidden"}])

    result = run_tap(streams=("balancetransaction",))

    message = str(result.error)
    assert isinstance(result.error, StripeAPIError)
    assert message.startswith(
        "stream 'balancetransaction': HTTP 403 error: Forbidden; a body that is not JSON "
        "(Content-Type: text/html, "
    )
    assert message.endswith("(Request-Id: req_proxy)")
    assert_no_key(message)


def stripe_list_text(obj: dict) -> str:
    return json.dumps({"object": "list", "data": [obj], "has_more": False, "url": "/v1/charges"})


def test_retries_are_bounded(stripe: FakeStripe, no_sleep: list[float]) -> None:
    one_charge(stripe)
    stripe.failures += [error(500, {"Request-Id": "req_500"})] * 20

    result = run_tap(streams=("charge",))

    assert isinstance(result.error, StripeAPIError)
    assert "HTTP 500" in str(result.error) and "req_500" in str(result.error)
    assert len(stripe.list_requests("charge")) == 8
    assert all(delay <= 60 for delay in no_sleep)


def test_should_retry_false_is_not_retried(stripe: FakeStripe, no_sleep: list[float]) -> None:
    one_charge(stripe)
    stripe.failures.append(error(500, {"Stripe-Should-Retry": "false", "Request-Id": "req_x"}))

    result = run_tap(streams=("charge",))

    assert isinstance(result.error, StripeAPIError)
    assert len(stripe.list_requests("charge")) == 1
    assert no_sleep == []


def test_401_says_the_key_was_refused_and_never_shows_it(stripe: FakeStripe) -> None:
    stripe.failures.append(
        error(
            401,
            {"Request-Id": "req_401"},
            {
                "error": {
                    "type": "invalid_request_error",
                    "message": f"Invalid API Key provided: {API_KEY}",
                }
            },
        )
    )

    result = run_tap(streams=("charge",))

    message = str(result.error)
    assert isinstance(result.error, StripeAPIError)
    assert message.startswith("stream 'charge': HTTP 401 Stripe refused the API key")
    assert "req_401" in message
    assert API_KEY not in message
    assert "\n" not in message


def test_400_names_stream_status_type_message_and_request_id(stripe: FakeStripe) -> None:
    stripe.failures.append(
        error(
            400,
            {"Request-Id": "req_400"},
            {
                "error": {
                    "type": "invalid_request_error",
                    "message": "Received unknown parameter: foo",
                }
            },
        )
    )

    result = run_tap(streams=("charge",))

    assert str(result.error) == (
        "stream 'charge': HTTP 400 invalid_request_error: Received unknown parameter: foo "
        "(Request-Id: req_400)"
    )


def test_an_error_in_one_window_stops_the_concurrent_stream(
    stripe: FakeStripe, no_sleep: list[float]
) -> None:
    stripe.add("charge", [make_object("charge", 1_600_000_000 + i * 3600) for i in range(900)])
    stripe.fail_after = 4

    result = run_tap(base_config(max_concurrency=4), streams=("charge",))

    assert isinstance(result.error, StripeError)
    assert "HTTP 400" in str(result.error)


def test_default_rate_follows_the_key_mode() -> None:
    assert default_rate_for_key("sk_test_abc") == 24
    assert default_rate_for_key("rk_test_abc") == 24
    assert default_rate_for_key("sk_live_abc") == 95
    assert default_rate_for_key("rk_live_abc") == 95
    tap = TapStripe(config={"api_key": "sk_live_abc"}, parse_env_config=False)
    assert tap.client.rate_limiter.rate == 95
    # Every endpoint has its own budget from its first request, a little under Stripe's 25.
    assert tap.client.endpoint_budgets.get("/v1/charges").rate == 24


def test_each_endpoint_is_paced_under_its_own_budget_inside_the_global_one() -> None:
    """Two endpoints at 24/s each inside a global 90/s: each endpoint's requests are spaced
    1/24 s apart, and the two together do not wait for each other beyond the global pace."""
    clock = FakeClock()
    budgets = EndpointBudgets(24, clock=clock, sleep=clock.sleep)
    global_budget = RateLimiter(90, clock=clock, sleep=clock.sleep)
    charges = budgets.get("/v1/charges")
    customers = budgets.get("/v1/customers")
    sent: dict[str, list[float]] = {"charges": [], "customers": []}
    for _ in range(24):
        for name, limiter in (("charges", charges), ("customers", customers)):
            limiter.acquire()
            global_budget.acquire()
            sent[name].append(clock.now)

    for times in sent.values():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 1 / 24 - 1e-9
    # 48 requests over both endpoints took about one second, not two.
    assert clock.now - 100.0 == pytest.approx(23 / 24, abs=0.05)
    assert budgets.get("/v1/charges") is charges


def test_requests_whose_slots_passed_together_leave_no_faster_than_the_budget() -> None:
    """60 requests of one endpoint take their slots (1/24 s apart), then a busy machine
    wakes them 3 s late, all at once: the global budget alone would send them at 90/s.
    Counted as they leave, no second holds more than the endpoint's 24."""
    clock = FakeClock()
    endpoint = RateLimiter(24, clock=clock, sleep=clock.sleep)
    global_budget = RateLimiter(90, clock=clock, sleep=clock.sleep)
    for _ in range(60):
        endpoint.acquire()
    clock.now += 3.0
    left: list[float] = []
    for _ in range(60):
        global_budget.acquire()
        send_when_clear((endpoint, global_budget))
        left.append(clock.now)

    assert max(sum(1 for t in left if start <= t < start + 1.0) for start in left) == 24
    assert left[-1] - left[0] < 3.0  # waits only for what the second allows


def test_a_429_on_an_unlimited_endpoint_gives_it_stripes_default_budget() -> None:
    budgets = EndpointBudgets(None)
    assert budgets.get("/v1/charges").rate is None
    budgets.throttled("/v1/charges", 0.0)
    assert budgets.get("/v1/charges").max_rate == DEFAULT_ENDPOINT_RATE
    assert budgets.get("/v1/customers").rate is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_limiter_spaces_requests_evenly() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10, clock=clock, sleep=clock.sleep)

    for _ in range(21):
        limiter.acquire()

    assert clock.now == pytest.approx(102.0)


def test_rate_limiter_backs_off_on_429_and_recovers() -> None:
    clock = FakeClock()
    limiter = RateLimiter(100, clock=clock, sleep=clock.sleep)
    limiter.acquire()

    limiter.throttled(pause=3)
    limiter.acquire()

    assert clock.now == pytest.approx(103.0)
    assert limiter.rate == 50
    for _ in range(200):
        limiter.succeeded()
    assert limiter.rate == 100


def test_rate_limiter_is_shared_across_threads() -> None:
    import threading

    clock = FakeClock()
    lock = threading.Lock()

    def sleep(seconds: float) -> None:
        with lock:
            clock.sleeps.append(seconds)

    limiter = RateLimiter(50, clock=clock, sleep=sleep)
    threads = [threading.Thread(target=limiter.acquire) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # 40 requests at 50/s from one instant: the slots are 0, 20 ms, ..., 780 ms.
    assert sorted(round(s, 3) for s in clock.sleeps) == [round(i * 0.02, 3) for i in range(1, 40)]


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/v1/charges", "/v1/charges"),
        ("/v1/account", "/v1/account"),
        ("/v1/customers/cus_123", "/v1/customers/{id}"),
        ("/v1/coupons/SUMMER25", "/v1/coupons/{id}"),
        ("/v1/coupons/summer", "/v1/coupons/{id}"),
        ("/v1/invoices/in_1/lines", "/v1/invoices/{id}/lines"),
    ],
)
def test_requests_are_counted_per_stripe_endpoint(path: str, endpoint: str) -> None:
    assert endpoint_of(path) == endpoint


def rate_limited(reason: str) -> dict:
    return {
        "status_code": 429,
        "headers": {"Stripe-Rate-Limited-Reason": reason, "Retry-After": "0"},
        "json": {"error": {"type": "rate_limit_error", "message": "Too many requests"}},
    }


@pytest.mark.parametrize(
    ("reason", "global_rate", "endpoint_slowed"),
    [
        # Stripe's limit of one endpoint: that endpoint alone slows down.
        ("endpoint-rate", 90, True),
        # The account's global limit: everyone slows down.
        ("global-rate", 45, False),
    ],
)
def test_a_429_slows_down_what_it_blames(
    reason: str, global_rate: float, endpoint_slowed: bool
) -> None:
    customer = {"id": "cus_1", "object": "customer"}
    with requests_mock.Mocker() as mocker:
        mocker.get(f"{API_URL}/v1/customers/cus_1", [rate_limited(reason), {"json": customer}])
        mocker.get(f"{API_URL}/v1/customers/cus_2", json={**customer, "id": "cus_2"})
        client = StripeClient(
            api_key=API_KEY, api_url=API_URL, rate_limiter=RateLimiter(90), endpoint_rate=90
        )

        client.get("/v1/customers/cus_1", stream="customer")
        assert client.rate_limiter.rate == pytest.approx(global_rate, abs=2)
        budget = client.endpoint_budgets.get("/v1/customers/{id}")
        assert client.endpoint_budgets.get("/v1/charges").rate == 90
        if endpoint_slowed:
            # Halved from 90, then one success won a little back; other ids share it.
            assert budget.rate == pytest.approx(45 + 90 / 50)
            client.get("/v1/customers/cus_2", stream="customer")
            assert budget.rate == pytest.approx(45 + 2 * 90 / 50)
        else:
            assert budget.rate == 90


def test_retry_warnings_come_once_a_minute_per_endpoint_and_kind_with_the_unsaid_count() -> None:
    clock = FakeClock()
    once = OncePerMinute(clock=clock)
    charges, customers = ("/v1/charges", "HTTP 429"), ("/v1/customers", "HTTP 429")

    assert once.due(charges) == 0
    assert [once.due(charges) for _ in range(5)] == [None] * 5
    assert once.due(customers) == 0  # another endpoint has its own minute
    clock.now += 60
    assert once.due(charges) == 5
    assert once.due(charges) is None
