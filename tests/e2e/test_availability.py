"""Tables the account cannot read, through a real pipe: skipped, the run exits 0, the
other tables land whole, and a later run reads the skipped tables once they are readable."""

from __future__ import annotations

from pathlib import Path

import pytest

from stripe_sim.runner import SimHandle
from tests.e2e.harness import (
    STREAMS,
    assert_rows_match,
    bookmarks,
    persisted_state,
    read_table,
    run_pipe,
    tables,
    truth,
    write_configs,
)

pytestmark = pytest.mark.e2e

# One of each of Stripe's refusals: a product not set up, a key without the permission,
# an endpoint the account does not have.
REFUSED = {"issuingcard": "not_set_up", "reportrun": "permission", "topup": "missing"}


def test_unreadable_tables_are_skipped_and_read_once_they_are_readable(
    sim: SimHandle, tmp_path: Path
) -> None:
    configs = write_configs(tmp_path, sim)
    sim.set_knobs(unavailable=REFUSED)

    first = run_pipe(configs)

    skipped = [line for line in first.stderr.splitlines() if "Skipping table" in line]
    assert len(skipped) == len(REFUSED), skipped
    for table in REFUSED:
        (line,) = [line for line in skipped if f"'{table}'" in line]
        assert "its state is left as it was" in line
    present = tables(configs.database)
    for stream in set(STREAMS) - set(REFUSED):
        if stream != "account" and stream in present:
            assert_rows_match(read_table(configs.database, stream), truth(sim, stream), stream)
    for table in REFUSED:
        assert table not in present or not read_table(configs.database, table), table
    assert not set(REFUSED) & set(bookmarks(persisted_state(configs)))

    sim.set_knobs(unavailable={})
    second = run_pipe(configs, resume=True)

    assert "Skipping table" not in second.stderr
    for table in REFUSED:
        assert_rows_match(read_table(configs.database, table), truth(sim, table), table)
    assert set(REFUSED) <= set(bookmarks(persisted_state(configs)))
