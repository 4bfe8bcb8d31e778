"""A 200 answer that is JSON but not a Stripe list of objects fails; it is never an empty page.

Read as an empty page, a gateway's JSON error answered with 200 would end every window at
once and move every bookmark to the run's end: later runs would skip all of history.
"""

from __future__ import annotations

import json

import pytest
from tap_stripe.client import StripeError

from tests.tap.conftest import run_tap
from tests.tap.fake_stripe import API_URL, FakeStripe, make_object, stripe_list

BOOKMARK = 1_700_000_000
STATE = {
    "bookmarks": {
        "balancetransaction": {"replication_key": "created", "replication_key_value": BOOKMARK}
    }
}


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"message": "gateway says hi"}},
        {"object": "list"},
        {"object": "list", "data": [], "url": "/v1/balance_transactions"},
        {"object": "list", "data": [1, 2], "has_more": False},
        {"object": "list", "data": ["txn_1"], "has_more": False},
        {"object": "list", "data": {"id": "txn_1"}, "has_more": False},
    ],
)
def test_a_page_that_is_not_a_list_of_objects_fails_and_moves_no_bookmark(
    stripe: FakeStripe, body: dict
) -> None:
    stripe.mocker.get(
        f"{API_URL}/v1/balance_transactions",
        text=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )

    result = run_tap(state=STATE, streams=("balancetransaction",))

    assert isinstance(result.error, StripeError)
    message = str(result.error)
    assert message.startswith(
        "stream 'balancetransaction': Stripe sent a list that could not be read"
    )
    assert "\n" not in message
    assert "balancetransaction" not in result.records
    assert {
        state["bookmarks"]["balancetransaction"]["replication_key_value"] for state in result.states
    } <= {BOOKMARK}


def test_a_nested_list_page_that_is_not_a_list_fails_instead_of_cutting_the_list(
    stripe: FakeStripe,
) -> None:
    invoice = make_object("invoice", BOOKMARK)
    url = f"/v1/invoices/{invoice['id']}/lines"
    lines = [{"id": f"il_{i:03d}", "object": "line_item"} for i in range(10)]
    invoice["lines"] = stripe_list(lines, url, has_more=True)
    stripe.add("invoice", [invoice])
    stripe.mocker.get(
        f"{API_URL}{url}",
        text=json.dumps({"error": {"message": "gateway says hi"}}),
        headers={"Content-Type": "application/json"},
    )

    result = run_tap(streams=("invoice",))

    assert isinstance(result.error, StripeError)
    assert str(result.error).startswith(
        "stream 'invoice': Stripe sent a list that could not be read"
    )
    assert "invoice" not in result.records
