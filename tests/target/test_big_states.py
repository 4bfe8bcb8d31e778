"""Many large states at the default memory limit (128 MB), as a tap reading many Stripe
accounts writes them (one entry per table per account: ~200 KB for 21 accounts, ~10 MB
for 1,000), into a file and into a lake: every record lands and the state is the last.

The input is shaped like the tap's: 60 tables of 30 columns (most of them text or JSON),
a few records of each table at a time, a STATE after every few tables. Before the fix,
the file runs failed at 128 MB: a state replacing its keyed row kept every replaced value
in memory DuckDB could not spill, and DuckDB's automatic checkpoint inside a COMMIT, when
it ran out of memory, invalidated the database. A lake did not fail, but inlined each
state into its catalog (seconds and ~1 GB of memory a commit at 10 MB).
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import duckdb
import msgspec
import pytest
from target_duckdb import checkpoints
from target_duckdb.database import Database
from target_duckdb.state import last_state
from target_duckdb.state_table import STATE_TABLE

from tests.postgres_server import Lake
from tests.target.helpers import TARGET_COMMAND, query, write_config

TABLES = 60
COLUMNS = 30
# The kinds of a table's columns after `id` and `created`, in turn.
KINDS = ("string", "string", "object", "string", "integer", "string", "object", "boolean")
ENTRY = 100  # bytes of one account's entry in a table's bookmark, about


def _properties() -> dict:
    properties: dict = {"id": {"type": "string"}, "created": {"type": "integer"}}
    for column in range(COLUMNS - 2):
        properties[f"c{column}"] = {"type": [KINDS[column % len(KINDS)], "null"]}
    return properties


def _record(table: int, n: int) -> dict:
    values: dict = {"id": f"obj_{table}_{n}", "created": 1_700_000_000 + n}
    for column in range(COLUMNS - 2):
        values[f"c{column}"] = {
            "string": f"text {n} {column} " * 4,
            "integer": n * column,
            "boolean": n % 2 == 0,
            "object": {"n": n, "list": [column] * 10, "note": "x" * 100},
        }[KINDS[column % len(KINDS)]]
    return values


def _state(size: int, moment: int) -> dict:
    """A state of about `size` bytes: every table's bookmark, one entry per account."""
    accounts = range(max(1, size // (TABLES * ENTRY)))
    return {
        "bookmarks": {
            f"t{table}": {
                "partitions": [
                    {
                        "context": {"_stripe_account": f"acct_{account:016d}"},
                        "replication_key": "created",
                        "replication_key_value": 1_700_000_000 + moment + account,
                    }
                    for account in accounts
                ]
            }
            for table in range(TABLES)
        }
    }


def _input(path: Path, *, rounds: int, per_table: int, state_size: int, states: int) -> dict:
    """Write the Singer input to `path`: `rounds` times, `per_table` records of every table,
    a state after every `TABLES // states` tables. Returns the last state."""
    encode = msgspec.json.encode
    every = TABLES // states
    schema = {"type": "object", "properties": _properties()}
    last: dict = {}
    with path.open("wb") as out:
        for table in range(TABLES):
            message = {"type": "SCHEMA", "stream": f"t{table}", "schema": schema}
            out.write(encode({**message, "key_properties": ["id"]}) + b"\n")
        n = 0
        for round_ in range(rounds):
            for table in range(TABLES):
                for _ in range(per_table):
                    message = {"type": "RECORD", "stream": f"t{table}"}
                    out.write(encode({**message, "record": _record(table, n)}) + b"\n")
                    n += 1
                if table % every == every - 1:
                    last = _state(state_size, round_ * TABLES + table)
                    out.write(encode({"type": "STATE", "value": last}) + b"\n")
    return last


def _run(tmp_path: Path, singer: Path, **settings: object) -> subprocess.CompletedProcess:
    """The target as a process at its default memory limit, committing every 100 records."""
    config = write_config(tmp_path, batch_size_rows=100, **settings)
    with singer.open("rb") as stdin:
        return subprocess.run(
            [*TARGET_COMMAND, "--config", str(config)],
            stdin=stdin,
            capture_output=True,
            timeout=300,
            check=False,
        )


def _union() -> str:
    """Every table's ids."""
    return " UNION ALL ".join(f"SELECT id FROM t{table}" for table in range(TABLES))


def _emitted(completed: subprocess.CompletedProcess) -> object:
    return msgspec.json.decode(completed.stdout.splitlines()[-1])


# The smallest inputs found that failed before the fix: 120 states of ~200 KB, and two of
# ~10 MB. A lake is slower per commit (a Parquet file per table), and reads fewer rounds.
SIZES = {
    "200KB": {"rounds": 6, "per_table": 5, "state_size": 200_000, "states": 20},
    "10MB": {"rounds": 1, "per_table": 5, "state_size": 10_000_000, "states": 2},
}
LAKE_SIZES = {"200KB": {**SIZES["200KB"], "rounds": 2}, "10MB": SIZES["10MB"]}


@pytest.mark.parametrize("size", SIZES)
def test_many_large_states_in_a_file_end_with_every_record_and_the_last_state(tmp_path, size):
    singer = tmp_path / "input.singer"
    last = _input(singer, **SIZES[size])
    completed = _run(tmp_path, singer)
    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    records = TABLES * SIZES[size]["rounds"] * SIZES[size]["per_table"]
    assert query(tmp_path, f"SELECT count(DISTINCT id) FROM ({_union()})") == [(records,)]
    assert query(tmp_path, f"SELECT count(*) FROM {STATE_TABLE}") == [(1,)]
    config = {"path": str(tmp_path / "out.duckdb")}
    assert msgspec.json.decode(last_state(config)) == last == _emitted(completed)
    assert not Path(str(tmp_path / "out.duckdb") + ".wal").exists()  # checkpointed at the end


@pytest.mark.parametrize("size", LAKE_SIZES)
def test_many_large_states_in_a_lake_end_with_every_record_and_the_last_state(
    lake: Lake, tmp_path, size
):
    singer = tmp_path / "input.singer"
    last = _input(singer, **LAKE_SIZES[size])
    completed = _run(tmp_path, singer, **lake.config())
    assert completed.returncode == 0, completed.stderr.decode()[-2000:]
    records = TABLES * LAKE_SIZES[size]["rounds"] * LAKE_SIZES[size]["per_table"]
    assert lake.query(f"SELECT count(DISTINCT id) FROM ({_union()})") == [(records,)]
    assert lake.query(f"SELECT count(*) FROM {STATE_TABLE}") == [(1,)]
    assert msgspec.json.decode(last_state(lake.config())) == last == _emitted(completed)
    # The states went to Parquet files, not inlined into the catalog.
    assert list((lake.data_path / "main" / STATE_TABLE).glob("*.parquet"))


def test_a_checkpoint_that_fails_loses_nothing_and_the_file_is_opened_again(tmp_path, caplog):
    path = str(tmp_path / "out.duckdb")
    database = Database(path, "main")
    try:
        database.states.ensure()
        database.execute("CREATE TABLE t (id INTEGER, text VARCHAR)")
        # DuckDB's own way to make a checkpoint fail: it invalidates the database, as
        # running out of memory does.
        database.execute("SET debug_checkpoint_abort = 'before_header'")
        payload = "x" * (checkpoints.WAL_BYTES // 100)

        def body() -> None:
            database.execute("INSERT INTO t SELECT range, ? FROM range(100)", [payload])
            database.states.save("default", '{"n": 1}')

        with caplog.at_level(logging.WARNING, logger="target-duckdb"):
            database.committed(body, "Committing")
        assert "Checkpointing the DuckDB file failed; nothing is lost" in caplog.text
        # The file was opened again (the debug setting went with the old connection): the
        # commit is there, from the WAL, and the run goes on.
        assert database.execute("SELECT count(*) FROM t").fetchall() == [(100,)]
        database.committed(lambda: database.states.save("default", '{"n": 2}'), "Committing")
    finally:
        database.close()
    assert query(tmp_path, "SELECT count(*) FROM t") == [(100,)]
    assert msgspec.json.decode(last_state({"path": path})) == {"n": 2}


def test_a_state_table_keyed_by_state_id_loses_its_key_and_keeps_its_rows(tmp_path):
    path = str(tmp_path / "out.duckdb")
    old = duckdb.connect(path)
    old.execute(
        f"CREATE TABLE {STATE_TABLE} (state_id VARCHAR PRIMARY KEY, state JSON, "
        "committed_at TIMESTAMPTZ)"
    )
    old.execute(f"INSERT INTO {STATE_TABLE} VALUES ('other', '{{\"o\": 1}}', now())")
    old.execute(f"INSERT INTO {STATE_TABLE} VALUES ('default', '{{\"n\": 1}}', now())")
    old.close()
    database = Database(path, "main")
    try:
        database.states.ensure()
        database.committed(lambda: database.states.save("default", '{"n": 2}'), "Committing")
    finally:
        database.close()
    assert query(tmp_path, "SELECT count(*) FROM duckdb_constraints()") == [(0,)]
    assert query(tmp_path, f"SELECT state_id, state FROM {STATE_TABLE} ORDER BY 1") == [
        ("default", '{"n": 2}'),
        ("other", '{"o": 1}'),
    ]
