"""Change capture: events since the cursor, re-fetches, tombstones, versions and catch-up."""

from __future__ import annotations

import datetime
import json
import logging
import time
from typing import Any

import pytest
from tap_stripe.changes import ChangeSet
from tap_stripe.client import StripeAPIError
from tap_stripe.tables import TABLES, TABLES_BY_NAME
from tap_stripe.tap import TapStripe

from tests.tap.conftest import SyncResult, base_config, entry_of, partition_of, run_tap
from tests.tap.fake_stripe import (
    API_KEY,
    EVENTS_PATH,
    FakeStripe,
    error,
    make_event,
    make_object,
    stripe_list,
)

DAY = 86_400
OTHER_VERSION = "2020-08-27"
TRACKED = [spec.name for spec in TABLES if spec.event_types and spec.parent is None]
UNTRACKED = ["balancetransaction", "event"]


def iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat()


def parse_iso(value: str) -> float:
    return datetime.datetime.fromisoformat(value).timestamp()


def by_id(records: list[dict]) -> dict[str, dict]:
    return {record["id"]: record for record in records}


def incremental_state(stream: str, bookmark: int, events_cursor: int | None) -> dict:
    entry: dict[str, Any] = {
        "replication_key": TABLES_BY_NAME[stream].replication_key,
        "replication_key_value": bookmark,
    }
    if events_cursor is not None:
        entry["events_cursor"] = events_cursor
    return {"bookmarks": {stream: entry}}


def recent_state(stream: str, now: int) -> dict:
    """A state whose bookmark and events cursor are a minute old."""
    return incremental_state(stream, now - 60, now - 60)


def events_requests(stripe: FakeStripe) -> list[dict[str, Any]]:
    return [params for path, params in stripe.requests if path == EVENTS_PATH]


def stream_state(state: dict, stream: str) -> dict:
    return entry_of(state, stream)


def position(result: SyncResult, predicate: Any) -> int:
    """Index of the first message matching ``predicate``."""
    return next(i for i, message in enumerate(result.messages) if predicate(message))


def is_record_of(object_id: str) -> Any:
    return lambda m: m["type"] == "RECORD" and m["record"]["id"] == object_id


def changed(base: dict, **fields: Any) -> dict:
    """``base`` as an event renders it after a change."""
    return {**base, **fields}


def test_the_fake_refuses_a_wildcard_in_types_like_stripe(stripe: FakeStripe) -> None:
    import requests

    url = f"{stripe.api_url}{EVENTS_PATH}"
    refused = requests.get(url, params={"types[]": ["invoice.*"]}, timeout=5)
    accepted = requests.get(url, params={"types[]": ["invoice.paid"]}, timeout=5)

    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert accepted.status_code == 200


# ---- ChangeSet -------------------------------------------------------------------------


def test_the_newest_event_wins_whatever_the_order() -> None:
    charge = make_object("charge", 1_700_000_000)
    events = [
        make_event("charge.updated", changed(charge, amount=n), created=1_700_000_100 + n)
        for n in range(5)
    ]
    raws = [json.dumps(event).encode() for event in events]
    spec = TABLES_BY_NAME["charge"]

    for order in (raws, raws[::-1], raws[2:] + raws[:2]):
        with ChangeSet(spec, "2023-08-16") as changes:
            changes.add(order)
            found = changes.changes()
            assert found.upserts == [charge["id"]]
            assert json.loads(changes.payload(charge["id"]))["amount"] == 4
            assert found.refetch == [] and found.tombstones == {}


# ---- the second run: events since the cursor ------------------------------------------


@pytest.mark.parametrize("stream", ["charge", "customer", "subscription", "invoice"])
def test_a_second_run_reads_the_events_since_the_cursor_less_the_lookback_in_one_pass(
    stripe: FakeStripe, stream: str
) -> None:
    stripe.add(stream, [make_object(stream, int(time.time()) - 10 * DAY)])
    first = run_tap(streams=(stream,))
    cursor = stream_state(first.last_state, stream)["events_cursor"]
    assert cursor == first.bookmark(stream)
    assert events_requests(stripe) == []  # a first sync lists, it reads no events
    stripe.requests.clear()

    second = run_tap(base_config(lookback_window=600), state=first.last_state, streams=(stream,))

    assert second.error is None
    end = stream_state(second.last_state, stream)["events_cursor"]
    [request] = events_requests(stripe)
    assert request["created[gte]"] == str(cursor - 600)
    assert request["created[lt]"] == str(end)
    # One pass for every table: no type filter (Stripe takes 20 exact types a query).
    assert not {"type", "types[]"} & set(request)
    assert cursor <= end <= time.time()


def test_one_events_pass_serves_every_table_from_the_oldest_cursor_each_from_its_own(
    stripe: FakeStripe,
) -> None:
    """Two tables with cursors a day apart: one events query from the older cursor; each
    table writes only its own events, and only those since its own cursor."""
    now = int(time.time())
    charge = stripe.add("charge", [make_object("charge", now - 10 * DAY)])[0]
    customer = stripe.add("customer", [make_object("customer", now - 10 * DAY)])[0]
    first = run_tap(streams=("charge", "customer"))
    state = json.loads(json.dumps(first.last_state))
    partition_of(state, "charge")["events_cursor"] = now - DAY
    partition_of(state, "customer")["events_cursor"] = now - 2 * DAY
    stripe.requests.clear()
    # Older than the charge table's cursor, newer than the customer table's.
    between = now - DAY - DAY // 2
    stripe.add_event("charge.updated", changed(charge, amount=7), created=between)
    stripe.add_event("customer.updated", changed(customer, name="Old"), created=between)
    stripe.add_event("charge.updated", changed(charge, amount=9), created=now - DAY // 2)

    second = run_tap(base_config(lookback_window=0), state=state, streams=("charge", "customer"))

    assert second.error is None
    [request] = events_requests(stripe)
    assert request["created[gte]"] == str(partition_of(state, "customer")["events_cursor"])
    assert [c["amount"] for c in second.records["charge"]] == [9]
    assert [c["name"] for c in second.records["customer"]] == ["Old"]


def test_the_newest_event_of_an_object_wins_across_pages(stripe: FakeStripe) -> None:
    now = int(time.time())
    target = stripe.add("charge", [make_object("charge", now - 10 * DAY, amount=1)])[0]
    # Newest first: the target's newest event is on the first page, its older ones after
    # the 150 others, on the second.
    stripe.add_event("charge.updated", changed(target, amount=3), created=now - 100)
    others = [make_object("charge", now - 10 * DAY + i) for i in range(150)]
    for i, other in enumerate(others):
        stripe.add_event("charge.succeeded", other, created=now - 101 - i % 90)
    stripe.add_event("charge.succeeded", changed(target, amount=2), created=now - 200)
    stripe.add_event("charge.updated", changed(target, amount=1), created=now - 300)

    result = run_tap(state=recent_state("charge", now), streams=("charge",))

    assert result.error is None
    assert len(events_requests(stripe)) >= 2
    records = result.records["charge"]
    assert [r["amount"] for r in records if r["id"] == target["id"]] == [3]
    assert set(by_id(records)) == {target["id"]} | set(by_id(others))
    assert stripe.retrieve_requests("charge") == []


def test_a_deleted_customer_becomes_a_tombstone(stripe: FakeStripe) -> None:
    now = int(time.time())
    gone, kept = stripe.add(
        "customer",
        [make_object("customer", now - 10 * DAY), make_object("customer", now - 9 * DAY)],
    )
    stripe.delete("customer", gone["id"])
    stripe.add_event("customer.updated", changed(gone, name="A"), created=now - 200)
    stripe.add_event("customer.deleted", changed(gone, name="B"), created=now - 100)
    stripe.add_event("customer.updated", changed(kept, name="K"), created=now - 150)

    result = run_tap(state=recent_state("customer", now), streams=("customer",))

    records = by_id(result.records["customer"])
    assert records[gone["id"]]["name"] == "B"
    assert records[gone["id"]]["_sdc_deleted_at"] == iso(now - 100)
    assert records[kept["id"]]["name"] == "K"
    assert records[kept["id"]].get("_sdc_deleted_at") is None
    assert stripe.retrieve_requests("customer") == []


def test_a_cancelled_subscription_is_an_update_not_a_tombstone(stripe: FakeStripe) -> None:
    now = int(time.time())
    subscription = make_object("subscription", now - 10 * DAY, status="active")
    stripe.add("subscription", [subscription])
    cancelled = changed(subscription, status="canceled")
    stripe.add_event("customer.subscription.deleted", cancelled, created=now - 100)

    result = run_tap(state=recent_state("subscription", now), streams=("subscription",))

    [record] = result.records["subscription"]
    assert record == cancelled
    assert "_sdc_deleted_at" not in record


def test_upcoming_invoices_and_objects_before_start_date_are_skipped(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    old, new = stripe.add(
        "invoice",
        [make_object("invoice", now - 30 * DAY), make_object("invoice", now - 5 * DAY)],
    )
    upcoming = {"object": "invoice", "customer": "cus_1", "amount_due": 500, "created": now}
    stripe.add_event("invoice.upcoming", upcoming, created=now - 120)
    stripe.add_event("invoice.paid", changed(old, status="paid"), created=now - 90)
    stripe.add_event("invoice.paid", changed(new, status="paid"), created=now - 80)
    config = base_config(start_date=iso(now - 20 * DAY))

    result = run_tap(config, state=recent_state("invoice", now), streams=("invoice",))

    assert result.error is None
    assert result.records["invoice"] == [changed(new, status="paid")]
    assert stripe.retrieve_requests("invoice") == []


# ---- re-fetch --------------------------------------------------------------------------


def charge_with_current(stripe: FakeStripe, now: int) -> tuple[dict, dict]:
    """A listed charge and the different current state retrieving it answers."""
    charge = stripe.add("charge", [make_object("charge", now - 10 * DAY, amount=100)])[0]
    current = stripe.put("charge", changed(charge, amount=999, refunded=True))
    return charge, current


def test_an_event_at_another_api_version_is_re_fetched(stripe: FakeStripe) -> None:
    now = int(time.time())
    charge, current = charge_with_current(stripe, now)
    rendered = {k: v for k, v in charge.items() if k != "metadata"} | {"amount": 500}
    stripe.add_event("charge.updated", rendered, created=now - 100, api_version=OTHER_VERSION)

    result = run_tap(state=recent_state("charge", now), streams=("charge",))

    assert result.records["charge"] == [current]
    assert stripe.retrieve_requests("charge") == [charge["id"]]


def test_two_events_in_the_newest_second_are_re_fetched(stripe: FakeStripe) -> None:
    now = int(time.time())
    charge, current = charge_with_current(stripe, now)
    stripe.add_event("charge.updated", changed(charge, amount=1), created=now - 100)
    stripe.add_event("charge.refunded", changed(charge, amount=2), created=now - 100)

    result = run_tap(state=recent_state("charge", now), streams=("charge",))

    assert result.records["charge"] == [current]
    assert stripe.retrieve_requests("charge") == [charge["id"]]


def test_an_object_with_many_events_is_re_fetched_once(stripe: FakeStripe) -> None:
    now = int(time.time())
    charge, current = charge_with_current(stripe, now)
    for i in range(6):
        stripe.add_event(
            "charge.updated", charge, created=now - 200 + i * 10, api_version=OTHER_VERSION
        )

    result = run_tap(
        base_config(max_concurrency=4), state=recent_state("charge", now), streams=("charge",)
    )

    assert result.records["charge"] == [current]
    assert stripe.retrieve_requests("charge") == [charge["id"]]


def test_a_re_fetch_answering_404_is_a_tombstone(stripe: FakeStripe) -> None:
    now = int(time.time())
    product = stripe.add("product", [make_object("product", now - 10 * DAY, name="P")])[0]
    stripe.delete("product", product["id"])
    stripe.add_event("product.updated", product, created=now - 100, api_version=OTHER_VERSION)
    before = time.time()

    result = run_tap(state=recent_state("product", now), streams=("product",))

    assert result.error is None
    [record] = result.records["product"]
    assert {k: v for k, v in record.items() if k != "_sdc_deleted_at"} == product
    assert before - 1 <= parse_iso(record["_sdc_deleted_at"]) <= time.time()
    assert stripe.retrieve_requests("product") == [product["id"]]


def test_a_re_fetch_answering_the_deleted_stub_is_a_tombstone(stripe: FakeStripe) -> None:
    now = int(time.time())
    customer = stripe.add("customer", [make_object("customer", now - 10 * DAY)])[0]
    stripe.delete("customer", customer["id"])
    rendered = changed(customer, email="last@example.com")
    stripe.add_event("customer.updated", rendered, created=now - 100, api_version=OTHER_VERSION)

    result = run_tap(state=recent_state("customer", now), streams=("customer",))

    [record] = result.records["customer"]
    assert record["email"] == "last@example.com"  # the last known object, not the stub
    assert "deleted" not in record
    assert parse_iso(record["_sdc_deleted_at"]) > now - 100
    assert stripe.retrieve_requests("customer") == [customer["id"]]


def test_a_re_fetch_answering_500_is_retried(stripe: FakeStripe, no_sleep: list[float]) -> None:
    now = int(time.time())
    charge, current = charge_with_current(stripe, now)
    stripe.add_event("charge.updated", charge, created=now - 100, api_version=OTHER_VERSION)
    stripe.fail_path(f"/v1/charges/{charge['id']}", error(500))

    result = run_tap(state=recent_state("charge", now), streams=("charge",))

    assert result.error is None
    assert result.records["charge"] == [current]
    assert stripe.retrieve_requests("charge") == [charge["id"], charge["id"]]
    assert len(no_sleep) == 1


def test_a_changed_invoice_gets_its_complete_lines(stripe: FakeStripe) -> None:
    now = int(time.time())
    lines = [{"id": f"il_{i:04d}", "object": "line_item", "amount": i} for i in range(35)]
    lines.sort(key=lambda line: line["id"], reverse=True)
    invoice = stripe.add("invoice", [make_object("invoice", now - 10 * DAY)])[0]
    url = f"/v1/invoices/{invoice['id']}/lines"
    paid = changed(invoice, status="paid")
    paid["lines"] = stripe_list([dict(line) for line in lines[:10]], url, has_more=True)
    stripe.nested[invoice["id"]] = lines
    stripe.add_event("invoice.paid", paid, created=now - 100)

    result = run_tap(state=recent_state("invoice", now), streams=("invoice",))

    [record] = result.records["invoice"]
    assert record["status"] == "paid"
    assert [line["id"] for line in record["lines"]["data"]] == [line["id"] for line in lines]
    assert record["lines"]["has_more"] is False
    assert stripe.retrieve_requests("invoice") == []


# ---- order of records and state --------------------------------------------------------


def test_changes_are_written_before_the_increment_then_the_cursor_moves(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    old = stripe.add("charge", [make_object("charge", now - 10 * DAY)])[0]
    fresh = stripe.add("charge", [make_object("charge", now - 30)])[0]
    stripe.add_event("charge.refunded", changed(old, refunded=True), created=now - 100)
    bookmark = now - 60

    result = run_tap(state=recent_state("charge", now), streams=("charge",))

    assert result.error is None
    end = stream_state(result.last_state, "charge")["events_cursor"]
    assert now <= end <= time.time()
    change = position(result, is_record_of(old["id"]))
    cursor_moved = position(
        result,
        lambda m: (
            m["type"] == "STATE" and stream_state(m["value"], "charge").get("events_cursor") == end
        ),
    )
    increment = position(result, is_record_of(fresh["id"]))
    assert change < cursor_moved < increment
    assert stream_state(result.messages[cursor_moved]["value"], "charge") == {
        "replication_key": "created",
        "replication_key_value": bookmark,
        "events_cursor": end,
    }
    assert result.bookmark("charge") == end
    assert "version" not in result.messages[change]
    assert not any(m["type"] == "ACTIVATE_VERSION" for m in result.messages)


# ---- table versions --------------------------------------------------------------------


def activate_positions(result: SyncResult, stream: str) -> list[int]:
    return [
        i
        for i, m in enumerate(result.messages)
        if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream
    ]


def states_with(result: SyncResult, stream: str) -> list[tuple[int, dict]]:
    return [
        (i, stream_state(m["value"], stream))
        for i, m in enumerate(result.messages)
        if m["type"] == "STATE"
    ]


def test_a_first_sync_of_a_tracked_table_carries_a_version_and_activates_it(
    stripe: FakeStripe,
) -> None:
    before = time.time()
    stripe.add("charge", [make_object("charge", 1_600_000_000 + i * DAY) for i in range(250)])

    result = run_tap(streams=("charge",))

    assert result.error is None
    records = [m for m in result.messages if m["type"] == "RECORD"]
    assert len(records) == 250
    versions = {m.get("version") for m in records}
    [version] = versions
    assert before * 1000 - 1 <= version <= time.time() * 1000
    [activate] = activate_positions(result, "charge")
    assert result.messages[activate]["version"] == version
    end = result.bookmark("charge")
    assert max(i for i, m in enumerate(result.messages) if m["type"] == "RECORD") < activate
    for index, state in states_with(result, "charge"):
        if state.get("replication_key_value", 0) >= end:
            assert index > activate
    assert stream_state(result.last_state, "charge")["events_cursor"] == end


@pytest.mark.parametrize("stream", UNTRACKED)
def test_untracked_tables_get_no_version(stripe: FakeStripe, stream: str) -> None:
    stripe.add(stream, [make_object(stream, 1_600_000_000 + i) for i in range(3)])

    result = run_tap(streams=(stream,))

    records = [m for m in result.messages if m["type"] == "RECORD"]
    assert len(records) == 3
    assert all("version" not in m for m in records)
    assert not any(m["type"] == "ACTIVATE_VERSION" for m in result.messages)
    assert "events_cursor" not in stream_state(result.last_state, stream)


# ---- catch-up --------------------------------------------------------------------------


def catch_up_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "CATCH-UP" in r.getMessage()]


@pytest.mark.parametrize("cursor_age", [None, 40 * DAY], ids=["no-cursor", "cursor-40-days"])
def test_a_missing_or_expired_cursor_catches_up_with_a_full_read(
    stripe: FakeStripe, caplog: pytest.LogCaptureFixture, cursor_age: int | None
) -> None:
    now = int(time.time())
    bookmark = now - DAY
    listed = stripe.add("charge", [make_object("charge", now - 100 * DAY + i) for i in range(3)])
    stripe.add_event("charge.updated", listed[0], created=now - 100)
    cursor = None if cursor_age is None else now - cursor_age
    state = incremental_state("charge", bookmark, cursor)
    before = dict(stream_state(state, "charge"))

    with caplog.at_level(logging.WARNING):
        result = run_tap(state=state, streams=("charge",))

    assert result.error is None
    [warning] = catch_up_warnings(caplog)
    assert warning.levelno == logging.WARNING and "'charge'" in warning.getMessage()
    assert events_requests(stripe) == []
    assert stripe.list_requests("charge")[0]["created[gte]"] == "0"
    records = [m for m in result.messages if m["type"] == "RECORD"]
    assert by_id(result.records["charge"]) == by_id(listed)
    [version] = {m.get("version") for m in records}
    [activate] = activate_positions(result, "charge")
    assert result.messages[activate]["version"] == version
    for index, entry in states_with(result, "charge"):
        if index < activate:
            assert entry == before
    end = result.bookmark("charge")
    assert end >= now
    assert stream_state(result.last_state, "charge")["events_cursor"] == end


def test_a_catch_up_from_start_date(stripe: FakeStripe, caplog: pytest.LogCaptureFixture) -> None:
    now = int(time.time())
    start = now - 50 * DAY
    stripe.add("coupon", [make_object("coupon", start - DAY), make_object("coupon", start + DAY)])
    config = base_config(start_date=iso(start))

    with caplog.at_level(logging.WARNING):
        result = run_tap(
            config, state=incremental_state("coupon", now - DAY, None), streams=("coupon",)
        )

    assert len(catch_up_warnings(caplog)) == 1
    assert stripe.list_requests("coupon")[0]["created[gte]"] == str(start)
    assert [r["created"] for r in result.records["coupon"]] == [start + DAY]
    assert len(activate_positions(result, "coupon")) == 1


def test_a_catch_up_that_fails_midway_leaves_the_state_as_it_was(stripe: FakeStripe) -> None:
    now = int(time.time())
    stripe.add("charge", [make_object("charge", now - 100 * DAY + i) for i in range(250)])
    state = incremental_state("charge", now - DAY, None)
    before = dict(stream_state(state, "charge"))
    stripe.fail_after = 1

    result = run_tap(state=state, streams=("charge",))

    assert result.error is not None
    assert len(result.records.get("charge", [])) < 250
    assert result.states, "the run emits its state"
    assert all(stream_state(s, "charge") == before for s in result.states)
    assert activate_positions(result, "charge") == []


# ---- requests per run ------------------------------------------------------------------


@pytest.mark.parametrize("stream", TRACKED + UNTRACKED)
def test_a_run_with_nothing_new_makes_two_requests_per_tracked_table(
    stripe: FakeStripe, stream: str
) -> None:
    now = int(time.time())
    state = recent_state(stream, now) if stream in TRACKED else incremental_state(stream, now, None)

    result = run_tap(state=state, streams=(stream,))

    assert result.error is None
    expected = 2 if stream in TRACKED else 1
    assert len(stripe.requests) == expected
    assert len(events_requests(stripe)) == (0 if stream == "balancetransaction" else 1)


# ---- secrets ---------------------------------------------------------------------------


def test_the_api_key_appears_in_no_output_of_a_change_capture_run(
    stripe: FakeStripe,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    no_sleep: list[float],
) -> None:
    now = int(time.time())
    charge, _ = charge_with_current(stripe, now)
    gone = stripe.add("charge", [make_object("charge", now - 9 * DAY)])[0]
    stripe.delete("charge", gone["id"])
    for obj in (charge, gone):
        stripe.add_event("charge.updated", obj, created=now - 100, api_version=OTHER_VERSION)
    stripe.fail_path(f"/v1/charges/{charge['id']}", error(500))
    state = {
        "bookmarks": {
            **recent_state("charge", now)["bookmarks"],
            **incremental_state("customer", now - DAY, None)["bookmarks"],
        }
    }

    with caplog.at_level(logging.DEBUG):
        result = run_tap(state=state, streams=("charge", "customer"))

    assert result.error is None
    assert len(stripe.retrieve_requests("charge")) == 3
    captured = capfd.readouterr()
    assert "CATCH-UP" in caplog.text
    for text in (json.dumps(result.messages), captured.out, captured.err, caplog.text):
        assert API_KEY not in text


# ---- field selection -------------------------------------------------------------------


def test_a_field_selection_keeps_the_tombstone_column(stripe: FakeStripe) -> None:
    now = int(time.time())
    gone = stripe.add("customer", [make_object("customer", now - 10 * DAY)])[0]
    stripe.delete("customer", gone["id"])
    stripe.add_event("customer.deleted", gone, created=now - 100)
    catalog = TapStripe(config=base_config(), parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            breadcrumb = item["breadcrumb"]
            if breadcrumb == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] == "customer"
            elif len(breadcrumb) == 2:
                item["metadata"]["selected"] = breadcrumb[1] in ("id", "email")

    result = run_tap(catalog=catalog, state=recent_state("customer", now))

    [record] = result.records["customer"]
    assert record["id"] == gone["id"]
    assert record.get("_sdc_deleted_at") == iso(now - 100)


def test_a_key_that_cannot_read_events_says_so_in_one_error(stripe: FakeStripe) -> None:
    now = int(time.time())
    stripe.add("customer", [make_object("customer", now - 10 * DAY)])
    stripe.fail_path(
        EVENTS_PATH,
        error(
            403,
            body={
                "error": {
                    "type": "invalid_request_error",
                    "message": "The provided key does not have the required permissions.",
                }
            },
        ),
    )

    result = run_tap(state=recent_state("customer", now), streams=("customer",))

    assert result.error is not None
    message = str(result.error)
    assert "HTTP 403" in message and "give the key read access to Events" in message
    assert "\n" not in message
    assert "customer" not in result.records


def test_stream_maps_carry_tombstones_and_table_versions_to_the_alias(stripe: FakeStripe) -> None:
    now = int(time.time())
    kept, gone = stripe.add(
        "customer", [make_object("customer", now - 10 * DAY + i) for i in (0, 1)]
    )
    config = base_config(stream_maps={"customer": {"__alias__": "customers"}})

    first = run_tap(config, streams=("customer",))
    stripe.delete("customer", gone["id"])
    stripe.add_event("customer.deleted", gone, created=now - 30)
    second = run_tap(config, state=recent_state("customer", now), streams=("customer",))

    assert {record["id"] for record in first.records["customers"]} == {kept["id"], gone["id"]}
    assert [m["stream"] for m in first.messages if m["type"] == "ACTIVATE_VERSION"] == ["customers"]
    [tombstone] = second.records["customers"]
    assert tombstone["id"] == gone["id"]
    assert tombstone["_sdc_deleted_at"] == iso(now - 30)


def test_state_follows_stripes_clock_when_this_machine_runs_ahead(
    stripe: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    """A bookmark or cursor set by a clock ahead of Stripe's would skip what Stripe creates
    in between: both stop at Stripe's time (its ``Date``) at the run's first answer."""
    now = int(time.time())
    stripe.clock = now - 900
    stripe.add("customer", [make_object("customer", now - 10 * DAY)])

    first = run_tap(streams=("customer",))
    second = run_tap(state=first.last_state, streams=("customer",))

    for result in (first, second):
        entry = stream_state(result.last_state, "customer")
        assert entry["replication_key_value"] == now - 901
        assert entry["events_cursor"] == now - 901
    assert "s ahead of Stripe's (its Date header)" in caplog.text


def test_a_catalog_from_before_change_capture_still_announces_the_tombstone_column(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    gone = stripe.add("customer", [make_object("customer", now - 10 * DAY)])[0]
    stripe.delete("customer", gone["id"])
    stripe.add_event("customer.deleted", gone, created=now - 100)
    catalog = TapStripe(config=base_config(), parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        entry["schema"]["properties"].pop("_sdc_deleted_at", None)
        entry["metadata"] = [
            item
            for item in entry["metadata"]
            if item["breadcrumb"] != ["properties", "_sdc_deleted_at"]
        ]
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] == "customer"

    result = run_tap(catalog=catalog, state=recent_state("customer", now))

    assert all("_sdc_deleted_at" in m["schema"]["properties"] for m in result.schemas["customer"])
    [record] = result.records["customer"]
    assert record["_sdc_deleted_at"] == iso(now - 100)


def test_a_failed_refetch_stops_the_others_instead_of_fetching_them_all(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    charges = stripe.add("charge", [make_object("charge", now - DAY - i) for i in range(50)])
    for charge in charges:
        stripe.add_event("charge.updated", charge, created=now - 100, api_version=OTHER_VERSION)
    for charge in charges:
        stripe.fail_path(
            f"/v1/charges/{charge['id']}",
            error(400, body={"error": {"type": "invalid_request_error", "message": "no"}}),
        )

    result = run_tap(state=recent_state("charge", now), streams=("charge",))

    assert isinstance(result.error, StripeAPIError)
    assert len(stripe.retrieve_requests("charge")) < len(charges)


def retired_by_activation(results: list[SyncResult], stream: str) -> set[str]:
    """Ids a target would hold as deleted after ``results``: tombstones, and rows whose
    version an ACTIVATE_VERSION retired (target-duckdb's rule)."""
    rows: dict[str, tuple[int | None, bool]] = {}
    for result in results:
        for message in result.messages:
            if message.get("stream") != stream:
                continue
            if message["type"] == "RECORD":
                record = message["record"]
                rows[record["id"]] = (message.get("version"), bool(record.get("_sdc_deleted_at")))
            elif message["type"] == "ACTIVATE_VERSION":
                rows = {
                    key: (version, deleted or version is None or version < message["version"])
                    for key, (version, deleted) in rows.items()
                }
    return {key for key, (_, deleted) in rows.items() if deleted}


def test_a_full_read_cut_off_and_resumed_still_retires_what_was_deleted_before(
    stripe: FakeStripe,
) -> None:
    """State cleared to repair a table, the re-read cut off after a bookmark, then resumed
    incrementally: the resumed run finishes the full read under its version, so a row
    whose object was deleted before the re-read (its event out of reach) is retired."""
    now = int(time.time())
    customers = stripe.add(
        "customer", [make_object("customer", now - 300 * DAY + i * 8000) for i in range(3000)]
    )
    config = base_config(max_concurrency=4)
    loaded = run_tap(config, streams=("customer",))
    victim = customers[5]
    stripe.delete("customer", victim["id"])
    stripe.add_event("customer.deleted", victim, created=now - 2 * DAY)

    stripe.fail_after = len(stripe.requests) + 12
    cut_off = run_tap(config, streams=("customer",))
    stripe.fail_after = None
    resumed = run_tap(config, state=cut_off.last_state, streams=("customer",))

    assert cut_off.error is not None and resumed.error is None
    unfinished = stream_state(cut_off.last_state, "customer")
    assert "replication_key_value" in unfinished and "unfinished_table_version" in unfinished
    assert "unfinished_table_version" not in stream_state(resumed.last_state, "customer")
    assert retired_by_activation([loaded, cut_off, resumed], "customer") == {victim["id"]}
