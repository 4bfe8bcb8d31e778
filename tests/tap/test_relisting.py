"""A connected account's persons and capabilities (no platform events, no ``created``
range): listed for every account once per ``relist_children_hours``, and in between only
for the accounts whose object changed (``relisting.py``)."""

from __future__ import annotations

import copy

import pytest
from tap_stripe.relisting import RELISTED, Relisting, fingerprint
from tap_stripe.settings import InputError

from tests.tap.conftest import OWN_ACCOUNT_ID, SyncResult, base_config, run_tap
from tests.tap.fake_stripe import FakeStripe, error, make_object

CHILDREN = ("person", "capability")
HOUR = 3600


def accounts_with_children(stripe: FakeStripe, count: int) -> list[dict]:
    accounts = stripe.add(
        "connectedaccount",
        [
            make_object("connectedaccount", 0, requirements={"currently_due": []})
            for _ in range(count)
        ],
    )
    for n, account in enumerate(accounts):
        stripe.listed["person", account["id"]] = [
            {"id": f"person_{n}", "object": "person", "account": account["id"]}
        ]
        stripe.listed["capability", account["id"]] = [
            {"id": "card_payments", "object": "capability", "status": "active"}
        ]
    return accounts


def listed_accounts(stripe: FakeStripe, since: int = 0) -> dict[str, list[str]]:
    """The accounts whose persons and capabilities were listed, from request ``since`` on."""
    found: dict[str, list[str]] = {"person": [], "capability": []}
    for path, _ in stripe.requests[since:]:
        parts = path.split("/")
        if len(parts) == 5 and parts[2] == "accounts" and parts[4] in ("persons", "capabilities"):
            found["person" if parts[4] == "persons" else "capability"].append(parts[3])
    return {table: sorted(ids) for table, ids in found.items()}


def versions(result: SyncResult, stream: str) -> list[dict]:
    """The scopes of ``stream``'s ACTIVATE_VERSIONs."""
    return [
        m.get("scope", {})
        for m in result.messages
        if m["type"] == "ACTIVATE_VERSION" and m["stream"] == stream
    ]


def sync(state: dict | None = None, **config: object) -> SyncResult:
    result = run_tap(base_config(**config), state=state, streams=("connectedaccount", *CHILDREN))
    assert result.error is None
    return result


def test_a_first_run_lists_every_account_and_records_each_one(stripe: FakeStripe) -> None:
    accounts = accounts_with_children(stripe, 3)

    result = sync()

    ids = sorted(a["id"] for a in accounts)
    assert listed_accounts(stripe) == {"person": ids, "capability": ids}
    for table in CHILDREN:
        assert versions(result, table) == [{"_stripe_account": OWN_ACCOUNT_ID}]
    relisted = result.entry("connectedaccount")[RELISTED]
    assert relisted["tables"] == ["capability", "person"]
    assert relisted["parents"] == {a["id"]: fingerprint(a) for a in accounts}


def test_a_quiet_run_lists_no_account_and_retires_no_row(stripe: FakeStripe) -> None:
    accounts_with_children(stripe, 3)
    first = sync()
    before = len(stripe.requests)

    second = sync(first.last_state)

    assert listed_accounts(stripe, before) == {"person": [], "capability": []}
    assert [path for path, _ in stripe.requests[before:]] == ["/v1/accounts"]
    assert versions(second, "person") == versions(second, "capability") == []
    assert versions(second, "connectedaccount") == [{"_stripe_account": OWN_ACCOUNT_ID}]
    assert second.entry("connectedaccount")[RELISTED] == first.entry("connectedaccount")[RELISTED]


def test_a_changed_or_new_account_is_listed_again_and_nothing_retires_before_the_daily_listing(
    stripe: FakeStripe,
) -> None:
    """Between listings of every account no ACTIVATE_VERSION goes out for the children: a
    target that ignores its scope would retire every unchanged account's rows."""
    changed, same, gone = accounts_with_children(stripe, 3)
    first = sync()
    changed["requirements"] = {"currently_due": ["person_0.verification.document"]}
    stripe.listed["person", changed["id"]] = []  # its person was removed
    stripe.delete("connectedaccount", gone["id"])
    (new,) = accounts_with_children(stripe, 1)
    before = len(stripe.requests)

    second = sync(first.last_state)

    relisted = sorted([changed["id"], new["id"]])
    assert listed_accounts(stripe, before) == {"person": relisted, "capability": relisted}
    assert [r["account"] for r in second.records["person"]] == [new["id"]]
    assert versions(second, "person") == versions(second, "capability") == []
    parents = second.entry("connectedaccount")[RELISTED]["parents"]
    assert parents == {a["id"]: fingerprint(a) for a in (changed, same, new)}


def test_the_daily_listing_retires_the_rows_listed_no_more(stripe: FakeStripe) -> None:
    """The rows of a removed person and of a gone account retire at the next listing of
    every account, under a version later than those of the runs between."""
    changed, same, gone = accounts_with_children(stripe, 3)
    first = sync()
    changed["requirements"] = {"currently_due": ["person_0.verification.document"]}
    stripe.listed["person", changed["id"]] = []
    stripe.delete("connectedaccount", gone["id"])
    between = sync(first.last_state)
    old = copy.deepcopy(between.last_state)
    for partition in old["bookmarks"]["connectedaccount"]["partitions"]:
        partition[RELISTED]["at"] -= 24 * HOUR

    daily = sync(old)

    assert sorted(r["account"] for r in daily.records["person"]) == [same["id"]]
    assert sorted(r["account"] for r in daily.records["capability"]) == sorted(
        [changed["id"], same["id"]]
    )
    (activate,) = [
        m for m in daily.messages if m["type"] == "ACTIVATE_VERSION" and m["stream"] == "person"
    ]
    assert activate.get("scope", {}) == {"_stripe_account": OWN_ACCOUNT_ID}
    written = [
        m["version"]
        for m in between.messages
        if m["type"] == "RECORD" and m["stream"] == "capability"
    ]
    assert written and activate["version"] > max(written)


def test_an_account_whose_list_stripe_refuses_waits_for_the_daily_listing(
    stripe: FakeStripe,
) -> None:
    """A key that may not read one account's persons: asked again each run, it would fail
    again each run, with a warning each time."""
    refused, other = accounts_with_children(stripe, 2)
    stripe.fail_path(f"/v1/accounts/{refused['id']}/persons", *[error(403)] * 5)
    first = sync()
    assert [r["account"] for r in first.records["person"]] == [other["id"]]
    before = len(stripe.requests)

    sync(first.last_state)

    assert listed_accounts(stripe, before) == {"person": [], "capability": []}


def test_every_account_is_listed_again_once_the_listing_is_a_day_old(stripe: FakeStripe) -> None:
    accounts = accounts_with_children(stripe, 2)
    state = sync().last_state
    old = copy.deepcopy(state)
    for partition in old["bookmarks"]["connectedaccount"]["partitions"]:
        partition[RELISTED]["at"] -= 24 * HOUR
    before = len(stripe.requests)

    result = sync(old)

    ids = sorted(a["id"] for a in accounts)
    assert listed_accounts(stripe, before) == {"person": ids, "capability": ids}
    assert versions(result, "person") == [{"_stripe_account": OWN_ACCOUNT_ID}]
    at = result.entry("connectedaccount")[RELISTED]["at"]
    assert at > old["bookmarks"]["connectedaccount"]["partitions"][0][RELISTED]["at"]


def test_a_listing_time_later_than_now_lists_every_account() -> None:
    entry = {RELISTED: {"at": 20 * HOUR, "tables": ["capability", "person"], "parents": {}}}

    assert Relisting.plan(entry, ["person", "capability"], now=10 * HOUR, every_hours=24).whole
    assert not Relisting.plan(entry, ["person", "capability"], now=21 * HOUR, every_hours=24).whole


def test_relist_children_hours_0_lists_every_account_every_run(stripe: FakeStripe) -> None:
    accounts = accounts_with_children(stripe, 2)
    state = sync(relist_children_hours=0).last_state
    before = len(stripe.requests)

    second = sync(state, relist_children_hours=0)

    ids = sorted(a["id"] for a in accounts)
    assert listed_accounts(stripe, before) == {"person": ids, "capability": ids}
    for table in CHILDREN:
        assert versions(second, table) == [{"_stripe_account": OWN_ACCOUNT_ID}]


def test_a_newly_selected_child_has_every_account_listed(stripe: FakeStripe) -> None:
    accounts = accounts_with_children(stripe, 2)
    first = run_tap(base_config(), streams=("connectedaccount", "person"))
    before = len(stripe.requests)

    sync(first.last_state)

    ids = sorted(a["id"] for a in accounts)
    assert listed_accounts(stripe, before) == {"person": ids, "capability": ids}


@pytest.mark.parametrize(
    "relisted",
    ["yesterday", {"at": "noon", "tables": ["capability", "person"], "parents": {}}, None],
)
def test_an_unreadable_record_of_the_last_listing_lists_every_account(relisted: object) -> None:
    entry = {RELISTED: relisted}

    plan = Relisting.plan(entry, ["person", "capability"], now=10 * HOUR, every_hours=24)

    assert plan.whole
    assert plan.wanted({"id": "acct_1"})


def test_a_negative_relist_children_hours_is_one_clear_error() -> None:
    with pytest.raises(InputError) as raised:
        run_tap(base_config(relist_children_hours=-1))

    assert str(raised.value) == (
        "config: relist_children_hours must be a whole number of hours of 0 or more, not -1"
    )
