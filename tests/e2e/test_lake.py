"""Many pipelines, one warehouse: three `tap-stripe | target-duckdb` pipelines, one
connected account each, writing one DuckLake (a real PostgreSQL catalog the tests start,
Parquet files in a folder) at the same time; one of them killed part way and resumed from
the lake's state. Each account ends equal to its truth, each pipeline with its own state."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tap_stripe.tables import TABLES_BY_NAME, platform_only

from stripe_sim.runner import SimHandle, run_simulator
from tests.e2e.harness import (
    ACCOUNT_COLUMN,
    RUN_TIMEOUT,
    SCHEMA,
    SIM_KNOBS,
    STREAMS,
    Configs,
    Pipeline,
    assert_rows_match,
    bookmarks,
    persisted_state,
    pipe_command,
    run_pipe,
    table_rows,
    truth,
    write_configs,
)
from tests.postgres_server import Lake, PostgresServer, postgres

__all__ = ["postgres"]

PIPELINES = 3
KNOBS = {
    **SIM_KNOBS,
    "connected_accounts": PIPELINES,
    "counts": {**SIM_KNOBS["counts"], "connectedaccount": PIPELINES},
}


# Connected accounts only: the platform's own tables are read by no pipeline here.
READ = tuple(stream for stream in STREAMS if not platform_only(TABLES_BY_NAME[stream]))


def assert_account_in_lake_matches_truth(lake: Lake, sim: SimHandle, account: str) -> None:
    with lake.reader() as connection:
        for stream in READ:
            rows = table_rows(connection, stream, account)
            assert_rows_match(rows, truth(sim, stream, account), stream)


def pipeline_configs(folder: Path, sim: SimHandle, lake: Lake, account: str, n: int) -> Configs:
    return write_configs(
        folder / f"pipeline-{n}",
        sim,
        tap={"account_id": account},
        target=lake.config(default_target_schema=SCHEMA, state_id=f"pipeline-{n}"),
    )


def test_three_pipelines_write_one_lake_at_once_and_a_killed_one_resumes(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    lake = postgres.new_lake(tmp_path / "lake-data")
    with run_simulator(**KNOBS) as sim:
        accounts = sim.connected_account_ids
        configs = [
            pipeline_configs(tmp_path, sim, lake, account, n) for n, account in enumerate(accounts)
        ]
        killed, *whole = configs
        with Pipeline(killed) as cut:
            others = [
                subprocess.Popen(
                    ["bash", "-o", "pipefail", "-c", pipe_command(c)],
                    stdout=subprocess.DEVNULL,
                    stderr=(c.tap.parent / "pipe.err").open("wb"),
                )
                for c in whole
            ]
            # Killed (-9, both processes) once the lake holds some of its work.
            cut.forward(until=cut.bookmark_committed)
            cut.close()
            for process, c in zip(others, whole, strict=True):
                errors = c.tap.parent / "pipe.err"
                assert process.wait(timeout=RUN_TIMEOUT) == 0, errors.read_text()
        assert bookmarks(persisted_state(killed)), "nothing was committed before the kill"

        run_pipe(killed, resume=True)

        tables = lake.query(
            "select table_name from information_schema.tables where table_schema = ?", [SCHEMA]
        )
        assert {name for (name,) in tables} - {"_singer_state"} == set(READ)
        for account in accounts:
            assert_account_in_lake_matches_truth(lake, sim, account)
        states = [persisted_state(c) for c in configs]
        for state, account in zip(states, accounts, strict=True):
            assert {
                p["context"][ACCOUNT_COLUMN]
                for entry in state["bookmarks"].values()
                for p in entry.get("partitions", [])
            } == {account}
