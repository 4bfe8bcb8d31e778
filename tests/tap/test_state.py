"""The state a run starts from: times later than Stripe's clock clamped, bad shapes refused,
one stream's unreadable entry read again in full."""

from __future__ import annotations

import datetime
import decimal
import json
import logging
import os
import subprocess
import sys
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
import requests_mock
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tap_stripe.settings import InputError, parse_json_object
from tap_stripe.state import checked_state
from tap_stripe.tap import TapStripe

from tests.tap.conftest import base_config, run_tap
from tests.tap.fake_stripe import API_KEY, API_URL, OWN_ACCOUNT_ID, FakeStripe, make_object

TAP = Path(sys.executable).parent / "tap-stripe"
ACCOUNT_URL = f"{API_URL}/v1/account"
TEN_YEARS = 10 * 365 * 86_400
LOOKBACK = 300
# A table without change capture: its state is a bookmark alone.
TXN = "balancetransaction"
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))


def iso(timestamp: float) -> str:
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).isoformat()


def entry(bookmark: Any, events_cursor: Any = None) -> dict[str, Any]:
    state: dict[str, Any] = {"replication_key": "created", "replication_key_value": bookmark}
    if events_cursor is not None:
        state["events_cursor"] = events_cursor
    return state


def clock_answers(stripe: FakeStripe, now: float, status: int = 403) -> None:
    """``/v1/account`` answers Stripe's permission error (a restricted key that may not
    read it, naming the account it acts for), with Stripe's Date."""
    message = (
        "The provided key 'rk_test_***' does not have the required permissions for this "
        f"endpoint on account '{OWN_ACCOUNT_ID}'."
    )
    stripe.mocker.get(
        ACCOUNT_URL,
        status_code=status,
        headers={"Date": formatdate(now, usegmt=True)},
        json={"error": {"type": "invalid_request_error", "message": message}},
    )


def account_requests(stripe: FakeStripe) -> int:
    return sum(1 for request in stripe.mocker.request_history if request.url == ACCOUNT_URL)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_bookmark_ten_years_ahead_is_clamped_and_new_objects_are_read(
    stripe: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    stripe.clock = now
    clock_answers(stripe, now)
    new = stripe.add(TXN, [make_object(TXN, now - 10)])[0]
    ahead = now + TEN_YEARS

    with caplog.at_level(logging.WARNING):
        result = run_tap(state={"bookmarks": {TXN: entry(ahead)}}, streams=(TXN,))

    assert result.error is None
    assert [record["id"] for record in result.records[TXN]] == [new["id"]]
    assert warnings_of(caplog) == [
        f"stream '{TXN}': the state's replication_key_value {iso(ahead)} is later than "
        f"Stripe's clock ({iso(now)}): it cannot be right, so it becomes {iso(now - LOOKBACK)} "
        f"(that clock minus the {LOOKBACK} s lookback)"
    ]
    assert account_requests(stripe) == 1
    assert stripe.list_requests(TXN)[0]["created[gte]"] == str(now - 2 * LOOKBACK)
    assert now - LOOKBACK <= result.bookmark(TXN) <= now


def test_an_events_cursor_ahead_is_clamped_and_the_changes_since_are_read(
    stripe: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    clock_answers(stripe, now)
    customer = stripe.add("customer", [make_object("customer", now - 86_400)])[0]
    changed = stripe.put("customer", {**customer, "metadata": {"order": "changed"}})
    stripe.add_event("customer.updated", changed, created=now - 20)
    ahead = now + TEN_YEARS
    state = {"bookmarks": {"customer": entry(ahead, ahead)}}

    with caplog.at_level(logging.WARNING):
        result = run_tap(state=state, streams=("customer",))

    assert result.error is None
    assert changed in result.records["customer"]
    [warning] = warnings_of(caplog)
    assert warning.startswith(
        f"stream 'customer': the state's replication_key_value {iso(ahead)} and events_cursor "
        f"{iso(ahead)} are later than Stripe's clock ({iso(now)}): they cannot be right, so "
        f"both become {iso(now - LOOKBACK)}"
    )
    assert result.entry("customer")["events_cursor"] <= now


def test_a_state_in_the_past_costs_no_extra_request(
    stripe: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    now = int(time.time())
    clock_answers(stripe, now)
    stripe.add(TXN, [make_object(TXN, now - 10)])

    with caplog.at_level(logging.WARNING):
        result = run_tap(state={"bookmarks": {TXN: entry(now - 60)}}, streams=(TXN,))

    assert result.error is None
    # The run's one look at its own account, and the list: no request for the clock.
    assert account_requests(stripe) == 1
    assert len(stripe.requests) == 1
    assert warnings_of(caplog) == []


def test_a_state_ahead_of_this_machine_but_not_of_stripe_is_kept(stripe: FakeStripe) -> None:
    """This machine's clock runs behind Stripe's: Stripe's clock says the bookmark is right."""
    now = int(time.time())
    clock_answers(stripe, now + 3600)

    result = run_tap(state={"bookmarks": {TXN: entry(now + 600)}}, streams=(TXN,))

    assert result.error is None
    assert account_requests(stripe) == 1
    assert result.bookmark(TXN) == now + 600


def test_without_stripes_clock_the_state_is_clamped_to_this_machines(
    stripe: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    # No answer carries a Date (the fake's clock is unset).
    ahead = int(time.time()) + TEN_YEARS

    with caplog.at_level(logging.WARNING):
        result = run_tap(state={"bookmarks": {TXN: entry(ahead)}}, streams=(TXN,))

    assert result.error is None
    [warning] = warnings_of(caplog)
    assert "later than this machine's clock (Stripe's could not be read)" in warning
    assert result.bookmark(TXN) <= time.time()


@pytest.mark.parametrize(
    ("stream_state", "problem"),
    [
        (5, "is a number, not an object"),
        ([1, 2], "is a list, not an object"),
        (entry("2024-01-01T00:00:00Z"), "has a replication_key_value that is a string"),
        (entry(True), "has a replication_key_value that is a boolean"),
        (entry(float("nan")), "has a replication_key_value that is a number, not a finite"),
        (entry(1_700_000_000, {"at": 1}), "has a events_cursor that is an object"),
    ],
)
def test_one_unreadable_stream_entry_is_a_warning_and_a_full_read_of_that_table(
    stripe: FakeStripe, caplog: pytest.LogCaptureFixture, stream_state: Any, problem: str
) -> None:
    old = stripe.add("charge", [make_object("charge", 1_600_000_000)])[0]
    now = int(time.time())
    state = {"bookmarks": {"charge": stream_state, "customer": entry(now - 60, now - 60)}}

    with caplog.at_level(logging.WARNING):
        result = run_tap(state=state, streams=("charge", "customer"))

    assert result.error is None
    [warning] = warnings_of(caplog)
    assert warning.startswith(f"stream 'charge': its state entry {problem}")
    assert warning.endswith("; reading the whole table instead")
    assert result.records["charge"] == [old]
    assert stripe.list_requests("charge")[0]["created[gte]"] == "0"
    assert int(stripe.list_requests("customer")[0]["created[gte]"]) == now - 60 - LOOKBACK


def test_a_decimal_bookmark_from_a_file_is_a_number(stripe: FakeStripe) -> None:
    """The SDK reads a file's decimals as ``Decimal``: still the bookmark, not a full read."""
    bookmark = decimal.Decimal("1700000000.5")

    result = run_tap(state={"bookmarks": {TXN: entry(bookmark)}}, streams=(TXN,))

    assert result.error is None
    assert stripe.list_requests(TXN)[0]["created[gte]"] == str(1_700_000_000 - LOOKBACK)


@pytest.mark.parametrize(
    ("state", "line"),
    [
        ([], "not a JSON object but a list"),
        ({"bookmarks": []}, '"bookmarks" is a list, expected an object with an entry per stream'),
        (
            {"bookmarks": "x"},
            '"bookmarks" is a string, expected an object with an entry per stream',
        ),
    ],
)
def test_a_state_file_of_the_wrong_shape_is_one_line_and_a_failure(
    tmp_path: Path, state: Any, line: str
) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"api_key": API_KEY, "api_url": "http://127.0.0.1:9"}))
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(state))

    done = subprocess.run(
        [str(TAP), "--config", str(config), "--state", str(state_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert [x for x in done.stderr.splitlines() if "error" in x.lower()] == [
        f"tap-stripe: error: state file {state_file}: {line}"
    ]
    assert "Traceback" not in done.stderr


def test_a_state_of_the_wrong_shape_in_process_is_refused_too() -> None:
    with pytest.raises(InputError, match='state: "bookmarks" is a list'):
        TapStripe(config=base_config(), state={"bookmarks": [1]})


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True)
    | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "replication_key",
                    "replication_key_value",
                    "events_cursor",
                    "unfinished_table_version",
                ]
            )
            | st.text(max_size=6),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)
STATES = JSON | st.fixed_dictionaries(
    {"bookmarks": JSON | st.dictionaries(st.sampled_from(["charge", "coupon"]), JSON, max_size=2)}
)


@settings(
    derandomize=True,
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(state=STATES)
def test_any_state_is_refused_in_one_line_or_synced(state: Any) -> None:
    """No state file, whatever its shape or values, makes the tap fail in another way."""
    source = "state file state.json"
    try:
        loaded = checked_state(parse_json_object(json.dumps(state), source), source)
    except InputError as exc:
        assert len(exc.lines) == 1 and exc.lines[0].startswith(f"{source}: ")
        return
    with requests_mock.Mocker() as mocker:
        stripe = FakeStripe(mocker)
        stripe.add("charge", [make_object("charge", int(time.time()) - 10)])
        result = run_tap(state=loaded, streams=("charge", "coupon"))
    assert result.error is None
    for name in ("charge", "coupon"):
        assert result.bookmark(name) is None or result.bookmark(name) <= time.time()
