"""Requests in flight (``in_flight.py``): a 429 from Stripe's concurrency limiter cuts the
requests in flight, not the rate; successes win them back, slowly at the level refused."""

from __future__ import annotations

import threading

import pytest
import requests_mock
from tap_stripe.budgets import RateLimiter
from tap_stripe.client import StripeClient
from tap_stripe.in_flight import CUT, PROBE, InFlight, InFlights
from tap_stripe.responses import Cancelled

from tests.tap.fake_stripe import API_KEY, API_URL


def never() -> bool:
    return False


def hold(limit: InFlight, count: int) -> list[tuple[InFlight, int]]:
    """``count`` places taken in ``limit``, each with the round it got."""
    return [(limit, started_in) for started_in in (limit.acquire(never) for _ in range(count))]


def let_go(held: list[tuple[InFlight, int]]) -> None:
    for limit, _ in held:
        limit.release()


def test_a_refusal_cuts_the_limit_to_nine_tenths_of_its_level_once_per_round() -> None:
    limit = InFlight(40)
    held = hold(limit, 25)
    burst = [round_ for _, round_ in held]

    for started_in in burst:  # all sent in the same round, the first at level 21
        limit.refused(started_in, 21)

    assert limit.limit == int(21 * CUT)
    let_go(held)


def test_a_refusal_of_a_request_started_after_the_cut_cuts_again() -> None:
    limit = InFlight(40)
    first = hold(limit, 20)
    limit.refused(first[0][1], 21)
    let_go(first)
    (late,) = hold(limit, 1)
    let_go([late])

    limit.refused(late[1], 1)  # sent alone, and refused

    assert limit.limit == 1.0  # never less than one


def test_the_limit_comes_back_quickly_below_the_refused_level_then_slowly() -> None:
    limit = InFlight(40)
    held = hold(limit, 20)
    limit.refused(held[0][1], 21)
    let_go(held)

    successes = 0
    while limit.limit + 1 < 21:
        limit.succeeded()
        successes += 1
    assert successes <= 2 * 21  # a request in flight back per `limit` successes
    while limit.limit < 21:
        limit.succeeded()
        successes += 1

    assert successes > PROBE * 20  # the last one back, at the level refused
    for _ in range(PROBE * 40 * 40):
        limit.succeeded()
    assert limit.limit == 40  # never past the ceiling


def test_a_full_limit_makes_the_next_request_wait_until_one_ends() -> None:
    limit = InFlight(2)
    held = hold(limit, 2)
    order: list[str] = []
    asking = threading.Event()

    def third() -> None:
        asking.set()
        limit.acquire(never)
        order.append("third in flight")
        limit.release()

    thread = threading.Thread(target=third)
    thread.start()
    assert asking.wait(timeout=10)
    order.append("one ends")
    let_go(held[:1])
    thread.join(timeout=10)

    assert order == ["one ends", "third in flight"]
    let_go(held[1:])


def concurrency_refusal(reason: str) -> dict:
    return {
        "status_code": 429,
        "headers": {"Stripe-Rate-Limited-Reason": reason},
        "json": {"error": {"type": "rate_limit_error", "message": "Too many concurrent"}},
    }


@pytest.mark.parametrize(
    ("reason", "cut"), [("global-concurrency", "account"), ("endpoint-concurrency", "endpoint")]
)
def test_a_concurrency_429_cuts_what_it_blames_and_leaves_the_rates_alone(
    reason: str, cut: str
) -> None:
    customer = {"id": "cus_1", "object": "customer"}
    with requests_mock.Mocker() as mocker:
        mocker.get(
            f"{API_URL}/v1/customers/cus_1", [concurrency_refusal(reason), {"json": customer}]
        )
        client = StripeClient(
            api_key=API_KEY,
            api_url=API_URL,
            rate_limiter=RateLimiter(90),
            endpoint_rate=24,
            pool_size=16,
            sleep=lambda seconds: pytest.fail(f"slept {seconds} s: the retry waits for a slot"),
        )

        assert client.get("/v1/customers/cus_1", stream="customer") == customer

    in_flight = client.budgets.of(None).in_flight
    limits = {"account": in_flight.account, "endpoint": in_flight.of("/v1/customers/{id}")}
    assert limits[cut].limit < 2  # one request in flight, refused: the limit fell to it
    assert all(limit.limit == 16 for name, limit in limits.items() if name != cut)
    assert client.rate_limiter.rate == 90
    assert client.endpoint_budgets.get("/v1/customers/{id}").rate == 24
    assert client.throttled_by_stream["customer"] == 1


def test_a_place_counts_the_level_a_request_is_sent_at_not_those_waiting_behind() -> None:
    """Requests holding an endpoint's place while they wait for the account's are not in
    flight at Stripe: a refusal cuts from the requests sent."""
    limits = InFlights(8)
    gate = threading.BoundedSemaphore(8)
    waiting = hold(limits.of("/v1/charges"), 5)  # places taken, nothing sent

    with limits.place("/v1/charges", gate, never) as place:
        pass
    place.refused("endpoint-concurrency")

    assert limits.of("/v1/charges").limit == 1.0  # sent alone: never below one
    assert limits.account.limit == 8
    let_go(waiting)


def test_a_request_waiting_for_its_place_is_cancelled_once_the_sync_ends() -> None:
    limits = InFlights(1)
    gate = threading.BoundedSemaphore(1)
    held = hold(limits.account, 1)
    ending = threading.Event()

    with pytest.raises(Cancelled):
        ending.set()
        with limits.place("/v1/charges", gate, ending.is_set):
            pytest.fail("sent while the sync was ending")

    assert gate.acquire(blocking=False)  # the places taken before the wait were let go
    let_go(hold(limits.of("/v1/charges"), 1))
    let_go(held)


def test_concurrency_refusals_again_and_again_back_off_after_the_first_retry() -> None:
    """Another integration holding the account's places: retrying at once each time would
    spend the attempts in a fraction of a second and fail the sync."""
    pauses: list[float] = []
    refusal = concurrency_refusal("global-concurrency")
    with requests_mock.Mocker() as mocker:
        mocker.get(f"{API_URL}/v1/charges", [refusal] * 4 + [{"json": {"object": "list"}}])
        client = StripeClient(api_key=API_KEY, api_url=API_URL, sleep=pauses.append)

        client.get("/v1/charges", stream="charge")

    # None before the first retry, then 1, 2 and 4 s, each with jitter down to half.
    assert sum(pauses) >= (1 + 2 + 4) / 2
