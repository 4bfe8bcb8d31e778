"""Tables without a ``created`` filter: newest-first lists read down to the bookmark, and
lists read whole every run under a table version."""

from __future__ import annotations

import time

from tap_stripe.tables import TABLES_BY_NAME, ReadMode

from tests.tap.conftest import base_config, run_tap
from tests.tap.fake_stripe import FakeStripe, make_object

LOOKBACK = 300


def activate_versions(result, stream: str) -> list[int]:
    return [
        m["version"]
        for m in result.messages
        if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream
    ]


def test_the_registry_reads_credit_notes_newest_first_and_shipping_rates_whole() -> None:
    assert TABLES_BY_NAME["creditnote"].read is ReadMode.NEWEST_FIRST
    assert TABLES_BY_NAME["creditnote"].replication_key == "created"
    assert TABLES_BY_NAME["shippingrate"].read is ReadMode.FULL
    assert TABLES_BY_NAME["shippingrate"].replication_key is None


def test_a_newest_first_table_is_read_whole_first_without_a_created_filter(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    notes = stripe.add("creditnote", [make_object("creditnote", now - 10 * i) for i in range(250)])

    result = run_tap(base_config(), streams=("creditnote",))

    assert result.error is None
    assert {r["id"] for r in result.records["creditnote"]} == {n["id"] for n in notes}
    requests = stripe.list_requests("creditnote")
    assert len(requests) == 3
    assert not any(key.startswith("created") for params in requests for key in params)
    assert result.bookmark("creditnote") >= now - 1
    assert len(activate_versions(result, "creditnote")) == 1


def test_a_newest_first_table_is_read_down_to_its_bookmark_minus_the_lookback(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    bookmark = now - 3_600
    old = [make_object("creditnote", bookmark - 1_000 - i) for i in range(300)]
    recent = [make_object("creditnote", bookmark - LOOKBACK + 5 + i) for i in range(20)]
    stripe.add("creditnote", old + recent)
    state = {
        "bookmarks": {
            "creditnote": {
                "replication_key": "created",
                "replication_key_value": bookmark,
                "events_cursor": now - 60,
            }
        }
    }

    result = run_tap(base_config(), state=state, streams=("creditnote",))

    assert result.error is None
    assert {r["id"] for r in result.records["creditnote"]} == {n["id"] for n in recent}
    assert len(stripe.list_requests("creditnote")) == 1, "one page reaches below the bookmark"
    assert result.bookmark("creditnote") >= now - 1
    assert activate_versions(result, "creditnote") == []


def test_a_whole_table_retires_the_rows_it_did_not_see_each_run(stripe: FakeStripe) -> None:
    now = int(time.time())
    rates = stripe.add("shippingrate", [make_object("shippingrate", now - i) for i in range(5)])

    first = run_tap(base_config(), streams=("shippingrate",))
    stripe.delete("shippingrate", rates[0]["id"])
    second = run_tap(base_config(), state=first.last_state, streams=("shippingrate",))

    for result, expected in ((first, rates), (second, rates[1:])):
        assert result.error is None
        assert {r["id"] for r in result.records["shippingrate"]} == {r["id"] for r in expected}
        (version,) = activate_versions(result, "shippingrate")
        assert {m["version"] for m in result.messages if m["type"] == "RECORD"} == {version}
    assert activate_versions(second, "shippingrate") > activate_versions(first, "shippingrate")
    assert not any(
        key.startswith("created") for p in stripe.list_requests("shippingrate") for key in p
    )
