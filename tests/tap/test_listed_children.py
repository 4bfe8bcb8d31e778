"""Children Stripe embeds nowhere, listed once per parent (payment methods, a payout's
balance transactions...), children expanded on the parent's list only for themselves
(cards, tax ids), and children's own events."""

from __future__ import annotations

import time

import orjson
import pytest
from tap_stripe.changes import DELETED_AT
from tap_stripe.records import parent_column
from tap_stripe.tables import TABLES, TABLES_BY_NAME, TableSpec

from tests.tap.conftest import base_config, entry_of, run_tap
from tests.tap.fake_stripe import FakeStripe, error, make_object, stripe_list

DAY = 86_400
CHILDREN = [spec for spec in TABLES if spec.parent is not None]


def recent_state(stream: str, now: int, written: list[str]) -> dict:
    entry = {
        "replication_key": "created",
        "replication_key_value": now - 60,
        "events_cursor": now - 600,
        "written_tables": written,
    }
    return {"bookmarks": {stream: entry}}


def payment_method(n: int, customer: str | None) -> dict:
    return {"id": f"pm_{n:04d}", "object": "payment_method", "customer": customer, "created": n}


def child_paths(stripe: FakeStripe, suffix: str) -> list[str]:
    return [path for path, _ in stripe.requests if path.endswith(suffix)]


def test_a_full_sync_lists_each_customers_payment_methods_once(stripe: FakeStripe) -> None:
    now = int(time.time())
    customers = stripe.add(
        "customer", [make_object("customer", now - 10 * i - 10) for i in range(3)]
    )
    for n, customer in enumerate(customers):
        methods = [payment_method(n * 10 + k, customer["id"]) for k in range(n)]
        stripe.listed["paymentmethod", customer["id"]] = methods

    result = run_tap(base_config(), streams=("paymentmethod",))

    assert result.error is None
    rows = result.records["paymentmethod"]
    assert sorted((r["customer"], r["id"]) for r in rows) == sorted(
        (c["id"], pm["id"]) for c in customers for pm in stripe.listed["paymentmethod", c["id"]]
    )
    assert sorted(child_paths(stripe, "/payment_methods")) == sorted(
        f"/v1/customers/{c['id']}/payment_methods" for c in customers
    )
    assert "customer" not in result.records


def test_a_quiet_incremental_run_lists_no_parent_and_reads_own_events(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    customer = stripe.add("customer", [make_object("customer", now - DAY)])[0]
    attached = payment_method(1, customer["id"])
    detached = payment_method(2, None)
    stripe.add_event("payment_method.attached", attached, created=now - 100)
    stripe.add_event("payment_method.detached", detached, created=now - 90)
    state = recent_state("customer", now, ["customer", "paymentmethod"])

    result = run_tap(base_config(), state=state, streams=("customer", "paymentmethod"))

    assert result.error is None
    rows = {r["id"]: r for r in result.records["paymentmethod"]}
    assert rows["pm_0001"]["customer"] == customer["id"]
    assert rows["pm_0001"].get(DELETED_AT) is None
    assert rows["pm_0002"][DELETED_AT] is not None
    assert child_paths(stripe, "/payment_methods") == [], "no customer is listed"


def test_a_changed_balance_lists_that_customers_balance_transactions_again(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    topped, renamed = stripe.add(
        "customer", [make_object("customer", now - DAY), make_object("customer", now - DAY)]
    )
    stripe.listed["customerbalancetransaction", topped["id"]] = [
        {"id": "cbtxn_1", "object": "customer_balance_transaction", "customer": topped["id"]}
    ]
    stripe.add_event(
        "customer.updated", {**topped, "balance": -500}, created=now - 50, previous={"balance": 0}
    )
    stripe.add_event(
        "customer.updated", {**renamed, "name": "B"}, created=now - 40, previous={"name": "A"}
    )
    state = recent_state("customer", now, ["customer", "customerbalancetransaction"])

    result = run_tap(base_config(), state=state, streams=("customer", "customerbalancetransaction"))

    assert result.error is None
    assert [r["id"] for r in result.records["customerbalancetransaction"]] == ["cbtxn_1"]
    assert child_paths(stripe, "/balance_transactions") == [
        f"/v1/customers/{topped['id']}/balance_transactions"
    ]


def test_only_automatic_payouts_have_their_balance_transactions_listed(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    automatic = make_object("payout", now - 100, automatic=True)
    manual = make_object("payout", now - 200, automatic=False)
    stripe.add("payout", [automatic, manual])
    stripe.listed["payoutbalancetransaction", automatic["id"]] = [
        {"id": "txn_1", "object": "balance_transaction", "created": now - 300}
    ]

    result = run_tap(base_config(), streams=("payoutbalancetransaction",))

    assert result.error is None
    assert result.records["payoutbalancetransaction"] == [
        {
            "id": "txn_1",
            "object": "balance_transaction",
            "created": now - 300,
            "payout": automatic["id"],
        }
    ]
    payouts = [p.get("payout") for path, p in stripe.requests if path == "/v1/balance_transactions"]
    assert payouts == [automatic["id"]]
    keys = result.schemas["payoutbalancetransaction"][0]["key_properties"]
    assert keys == ["_stripe_account", "payout", "id"]


def test_a_refused_list_of_one_parent_leaves_it_out_and_the_run_goes_on(
    stripe: FakeStripe,
) -> None:
    accounts = stripe.add(
        "connectedaccount", [make_object("connectedaccount", 0) for _ in range(2)]
    )
    refused, readable = accounts
    stripe.listed["person", readable["id"]] = [{"id": "person_1", "object": "person"}]
    forbidden = {"error": {"type": "invalid_request_error", "message": "No access to persons"}}
    stripe.fail_path(f"/v1/accounts/{refused['id']}/persons", error(403, body=forbidden))

    result = run_tap(base_config(), streams=("person",))

    assert result.error is None
    assert [(r["account"], r["id"]) for r in result.records["person"]] == [
        (readable["id"], "person_1")
    ]
    versions = [m for m in result.messages if m["type"] == "ACTIVATE_VERSION"]
    assert [m["stream"] for m in versions] == ["person"]


def test_cards_come_from_the_customers_expanded_sources_not_their_rows(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    customer = make_object("customer", now - 100)
    sources = [
        {"id": "card_1", "object": "card", "customer": customer["id"]},
        {"id": "ba_1", "object": "bank_account", "customer": customer["id"]},
        {"id": "src_1", "object": "source"},
    ]
    customer["sources"] = stripe_list(sources, f"/v1/customers/{customer['id']}/sources")
    stripe.add("customer", [customer])

    result = run_tap(base_config(), streams=("customer", "card", "bankaccount"))

    assert result.error is None
    assert [r["id"] for r in result.records["card"]] == ["card_1"]
    assert [r["id"] for r in result.records["bankaccount"]] == ["ba_1"]
    assert "sources" not in result.records["customer"][0]
    assert all(p["expand[]"] == ["data.sources"] for p in stripe.list_requests("customer"))


def test_usage_summaries_are_listed_for_metered_subscription_items_only(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    subscription = make_object("subscription", now - 100)
    metered = {
        "id": "si_metered",
        "object": "subscription_item",
        "price": {"recurring": {"usage_type": "metered"}},
    }
    licensed = {
        "id": "si_licensed",
        "object": "subscription_item",
        "price": {"recurring": {"usage_type": "licensed"}},
    }
    subscription["items"] = stripe_list(
        [metered, licensed], f"/v1/subscription_items?subscription={subscription['id']}"
    )
    stripe.add("subscription", [subscription])
    summary = {"id": "sis_1", "object": "usage_record_summary", "total_usage": 7}
    stripe.listed["usagerecordsummary", "si_metered"] = [summary]

    result = run_tap(base_config(), streams=("usagerecordsummary",))

    assert result.error is None
    assert result.records["usagerecordsummary"] == [{**summary, "subscription_item": "si_metered"}]
    assert child_paths(stripe, "/usage_record_summaries") == [
        "/v1/subscription_items/si_metered/usage_record_summaries"
    ]
    assert "subscription" not in result.records
    assert "subscriptionitem" not in result.records


@pytest.mark.parametrize("child", CHILDREN, ids=lambda spec: spec.name)
def test_a_quiet_run_of_a_child_costs_its_parents_requests_and_its_own_events(
    stripe: FakeStripe, child: TableSpec
) -> None:
    parent = TABLES_BY_NAME[child.parent.table]
    top = TABLES_BY_NAME[parent.parent.table] if parent.parent is not None else parent
    now = int(time.time())
    written = sorted({top.name, child.name})
    state = recent_state(top.name, now, written) if top.replication_key else None

    result = run_tap(base_config(), state=state, streams=(top.name, child.name))

    assert result.error is None
    # One list page, and the run's one events pass for the parent's and the child's own.
    evented = state is not None and bool(top.event_types or child.event_types)
    expected = 1 + int(evented)
    assert len(stripe.requests) == expected, stripe.requests


def test_one_pages_long_list_does_not_hold_back_the_next_pages_lists(
    stripe: FakeStripe,
) -> None:
    """A parent page's lists go on while the next page's start: one payout with thousands
    of balance transactions, listed a page at a time, must not stall its table's others.
    The newest customer's list goes on page after page until the oldest customer's list
    (on the next page of customers) is asked for."""
    now = int(time.time())
    customers = stripe.add(
        "customer", [make_object("customer", now - DAY - 60 * i) for i in range(150)]
    )
    newest, oldest = customers[0], customers[-1]
    long_path = f"/v1/customers/{newest['id']}/payment_methods"
    oldest_path = f"/v1/customers/{oldest['id']}/payment_methods"
    pages_before = 1000

    def page(request: object, context: object) -> dict:
        served = sum(path == long_path for path, _ in stripe.requests)
        goes_on = served < pages_before and all(path != oldest_path for path, _ in stripe.requests)
        method = payment_method(served, newest["id"])
        return stripe_list([method], long_path, has_more=goes_on)

    stripe.fail_path(long_path, *[page] * pages_before)

    result = run_tap(base_config(max_concurrency=4), streams=("paymentmethod",))

    assert result.error is None
    long_list = sum(path == long_path for path, _ in stripe.requests)
    assert long_list < pages_before, "the next page's lists waited for the long one"
    assert len(result.records["paymentmethod"]) == long_list


def test_every_state_covers_the_listed_rows_of_the_parents_below_its_bookmark(
    stripe: FakeStripe,
) -> None:
    customers = stripe.add(
        "customer", [make_object("customer", 1_600_000_000 + i * DAY) for i in range(450)]
    )
    for customer in customers:
        method = payment_method(int(customer["created"]), customer["id"])
        stripe.listed["paymentmethod", customer["id"]] = [method]

    result = run_tap(base_config(max_concurrency=4), streams=("customer", "paymentmethod"))

    assert result.error is None
    assert len(result.records["paymentmethod"]) == len(customers)
    listed: set[str] = set()
    bookmarks = []
    for message in result.messages:
        if message["type"] == "RECORD" and message["stream"] == "paymentmethod":
            listed.add(message["record"]["customer"])
        elif message["type"] == "STATE":
            bookmark = entry_of(message["value"], "customer").get("replication_key_value")
            if bookmark is not None:
                bookmarks.append(bookmark)
                below = {c["id"] for c in customers if c["created"] < bookmark}
                assert below <= listed, bookmark
    assert len(set(bookmarks)) > 1, "the bookmark moved more than once"


def test_a_listed_row_gets_its_parents_id_and_keeps_stripes_bytes() -> None:
    column = parent_column("payout")

    assert column.set(b'{"id":"txn_1","amount":-5}', "po_1") == (
        b'{"payout":"po_1","id":"txn_1","amount":-5}'
    )
    same = b'{"id":"txn_1","payout":"po_1"}'
    assert column.set(same, "po_1") is same
    assert orjson.loads(column.set(b'{"id":"txn_1","payout":"po_2"}', "po_1")) == {
        "id": "txn_1",
        "payout": "po_1",
    }
    assert orjson.loads(column.set(b"{ }", 'po_"1')) == {"payout": 'po_"1'}
