"""Connected accounts: every account the platform lists reads with its ``Stripe-Account``;
``connected_accounts`` of them have data of their own, the others are empty."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from stripe_sim.config import CONNECTED_ACCOUNT, MAIN_ACCOUNT, SimConfig
from stripe_sim.dataset import AccountData
from stripe_sim.runner import REPO_ROOT, SimHandle, run_simulator
from stripe_sim.state import SimState
from stripe_sim.tables import PLURALS
from tests.stripe_sim.conftest import NOW, SMALL, small_sim, walk

CONNECTED = 3
# Capabilities are named by Stripe (``card_payments``), the same in every account.
NAMED_BY_STRIPE = frozenset({"capability"})


def as_account(account_id: str) -> dict[str, str]:
    return {"Stripe-Account": account_id}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimHandle]:
    with small_sim(connected_accounts=CONNECTED) as handle:
        yield handle


@pytest.fixture
def fresh_sim_connected() -> Iterator[SimHandle]:
    with small_sim(connected_accounts=CONNECTED) as handle:
        yield handle


def account_ids(data: AccountData) -> dict[str, str]:
    """Every object id of one account -> where it is (table, nested list or child)."""
    found: dict[str, str] = {}
    for name, table in data.tables.items():
        found.update((row.id, name) for row in table.rows)
    for (name, list_field), lists in data.nested.items():
        for rows in lists.values():
            found.update((row.id, f"{name}.{list_field}") for row in rows)
    for child, tables in data.kin.items():
        if child not in NAMED_BY_STRIPE:
            for table in tables.values():
                found.update((row.id, child) for row in table.rows)
    return found


def test_data_accounts_have_their_own_objects_and_no_id_is_in_two_accounts():
    state = SimState(SimConfig(counts=SMALL, now=NOW, days=120, connected_accounts=5))
    ids = {account: account_ids(data) for account, data in state.accounts.items()}
    assert len(ids) == 6
    seen: dict[str, str] = {}
    for account, found in ids.items():
        assert len(found) > 100, account
        clashes = {i: (seen[i], account, where) for i, where in found.items() if i in seen}
        assert not clashes
        seen.update(dict.fromkeys(found, account))
    connected = state.config.connected_account_ids()
    assert connected[0] == CONNECTED_ACCOUNT
    assert len(set(connected)) == 5
    assert all(len(i) == 21 and i.startswith("acct_") and i[5:].isalnum() for i in connected)
    again = SimState(SimConfig(counts=SMALL, now=NOW, days=120, connected_accounts=5))
    for account, data in state.accounts.items():
        assert [row.id for row in again.accounts[account].tables["charge"].rows] == [
            row.id for row in data.tables["charge"].rows
        ]


def test_the_platform_lists_every_data_account_even_beyond_its_count():
    counts = {**SMALL, "connectedaccount": 2}
    state = SimState(SimConfig(counts=counts, now=NOW, days=120, connected_accounts=4))
    listed = [row.id for row in state.platform_accounts().rows]
    assert sorted(listed) == sorted(state.config.connected_account_ids())


def test_every_listed_account_reads_its_own_object_with_its_stripe_account(sim):
    listed = walk(sim, "/v1/accounts", {"limit": 100})
    assert len(listed) == 50
    data_accounts = set(sim.connected_account_ids)
    assert len(data_accounts) == CONNECTED
    assert data_accounts <= {account["id"] for account in listed}
    for account in listed:
        own = sim.request("/v1/account", headers=as_account(account["id"]))
        assert own.status == 200
        assert own.json() == account
        charges = sim.request("/v1/charges", headers=as_account(account["id"])).json()
        assert bool(charges["data"]) == (account["id"] in data_accounts)
    assert sim.request("/v1/account", headers=as_account("acct_1SimNotListed00")).status == 403


def test_data_accounts_answer_their_own_tables(sim):
    charge_ids = {}
    for account in sim.connected_account_ids:
        charges = walk(sim, "/v1/charges", {"limit": 100}, headers=as_account(account))
        assert [c["id"] for c in charges] == sim.ids("charge", account)
        charge_ids[account] = {c["id"] for c in charges}
        events = walk(sim, "/v1/events", {"limit": 100}, headers=as_account(account))
        assert events and {event["account"] for event in events} == {account}
    assert sum(map(len, charge_ids.values())) == len(set().union(*charge_ids.values()))
    platform_events = sim.request("/v1/events", {"limit": 100}).json()["data"]
    assert platform_events and all("account" not in event for event in platform_events)


def test_an_account_without_data_answers_empty_lists_and_a_zero_balance(sim):
    listed = walk(sim, "/v1/accounts", {"limit": 100})
    empty = next(a["id"] for a in listed if a["id"] not in sim.connected_account_ids)
    for plural in PLURALS:
        answer = sim.request(f"/v1/{plural}", headers=as_account(empty))
        assert answer.status == 200, (plural, answer.body)
        assert answer.json()["data"] == [], plural
    balance = sim.request("/v1/balance", headers=as_account(empty)).json()
    assert {f["amount"] for f in balance["available"] + balance["pending"]} == {0}
    assert sim.ids("customer", empty) == []
    assert sim.objects("account", empty) == [next(a for a in listed if a["id"] == empty)]
    refused = sim.request("/_sim/mutate", method="POST", body={"account": empty}, auth=False)
    assert refused.status == 400 and "no data of its own" in refused.json()["error"]


def test_admin_answers_for_every_data_account(sim):
    info = sim.info()
    assert info["accounts"] == [MAIN_ACCOUNT, *sim.connected_account_ids]
    for account in info["accounts"]:
        assert len(sim.ids("customer", account)) == info["counts"][account]["customer"] > 0
        (own,) = sim.objects("account", account)
        assert own["id"] == account
    sim.reset_stats()
    last = sim.connected_account_ids[-1]
    sim.request("/v1/customers", headers=as_account(last))
    sim.request("/v1/customers")
    assert sim.stats()["by_account"] == {last: {"200": 1}, MAIN_ACCOUNT: {"200": 1}}


def test_mutations_change_only_their_account(fresh_sim_connected):
    sim = fresh_sim_connected
    target, other = sim.connected_account_ids[2], sim.connected_account_ids[1]
    before = {account: sim.ids("customer", account) for account in sim.connected_account_ids}
    result = sim.mutate({"account": target}, customer={"create": 2})
    assert result["account"] == target
    created = result["create"]["customer"]
    assert set(created) <= set(sim.ids("customer", target))
    assert sim.ids("customer", other) == before[other]
    events = walk(sim, "/v1/events", {"limit": 100}, headers=as_account(target))
    assert {e["data"]["object"]["id"] for e in events} >= set(created)
    assert {e["account"] for e in events} == {target}


def test_platform_changes_to_listed_accounts_spare_the_data_accounts(fresh_sim_connected):
    sim = fresh_sim_connected
    result = sim.mutate(connectedaccount={"update": 100, "delete": 100})
    data_accounts = set(sim.connected_account_ids)
    assert data_accounts <= set(result["update"]["connectedaccount"])
    assert not data_accounts & set(result["delete"]["connectedaccount"])
    listed = walk(sim, "/v1/accounts", {"limit": 100})
    assert {account["id"] for account in listed} == data_accounts
    for account in listed:
        own = sim.request("/v1/account", headers=as_account(account["id"])).json()
        assert own == account and "sim_revision" in own["metadata"]
    gone = result["delete"]["connectedaccount"][0]
    assert sim.request("/v1/charges", headers=as_account(gone)).status == 403


def test_the_runner_passes_the_count_to_the_child_process():
    counts = {**SMALL, "charge": 30}
    with run_simulator(subprocess=True, counts=counts, now=NOW, connected_accounts=2) as sim:
        assert sim.info()["accounts"] == [MAIN_ACCOUNT, *sim.connected_account_ids]
        (second,) = sim.connected_account_ids[1:]
        assert sim.request("/v1/account", headers=as_account(second)).json()["id"] == second


def test_a_connected_account_count_below_one_is_refused_with_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "stripe_sim", "--connected-accounts", "0"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "stripe_sim: connected_accounts must be between 1 and 99,999,999"
    )
