"""A table the account cannot read is skipped with one warning, its state untouched."""

from __future__ import annotations

import logging
import time

import pytest
from tap_stripe.availability import unavailable_reason
from tap_stripe.client import StripeAPIError
from tap_stripe.tables import TABLES_BY_NAME

from tests.tap.conftest import base_config, run_tap
from tests.tap.fake_stripe import FakeStripe, error, make_object

PERMISSION = {
    "error": {
        "type": "invalid_request_error",
        "message": "The provided key 'rk_test_***' does not have the required permissions "
        "for this endpoint on account 'acct_1'.",
    }
}
NOT_SET_UP = {
    "error": {
        "type": "invalid_request_error",
        "message": "Your account is not set up to use Issuing. Please visit "
        "https://dashboard.stripe.com/issuing/overview to get started.",
    }
}
NO_ENDPOINT = {
    "error": {
        "type": "invalid_request_error",
        "message": "Unrecognized request URL (GET: /v1/coupons).",
    }
}


def skip_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Skipping table")]


@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (403, PERMISSION, "the API key may not read it"),
        (400, NOT_SET_UP, "the account is not set up for it"),
        (404, NO_ENDPOINT, "Stripe has no such endpoint for this account"),
    ],
)
def test_a_table_the_account_cannot_read_is_skipped_and_the_others_go_on(
    stripe: FakeStripe, caplog: pytest.LogCaptureFixture, status: int, body: dict, why: str
) -> None:
    now = int(time.time())
    charges = stripe.add("charge", [make_object("charge", now - 100) for _ in range(3)])
    stripe.add("coupon", [make_object("coupon", now - 50)])
    stripe.fail_path("/v1/coupons", error(status, body=body))
    with caplog.at_level(logging.WARNING):
        result = run_tap(base_config(), streams=("coupon", "charge"))
    assert result.error is None
    assert {r["id"] for r in result.records["charge"]} == {c["id"] for c in charges}
    assert "coupon" not in result.records
    (line,) = skip_lines(caplog)
    assert line.startswith(f"Skipping table 'coupon': {why} (HTTP {status} ")
    assert result.entry("coupon") == {}
    assert result.entry("charge")


def test_a_skipped_table_keeps_the_state_it_had(
    stripe: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    earlier = {"replication_key": "created", "replication_key_value": now - 3_600}
    earlier["events_cursor"] = now - 3_600
    stripe.fail_path("/v1/coupons", error(403, body=PERMISSION))
    with caplog.at_level(logging.WARNING):
        result = run_tap(
            base_config(), state={"bookmarks": {"coupon": dict(earlier)}}, streams=("coupon",)
        )
    assert result.error is None
    assert result.entry("coupon") == earlier
    assert len(skip_lines(caplog)) == 1


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, "Received unknown parameter: colour"),
        (401, "Invalid API Key provided: sk_test_***"),
        (402, "Your card was declined."),
    ],
)
def test_any_other_refusal_still_fails_the_run(
    stripe: FakeStripe, status: int, message: str
) -> None:
    body = {"error": {"type": "invalid_request_error", "message": message}}
    stripe.fail_path("/v1/coupons", error(status, body=body))
    result = run_tap(base_config(), streams=("coupon",))
    assert isinstance(result.error, StripeAPIError)
    assert result.error.status == status


def test_a_404_of_one_object_is_not_a_missing_table() -> None:
    spec = TABLES_BY_NAME["charge"]
    gone = StripeAPIError(
        "charge", 404, "invalid_request_error", "No such charge", None, "/v1/charges/ch_1"
    )
    listing = StripeAPIError(
        "charge", 404, "invalid_request_error", "Unrecognized", None, "/v1/charges"
    )
    assert unavailable_reason(gone, spec) is None
    assert unavailable_reason(listing, spec) is not None
