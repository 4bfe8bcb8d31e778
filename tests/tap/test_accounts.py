"""Many Stripe accounts in one run: which accounts, each request's Stripe-Account, the
account on every record and in every key, a state entry per account, ACTIVATE_VERSION
scoped to its account, the platform's own tables from the platform only, and an account
that fails leaving the others' data written."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from tap_stripe.account_budgets import AccountBudgets, Budgets
from tap_stripe.accounts import Account, unfinished_first
from tap_stripe.budgets import EndpointBudgets, RateLimiter
from tap_stripe.in_flight import InFlights

from tests.tap.conftest import base_config, entry_of, partition_of, run_tap
from tests.tap.fake_stripe import OWN_ACCOUNT_ID, FakeStripe, make_object

TAP = Path(sys.executable).parent / "tap-stripe"
ALICE, BOB, CAROL = "acct_1Alice00000000", "acct_1Bob0000000000", "acct_1Carol00000000"


def account_records(result_messages: list[dict], stream: str) -> Counter[str]:
    """How many records of ``stream`` each account wrote."""
    return Counter(
        m["record"]["_stripe_account"]
        for m in result_messages
        if m["type"] == "RECORD" and m["stream"] == stream
    )


def requests_by_account(stripe: FakeStripe, path: str) -> Counter[str | None]:
    return Counter(
        account
        for (requested, _), account in zip(stripe.requests, stripe.request_accounts, strict=True)
        if requested == path
    )


def test_each_named_account_is_read_with_its_header_and_its_records_carry_it(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    stripe.add("charge", [make_object("charge", now - 100), make_object("charge", now - 50)])

    result = run_tap(base_config(account_ids=[ALICE, BOB]), streams=("charge",))

    assert result.error is None
    # Named accounts only: the key's own account is neither read nor asked for.
    assert stripe.own_account_requests == 0
    assert requests_by_account(stripe, "/v1/charges") == {ALICE: 1, BOB: 1}
    assert account_records(result.messages, "charge") == {ALICE: 2, BOB: 2}
    [schema] = {json.dumps(s["key_properties"]) for s in result.schemas["charge"]}
    assert json.loads(schema) == ["_stripe_account", "id"]
    for account in (ALICE, BOB):
        assert entry_of(result.last_state, "charge", account)["replication_key_value"] >= now


def test_account_ids_as_one_comma_separated_string_and_account_id_together(
    stripe: FakeStripe,
) -> None:
    stripe.add("coupon", [make_object("coupon", 1_700_000_000)])

    result = run_tap(
        base_config(account_id=ALICE, account_ids=f"{BOB}, {ALICE}"), streams=("coupon",)
    )

    assert result.error is None
    assert requests_by_account(stripe, "/v1/coupons") == {ALICE: 1, BOB: 1}


def test_every_connected_account_is_listed_to_the_end_and_the_platform_read_too(
    stripe: FakeStripe,
) -> None:
    connected = [
        {**make_object("connectedaccount", 1_700_000_000 + n), "id": f"acct_1Listed{n:07d}"}
        for n in range(130)
    ]
    stripe.add("connectedaccount", connected)
    stripe.add("coupon", [make_object("coupon", 1_700_000_000)])
    stripe.add("transfer", [make_object("transfer", 1_700_000_000)])

    result = run_tap(
        base_config(all_connected_accounts=True, max_accounts_at_once=8),
        streams=("coupon", "transfer"),
    )

    assert result.error is None
    # Two pages of /v1/accounts (130 accounts), asked by the platform.
    listing = requests_by_account(stripe, "/v1/accounts")
    assert listing == {None: 2}
    assert stripe.own_account_requests == 1
    coupons = requests_by_account(stripe, "/v1/coupons")
    assert coupons == {None: 1, **{account["id"]: 1 for account in connected}}
    # Transfers are the platform's own: read once, from the platform.
    assert requests_by_account(stripe, "/v1/transfers") == {None: 1}
    assert account_records(result.messages, "transfer") == {OWN_ACCOUNT_ID: 1}
    assert len(account_records(result.messages, "coupon")) == 131


def test_include_platform_false_reads_only_the_connected_accounts(stripe: FakeStripe) -> None:
    stripe.add("connectedaccount", [{**make_object("connectedaccount", 1), "id": ALICE}])
    stripe.add("coupon", [make_object("coupon", 1_700_000_000)])

    result = run_tap(
        base_config(all_connected_accounts=True, include_platform=False), streams=("coupon",)
    )

    assert result.error is None
    assert stripe.own_account_requests == 0
    assert requests_by_account(stripe, "/v1/coupons") == {ALICE: 1}


def test_a_full_read_retires_only_its_own_accounts_rows(stripe: FakeStripe) -> None:
    stripe.add("charge", [make_object("charge", int(time.time()) - 100)])

    result = run_tap(base_config(account_ids=[ALICE, BOB]), streams=("charge",))

    assert result.error is None
    activations = [m for m in result.messages if m["type"] == "ACTIVATE_VERSION"]
    assert sorted(m["scope"]["_stripe_account"] for m in activations) == [ALICE, BOB]
    assert all(set(m["scope"]) == {"_stripe_account"} for m in activations)


def test_an_account_the_key_may_not_act_for_fails_alone_and_the_run_says_so(
    stripe: FakeStripe,
) -> None:
    stripe.add("charge", [make_object("charge", int(time.time()) - 100)])
    revoked = {
        "error": {
            "type": "invalid_request_error",
            "code": "account_invalid",
            "message": f"The provided key does not have access to account '{BOB}' (or that "
            "account does not exist). Application access may have been revoked.",
        }
    }
    stripe.mocker.get(
        f"{stripe.api_url}/v1/charges",
        additional_matcher=lambda request: request.headers.get("Stripe-Account") == BOB,
        status_code=403,
        json=revoked,
    )

    result = run_tap(base_config(account_ids=[ALICE, BOB, CAROL]), streams=("charge",))

    assert result.error is not None
    assert str(result.error).startswith(
        f"1 of 3 accounts failed (the others' data is written): {BOB}:"
    )
    assert account_records(result.messages, "charge") == {ALICE: 1, CAROL: 1}
    for account in (ALICE, CAROL):
        assert "replication_key_value" in entry_of(result.last_state, "charge", account)
    assert entry_of(result.last_state, "charge", BOB) == {}


def test_a_state_of_one_account_is_the_first_accounts_and_a_new_account_starts_whole(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    stripe.add("coupon", [make_object("coupon", now - 7200), make_object("coupon", now - 10)])
    one_account = {
        "replication_key": "created",
        "replication_key_value": now - 3600,
        "events_cursor": now - 3600,
    }

    result = run_tap(
        base_config(account_id=ALICE, account_ids=[BOB]),
        state={"bookmarks": {"coupon": dict(one_account)}},
        streams=("coupon",),
    )

    assert result.error is None
    # Alice (account_id) goes on from the bookmark; Bob, new, reads all history.
    starts = {
        account: params["created[gte]"]
        for (path, params), account in zip(stripe.requests, stripe.request_accounts, strict=True)
        if path == "/v1/coupons"
    }
    assert starts == {ALICE: str(now - 3600 - 300), BOB: "0"}
    assert account_records(result.messages, "coupon") == {ALICE: 1, BOB: 2}
    assert [path for path, _ in stripe.requests].count("/v1/events") == 1  # Alice's pass
    assert "replication_key_value" not in result.last_state["bookmarks"]["coupon"]
    assert partition_of(result.last_state, "coupon", ALICE)["replication_key_value"] >= now


def test_accounts_whose_first_sync_is_unfinished_go_first() -> None:
    accounts = [Account(ALICE, True), Account(BOB, True), Account(CAROL, True)]

    ordered = unfinished_first(accounts, {ALICE: True, BOB: False})

    assert [account.id for account in ordered] == [BOB, CAROL, ALICE]


def test_one_budget_for_the_key_unless_each_account_gets_its_own() -> None:
    shared = Budgets(RateLimiter(95), EndpointBudgets(24), InFlights(8))

    assert AccountBudgets(shared, per_account=False).of(ALICE) is shared
    own = AccountBudgets(shared, per_account=True)
    assert own.of(None) is shared
    assert own.of(ALICE) is own.of(ALICE)
    assert own.of(ALICE) is not own.of(BOB)
    assert own.of(ALICE).rate.max_rate == 95
    assert own.of(ALICE).endpoints.max_rate == 24
    assert own.of(ALICE).in_flight is not shared.in_flight
    assert own.of(ALICE).in_flight.ceiling == 8


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"account_ids": "acct_1A,cus_2"}, "account_ids holds 'cus_2', which is not a Stripe"),
        ({"account_ids": [1]}, "account_ids must hold only strings"),
        ({"account_ids": {"a": 1}}, "account_ids must be a list of account ids"),
        ({"all_connected_accounts": "yes"}, "all_connected_accounts must be true or false"),
        ({"max_accounts_at_once": 0}, "max_accounts_at_once must be a whole number of 1 or more"),
    ],
)
def test_bad_account_settings_are_one_line_each(
    tmp_path: Path, settings: dict, message: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps(base_config(**settings)))

    done = subprocess.run([TAP, "--config", config], capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()[-1:]
    assert line.startswith(f"tap-stripe: error: config: {message}"), done.stderr


def test_no_account_at_all_is_one_line(stripe: FakeStripe) -> None:
    result = run_tap(base_config(include_platform=False), streams=("coupon",))

    assert "no account to read" in str(result.error)
    assert stripe.requests == []
