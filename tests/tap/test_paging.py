"""Paging, incremental state, start_date, lookback, resume after a cut-off, nested lists."""

from __future__ import annotations

import datetime
import io
import json
import threading
import time
from contextlib import redirect_stdout

import pytest
from tap_stripe.tap import TapStripe

from tests.tap.conftest import base_config, entry_of, run_tap
from tests.tap.fake_stripe import OWN_ACCOUNT_ID, FakeStripe, make_object, stripe_list

DAY = 86_400


def charges(stripe: FakeStripe, count: int, *, start: int, step: int) -> list[dict]:
    return stripe.add("charge", [make_object("charge", start + i * step) for i in range(count)])


def by_id(records: list[dict]) -> dict[str, dict]:
    return {record["id"]: record for record in records}


def test_pages_through_a_list_with_limit_and_starting_after(stripe: FakeStripe) -> None:
    now = int(time.time())
    expected = charges(stripe, 250, start=now - 10 * DAY, step=60)

    result = run_tap(streams=("charge",))

    assert result.error is None
    requests = stripe.list_requests("charge")
    assert [r["limit"] for r in requests] == ["100", "100", "100"]
    assert "starting_after" not in requests[0]
    assert requests[1]["starting_after"] == result.records["charge"][99]["id"]
    assert requests[2]["starting_after"] == result.records["charge"][199]["id"]
    # Exactly as Stripe sent them: same objects, each once.
    assert len(result.records["charge"]) == 250
    assert by_id(result.records["charge"]) == by_id(expected)


def test_records_keep_fields_the_schema_does_not_know(stripe: FakeStripe) -> None:
    now = int(time.time())
    stripe.add(
        "charge",
        [
            make_object(
                "charge",
                now - 100,
                brand_new_field={"nested": [1, 2]},
                outcome={"type": "authorized", "new_nested_key": "kept"},
            )
        ],
    )

    result = run_tap(streams=("charge",))

    [record] = result.records["charge"]
    assert record["brand_new_field"] == {"nested": [1, 2]}
    assert record["outcome"] == {"type": "authorized", "new_nested_key": "kept"}


def test_first_run_reads_all_history_and_bookmarks_the_sync_start(stripe: FakeStripe) -> None:
    charges(stripe, 5, start=1_300_000_000, step=DAY)
    before = int(time.time())

    result = run_tap(streams=("charge",))

    first = stripe.list_requests("charge")[0]
    assert first["created[gte]"] == "0"
    assert before <= int(first["created[lt]"]) <= int(time.time())
    assert result.bookmark("charge") == int(first["created[lt]"])
    assert result.entry("charge")["replication_key"] == "created"
    assert len(result.records["charge"]) == 5


def test_start_date_sets_the_lower_bound(stripe: FakeStripe) -> None:
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    epoch = int(start.timestamp())
    old = charges(stripe, 3, start=epoch - 3 * DAY, step=DAY)
    new = charges(stripe, 3, start=epoch, step=DAY)

    result = run_tap(base_config(start_date="2024-01-01T00:00:00Z"), streams=("charge",))

    assert stripe.list_requests("charge")[0]["created[gte]"] == str(epoch)
    assert set(by_id(result.records["charge"])) == set(by_id(new))
    assert not set(by_id(result.records["charge"])) & set(by_id(old))


@pytest.mark.parametrize("lookback", [300, 3600])
def test_state_resumes_from_the_bookmark_minus_the_lookback(
    stripe: FakeStripe, lookback: int
) -> None:
    now = int(time.time())
    bookmark = now - DAY
    charges(stripe, 4, start=bookmark - 10 * DAY, step=DAY)  # long before: not re-read
    late = charges(stripe, 1, start=bookmark - 200, step=1)  # made visible late
    fresh = charges(stripe, 3, start=bookmark + 10, step=60)
    state = {
        "bookmarks": {
            "charge": {
                "replication_key": "created",
                "replication_key_value": bookmark,
                "events_cursor": bookmark,
            }
        }
    }

    result = run_tap(base_config(lookback_window=lookback), state=state, streams=("charge",))

    assert stripe.list_requests("charge")[0]["created[gte]"] == str(bookmark - lookback)
    assert set(by_id(result.records["charge"])) == set(by_id(late + fresh))
    assert result.bookmark("charge") > bookmark


def test_start_date_later_than_the_bookmark_wins(stripe: FakeStripe) -> None:
    state = {
        "bookmarks": {
            "charge": {"replication_key": "created", "replication_key_value": 1_600_000_000}
        }
    }

    run_tap(base_config(start_date="2024-01-01T00:00:00Z"), state=state, streams=("charge",))

    assert stripe.list_requests("charge")[0]["created[gte]"] == "1704067200"


def test_a_second_run_with_nothing_new_makes_one_request(stripe: FakeStripe) -> None:
    charges(stripe, 150, start=1_600_000_000, step=DAY)
    first = run_tap(streams=("charge",))
    stripe.requests.clear()

    second = run_tap(state=first.last_state, streams=("charge",))

    assert len(stripe.list_requests("charge")) == 1
    assert "charge" not in second.records
    assert second.bookmark("charge") >= first.bookmark("charge")


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("cut_after", [1, 3, 6, 9])
def test_a_run_cut_off_part_way_resumes_without_losing_a_record(
    stripe: FakeStripe, concurrency: int, cut_after: int
) -> None:
    now = int(time.time())
    # Uneven density: a sparse past and a dense recent month.
    expected = charges(stripe, 300, start=now - 900 * DAY, step=3 * DAY)
    expected += charges(stripe, 700, start=now - 30 * DAY, step=3600)
    config = base_config(max_concurrency=concurrency, lookback_window=0)
    stripe.fail_after = cut_after

    cut = run_tap(config, streams=("charge",))

    assert cut.error is not None
    assert len(cut.records.get("charge", [])) < len(expected)
    # Everything below the saved bookmark was emitted before the bookmark was saved.
    saved = cut.bookmark("charge") or 0
    emitted = set(by_id(cut.records.get("charge", [])))
    assert {o["id"] for o in expected if o["created"] < saved} <= emitted
    stripe.fail_after = None
    resumed = run_tap(config, state=cut.last_state or None, streams=("charge",))

    assert resumed.error is None
    seen = by_id(cut.records.get("charge", []) + resumed.records["charge"])
    assert seen == by_id(expected)


def test_concurrent_windows_emit_every_record_once_and_bookmark_the_end(
    stripe: FakeStripe,
) -> None:
    now = int(time.time())
    expected = charges(stripe, 2000, start=now - 1000 * DAY, step=DAY // 2)

    result = run_tap(base_config(max_concurrency=8), streams=("charge",))

    ids = [record["id"] for record in result.records["charge"]]
    assert len(ids) == len(set(ids)) == 2000
    assert by_id(result.records["charge"]) == by_id(expected)
    assert result.bookmark("charge") == int(stripe.list_requests("charge")[0]["created[lt]"])
    # Bookmarks only ever move forward within a run.
    values = [entry_of(s, "charge")["replication_key_value"] for s in result.states[1:]]
    assert values == sorted(values)


def test_many_objects_in_the_same_second_page_correctly(stripe: FakeStripe) -> None:
    now = int(time.time())
    same_second = stripe.add("charge", [make_object("charge", now - 50) for _ in range(230)])
    spread = charges(stripe, 300, start=now - 400 * DAY, step=DAY)

    result = run_tap(base_config(max_concurrency=6), streams=("charge",))

    ids = [record["id"] for record in result.records["charge"]]
    assert len(ids) == len(set(ids))
    assert by_id(result.records["charge"]) == by_id(same_second + spread)


def test_subscriptions_are_listed_with_status_all(stripe: FakeStripe) -> None:
    stripe.add("subscription", [make_object("subscription", 1_700_000_000, status="canceled")])

    result = run_tap(streams=("subscription",))

    assert stripe.list_requests("subscription")[0]["status"] == "all"
    assert len(result.records["subscription"]) == 1


def _line(i: int) -> dict:
    return {"id": f"il_{i:04d}", "object": "line_item", "amount": i}


def test_invoice_lines_cut_at_ten_are_completed(stripe: FakeStripe) -> None:
    lines = [_line(i) for i in range(35)]
    lines.sort(key=lambda line: line["id"], reverse=True)  # the fake's (Stripe's) order
    invoice = make_object("invoice", 1_700_000_000)
    url = f"/v1/invoices/{invoice['id']}/lines"
    invoice["lines"] = stripe_list([dict(line) for line in lines[:10]], url, has_more=True)
    invoice["lines"]["total_count"] = 35
    short = make_object("invoice", 1_700_000_001)
    short["lines"] = stripe_list([_line(900)], f"/v1/invoices/{short['id']}/lines")
    stripe.add("invoice", [invoice, short])
    stripe.nested[invoice["id"]] = lines

    result = run_tap(streams=("invoice",))

    records = by_id(result.records["invoice"])
    full = records[invoice["id"]]["lines"]
    assert [line["id"] for line in full["data"]] == [line["id"] for line in lines]
    assert full["has_more"] is False
    assert full["total_count"] == 35 and full["url"] == url
    assert records[short["id"]]["lines"] == short["lines"]
    nested_requests = [p for path, p in stripe.requests if path == url]
    assert nested_requests[0]["starting_after"] == lines[9]["id"]
    assert [p["limit"] for p in nested_requests] == ["100"]


def test_subscription_items_cut_at_ten_are_completed(stripe: FakeStripe) -> None:
    items = [{"id": f"si_{i:04d}", "object": "subscription_item"} for i in range(12)]
    items.sort(key=lambda item: item["id"], reverse=True)
    subscription = make_object("subscription", 1_700_000_000, status="active")
    subscription["items"] = stripe_list(
        [dict(item) for item in items[:10]],
        f"/v1/subscription_items?subscription={subscription['id']}",
        has_more=True,
    )
    stripe.add("subscription", [subscription])
    stripe.nested[subscription["id"]] = items

    result = run_tap(streams=("subscription",))

    [record] = result.records["subscription"]
    assert [item["id"] for item in record["items"]["data"]] == [item["id"] for item in items]
    assert record["items"]["has_more"] is False
    [request] = [p for path, p in stripe.requests if path == "/v1/subscription_items"]
    assert request["subscription"] == subscription["id"]
    assert request["starting_after"] == items[9]["id"]


def test_account_is_one_full_table_record(stripe: FakeStripe) -> None:
    result = run_tap(streams=("account",))

    assert result.records["account"] == [stripe.account]
    assert result.accounts == {stripe.account["id"]}
    # The run's look at its own account is the table's record: no second request.
    assert stripe.own_account_requests == 1
    assert stripe.requests == []
    assert "replication_key_value" not in result.entry("account")


def test_balance_is_one_snapshot_per_run_keyed_by_stripes_time(stripe: FakeStripe) -> None:
    stripe.clock = 1_800_000_000

    result = run_tap(streams=("balance",))

    assert result.error is None
    assert result.records["balance"] == [{**stripe.balance, "snapshot_at": 1_800_000_000}]
    assert result.schemas["balance"][0]["key_properties"] == ["_stripe_account", "snapshot_at"]
    assert [path for path, _ in stripe.requests] == ["/v1/balance"]


def test_a_catalog_forcing_full_table_ignores_and_keeps_no_bookmark(stripe: FakeStripe) -> None:
    expected = charges(stripe, 3, start=1_600_000_000, step=DAY)
    tap_catalog = TapStripe(config=base_config(), parse_env_config=False).catalog_dict
    for entry in tap_catalog["streams"]:
        selected = entry["tap_stream_id"] == "charge"
        entry["metadata"][0]["metadata"]["selected"] = selected
        if selected:
            entry["replication_method"] = "FULL_TABLE"
            entry["metadata"][0]["metadata"]["forced-replication-method"] = "FULL_TABLE"
    state = {
        "bookmarks": {
            "charge": {"replication_key": "created", "replication_key_value": 1_700_000_000}
        }
    }

    result = run_tap(catalog=tap_catalog, state=state)

    assert stripe.list_requests("charge")[0]["created[gte]"] == "0"
    assert by_id(result.records["charge"]) == by_id(expected)
    assert result.bookmark("charge") == 1_700_000_000


def test_pretty_printed_pages_become_one_line_records(stripe: FakeStripe) -> None:
    expected = stripe.add("charge", [make_object("charge", 1_700_000_000, note="two\nlines")])
    body = json.dumps(stripe_list(expected, "/v1/charges"), indent=2)
    stripe.mocker.get(f"{stripe.api_url}/v1/charges", text=body)

    result = run_tap(streams=("charge",))

    assert result.records["charge"] == expected


def test_records_are_written_byte_for_byte_as_stripe_sent_them(stripe: FakeStripe) -> None:
    record = '{"id":"ch_exact","object":"charge","created":1700000000,"amount":1E2,"x":"\\u00e9"}'
    body = '{"object":"list","url":"/v1/charges","has_more":false,"data":[' + record + "]}"
    stripe.mocker.get(f"{stripe.api_url}/v1/charges", text=body)
    tap = TapStripe(config=base_config(), parse_env_config=False)
    for name, stream in tap.streams.items():
        stream.selected = name == "charge"
    buffer = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")

    with redirect_stdout(buffer):
        tap.sync_all()

    buffer.seek(0)
    # The account it was read from spliced in first, the rest as Stripe sent it.
    assert f'"record":{{"_stripe_account":"{OWN_ACCOUNT_ID}",{record[1:]},' in buffer.read()


def assert_every_state_covers_only_written_records(
    messages: list[dict], objects: dict[str, list[dict]]
) -> None:
    """Each STATE's bookmark of a table is the end of a range whose objects were all
    written before that STATE, whatever the tables written in between."""
    written: dict[str, set[str]] = {name: set() for name in objects}
    for message in messages:
        if message["type"] == "RECORD" and message["stream"] in written:
            written[message["stream"]].add(message["record"]["id"])
        if message["type"] != "STATE":
            continue
        for name, bookmark in message["value"].get("bookmarks", {}).items():
            position = bookmark.get("replication_key_value")
            if name not in objects or position is None:
                continue
            below = {o["id"] for o in objects[name] if o["created"] < position}
            assert below <= written[name], (name, position)


def test_tables_are_written_at_once_each_state_covering_only_what_was_written(
    stripe: FakeStripe,
) -> None:
    names = ("charge", "customer", "invoice", "product")
    objects = {
        name: stripe.add(name, [make_object(name, 1_600_000_000 + i * DAY) for i in range(230)])
        for name in names
    }

    result = run_tap(base_config(max_concurrency=3), streams=names)

    assert result.error is None
    assert all(len(result.records[name]) == 230 for name in names)
    order = [(m["type"], m["stream"]) for m in result.messages if m["type"] in ("SCHEMA", "RECORD")]
    for name in names:  # a table's SCHEMA comes before its first record
        assert order.index(("SCHEMA", name)) < order.index(("RECORD", name))
    assert_every_state_covers_only_written_records(result.messages, objects)


def test_a_failing_stream_stops_every_fetch_and_keeps_what_was_written(
    stripe: FakeStripe,
) -> None:
    objects = {"charge": charges(stripe, 150, start=1_600_000_000, step=DAY)}
    # More pages than the tables may hold while nobody reads them: fetchers block until
    # stopped.
    objects["product"] = stripe.add(
        "product", [make_object("product", 1_600_000_000 + i) for i in range(9000)]
    )
    threads_before = threading.active_count()

    # A refusal that fails the run (a 403 would skip the table: test_availability.py).
    def refuse_customers(request: object, context: object) -> dict:
        context.status_code = 400
        return {"error": {"type": "invalid_request_error", "message": "Invalid request"}}

    stripe.mocker.get(f"{stripe.api_url}/v1/customers", json=refuse_customers)

    result = run_tap(base_config(max_concurrency=4), streams=("charge", "customer", "product"))

    # The failing table is the one named, not a table the failure stopped.
    assert "HTTP 400" in str(result.error) and "'customer'" in str(result.error)
    assert "cancelled" not in str(result.error)
    assert len(result.records.get("product", [])) < 9000
    assert_every_state_covers_only_written_records(result.messages, objects)
    assert threading.active_count() == threads_before
