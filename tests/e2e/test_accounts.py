"""Many accounts of a Connect platform in one pipe: the platform and every connected
account it lists, each account's rows equal to its own truth in the same tables, a quiet
second run costing each account its own quiet run, and a full re-read of one account
leaving the others' rows as they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tap_stripe.tables import TABLES_BY_NAME, platform_only

from stripe_sim.runner import SimHandle, run_simulator
from tests.e2e.harness import (
    ACCOUNT_COLUMN,
    SCHEMA,
    SIM_KNOBS,
    STREAMS,
    Configs,
    assert_rows_match,
    bookmarks,
    connect,
    persisted_state,
    quiet_run_requests,
    read_tables,
    run_pipe,
    truth,
    write_configs,
)

CONNECTED = 3
ACCOUNTS_KNOBS = {
    **SIM_KNOBS,
    "connected_accounts": CONNECTED,
    # The platform lists exactly the accounts that have data.
    "counts": {**SIM_KNOBS["counts"], "connectedaccount": CONNECTED},
}


@pytest.fixture(scope="module")
def sim() -> SimHandle:
    with run_simulator(**ACCOUNTS_KNOBS) as handle:
        yield handle


def accounts_of(sim: SimHandle) -> list[str]:
    return [sim.account_id, *sim.connected_account_ids]


def assert_account_matches_truth(database: Path, sim: SimHandle, account: str) -> None:
    """Every table holds ``account``'s objects exactly (the platform's own tables: none
    for a connected account)."""
    for stream, rows in read_tables(database, STREAMS, account).items():
        if account != sim.account_id and platform_only(TABLES_BY_NAME[stream]):
            assert rows == [], (account, stream)
            continue
        assert_rows_match(rows, truth(sim, stream, account), stream)


def keys_repeated(database: Path) -> dict[str, int]:
    """Per table, how many keys (the account first) hold more than one row."""
    repeated = {}
    with connect(database) as connection:
        for stream in STREAMS:
            keys = ", ".join([ACCOUNT_COLUMN, *TABLES_BY_NAME[stream].key_properties])
            (count,) = connection.execute(
                f'select count(*) from (select {keys} from {SCHEMA}."{stream}" '
                f"group by {keys} having count(*) > 1)"
            ).fetchone()
            repeated[stream] = count
    return repeated


@pytest.fixture(scope="module")
def synced(sim: SimHandle, tmp_path_factory: pytest.TempPathFactory) -> Configs:
    configs = write_configs(
        tmp_path_factory.mktemp("accounts"), sim, tap={"all_connected_accounts": True}
    )
    sim.reset_stats()
    run_pipe(configs)
    return configs


def test_every_account_lands_in_the_same_tables_equal_to_its_own_truth(
    sim: SimHandle, synced: Configs
) -> None:
    assert len(sim.connected_account_ids) == CONNECTED
    for account in accounts_of(sim):
        assert_account_matches_truth(synced.database, sim, account)
    assert set(keys_repeated(synced.database).values()) == {0}
    state = persisted_state(synced)
    for account in accounts_of(sim):
        assert bookmarks(state, account), account


def test_a_quiet_run_costs_each_account_its_own_quiet_run(sim: SimHandle, synced: Configs) -> None:
    sim.reset_stats()
    run_pipe(synced, resume=True)

    by_account = {
        account: sum(counts.values()) for account, counts in sim.stats()["by_account"].items()
    }
    expected = {account: quiet_run_requests(sim, account) for account in accounts_of(sim)}
    expected[sim.account_id] += 1  # the platform lists its connected accounts
    assert by_account == expected


def test_a_full_re_read_of_one_account_leaves_the_others_rows_alone(
    sim: SimHandle, synced: Configs, tmp_path: Path
) -> None:
    first = sim.connected_account_ids[0]
    state = persisted_state(synced)
    # The first account forgets its charges: a full re-read, whose ACTIVATE_VERSION
    # retires that account's rows the re-read did not write, and no other account's.
    charge = state["bookmarks"]["charge"]
    charge["partitions"] = [
        p for p in charge["partitions"] if p["context"] != {ACCOUNT_COLUMN: first}
    ]
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps(state))
    before = versions_by_account(synced.database)

    run_pipe(synced, state=state_file)

    after = versions_by_account(synced.database)
    assert after.pop(first) > before.pop(first)
    assert after == before
    with connect(synced.database) as connection:
        (retired,) = connection.execute(
            f"select count(*) from {SCHEMA}.charge where _sdc_deleted_at is not null"
        ).fetchone()
    assert retired == 0
    for account in accounts_of(sim):
        assert_account_matches_truth(synced.database, sim, account)


def versions_by_account(database: Path) -> dict[str, int]:
    """The table version of each account's charge rows (one per account)."""
    with connect(database) as connection:
        rows = connection.execute(
            f"select {ACCOUNT_COLUMN}, min(_sdc_table_version), max(_sdc_table_version) "
            f"from {SCHEMA}.charge group by 1"
        ).fetchall()
    assert all(low == high for _, low, high in rows), rows
    return {account: low for account, low, _ in rows}
