"""target-duckdb into a DuckLake (a PostgreSQL catalog the tests start, Parquet files in
tmp_path): extensions from their packages, rows and state, upserts, the state command, a
commit retried after another writer's conflicting one, and a kill -9 in the middle."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import msgspec
from target_duckdb import extensions
from target_duckdb.database import Database
from target_duckdb.state import last_state

from tests.postgres_server import Lake
from tests.target.helpers import (
    TARGET_COMMAND,
    record,
    run,
    schema_message,
    state,
    to_lines,
    write_config,
)

PROPS = {"id": {"type": "integer"}, "v": {"type": ["string", "null"]}}


def _records(stream: str, ids: range, value: str) -> list[dict]:
    return [record(stream, id=i, v=f"{value}{i}") for i in ids]


def test_the_extensions_load_from_their_packages_and_nothing_is_installed(lake, tmp_path):
    database = Database(lake.path, "main", data_path=str(lake.data_path))
    try:
        settings = dict(
            database.connection.execute(
                "SELECT name, value FROM duckdb_settings() WHERE name IN "
                "('autoinstall_known_extensions', 'autoload_known_extensions')"
            ).fetchall()
        )
        loaded = {
            name: (mode, installed)
            for name, mode, installed in database.connection.execute(
                "SELECT extension_name, install_mode, installed FROM duckdb_extensions() "
                "WHERE loaded AND extension_name IN ('ducklake', 'postgres_scanner')"
            ).fetchall()
        }
    finally:
        database.close()
    assert settings == {
        "autoinstall_known_extensions": "false",
        "autoload_known_extensions": "false",
    }
    # Loaded from a file by its path, not from DuckDB's extension folder or repository.
    assert loaded == {
        "ducklake": ("NOT_INSTALLED", False),
        "postgres_scanner": ("NOT_INSTALLED", False),
    }
    # DuckDB does not say which file it loaded; the process's mappings do.
    mapped = Path("/proc/self/maps").read_text()
    for name in ("ducklake", "postgres_scanner"):
        assert str(extensions.path(name)) in mapped


def test_a_target_process_with_an_empty_home_writes_the_lake_without_installing(lake, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    config = write_config(tmp_path, **lake.config())
    messages = [schema_message("a", PROPS), *_records("a", range(1, 4), "x"), state({"n": 3})]
    completed = subprocess.run(
        [*TARGET_COMMAND, "--config", str(config)],
        input=to_lines(messages).encode(),
        capture_output=True,
        env={**os.environ, "HOME": str(home)},
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    assert lake.query("SELECT count(*) FROM a") == [(3,)]
    assert list(home.iterdir()) == []  # no ~/.duckdb/extensions


def test_a_stream_lands_its_rows_as_parquet_and_its_state(lake, tmp_path):
    messages = [schema_message("charge", PROPS)]
    for start in range(1, 100, 25):
        messages += [*_records("charge", range(start, start + 25), "v"), state({"n": start + 24})]
    result = run(tmp_path, messages, **lake.config(batch_size_rows=30))
    assert result.exit_code == 0, result.stderr
    assert result.states[-1] == {"n": 100}
    assert lake.query("SELECT count(*), count(DISTINCT id), min(v), max(id) FROM charge") == [
        (100, 100, "v1", 100)
    ]
    assert list(lake.data_path.rglob("*.parquet"))  # past the rows DuckLake inlines
    assert msgspec.json.decode(last_state(lake.config())) == {"n": 100}
    # One row per state id: the older rows of a run go at its end.
    assert lake.query("SELECT state_id, count(*) FROM _singer_state GROUP BY ALL") == [
        ("default", 1)
    ]


def test_upserts_replace_rows_by_key(lake, tmp_path):
    first = [schema_message("a", PROPS), *_records("a", range(1, 21), "old"), state({"run": 1})]
    assert run(tmp_path, first, **lake.config()).exit_code == 0
    second = [schema_message("a", PROPS), *_records("a", range(11, 31), "new"), state({"run": 2})]
    result = run(tmp_path, second, **lake.config(batch_size_rows=7))
    assert result.exit_code == 0, result.stderr
    rows = dict(lake.query("SELECT id, v FROM a"))
    assert rows == {i: f"old{i}" if i <= 10 else f"new{i}" for i in range(1, 31)}
    composite = schema_message("b", {**PROPS, "k": {"type": "string"}}, keys=["k", "id"])
    third = [
        composite,
        record("b", k="x", id=1, v="1"),
        record("b", k="y", id=1, v="1"),
        state({"run": 3}),
    ]
    assert run(tmp_path, third, **lake.config()).exit_code == 0
    fourth = [composite, record("b", k="x", id=1, v="2"), state({"run": 4})]
    assert run(tmp_path, fourth, **lake.config()).exit_code == 0
    assert lake.query("SELECT k, id, v FROM b ORDER BY k") == [("x", 1, "2"), ("y", 1, "1")]


def test_a_column_widened_beyond_what_ducklake_changes_in_place_keeps_its_values(lake, tmp_path):
    first = [schema_message("a", {"id": {"type": "integer"}, "n": {"type": "integer"}})]
    first += [record("a", id=i, n=i) for i in range(1, 21)]
    assert run(tmp_path, first, **lake.config()).exit_code == 0
    second = [schema_message("a", {"id": {"type": "integer"}, "n": {"type": "string"}})]
    second += [record("a", id=21, n="twenty-one")]
    result = run(tmp_path, second, **lake.config())
    assert result.exit_code == 0, result.stderr
    assert lake.query("SELECT typeof(n) FROM a LIMIT 1") == [("VARCHAR",)]
    assert dict(lake.query("SELECT id, n FROM a")) == {
        **{i: str(i) for i in range(1, 21)},
        21: "twenty-one",
    }


def test_the_state_command_reads_a_lake(lake, tmp_path):
    assert last_state(lake.config()) == "{}"  # no lake yet
    messages = [schema_message("a", PROPS), record("a", id=1), state({"mine": 1})]
    assert run(tmp_path, messages, **lake.config(state_id="one")).exit_code == 0
    assert last_state(lake.config(state_id="two")) == "{}"
    assert msgspec.json.decode(last_state(lake.config(state_id="one"))) == {"mine": 1}


def test_the_last_committed_state_row_wins_whatever_the_clock_that_wrote_it(lake, tmp_path):
    first = [schema_message("a", PROPS), record("a", id=1), state({"run": 1})]
    assert run(tmp_path, first, **lake.config()).exit_code == 0
    ahead = Database(lake.path, "main")  # a machine whose clock is a year ahead wrote it
    try:
        ahead.execute("UPDATE _singer_state SET committed_at = committed_at + INTERVAL 1 YEAR")
    finally:
        ahead.close()
    second = [schema_message("a", PROPS), record("a", id=2), state({"run": 2})]
    assert run(tmp_path, second, **lake.config()).exit_code == 0
    assert msgspec.json.decode(last_state(lake.config())) == {"run": 2}
    assert lake.query("SELECT state FROM _singer_state") == [('{"run":2}',)]


def test_a_lake_setting_the_target_cannot_use_is_one_line(postgres, tmp_path, monkeypatch):
    # As where the [motherduck] extra is not installed (nothing here reaches MotherDuck).
    monkeypatch.setitem(extensions.PACKAGES, "motherduck", ("absent", "target-duckdb[motherduck]"))
    cases = {
        "data_path": (
            {"path": str(tmp_path / "x.duckdb"), "data_path": str(tmp_path)},
            "data_path applies only to a DuckLake",
        ),
        "new lake": (
            {"path": postgres.new_lake(tmp_path).path},
            "data_path is required to create a new DuckLake",
        ),
        "down": (
            {
                "path": "ducklake:postgres:host=127.0.0.1 port=1 dbname=x password=secret",
                "data_path": str(tmp_path),
            },
            "cannot attach the DuckLake",
        ),
        "motherduck": (
            {"path": "md:stripe?motherduck_token=secret"},
            "md:stripe?motherduck_token=***: DuckDB's motherduck extension is not installed: "
            "pip install 'target-duckdb[motherduck]'",
        ),
    }
    for name, (settings, expected) in cases.items():
        result = run(tmp_path, [schema_message("a", PROPS), record("a", id=1)], **settings)
        assert result.exit_code == 1, name
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (name, result.stderr)
        assert "secret" not in result.stderr


def test_a_commit_conflicting_with_another_writers_runs_again(lake, tmp_path, caplog):
    """Two writers delete rows of one table at once: the second to commit is refused, and
    its whole transaction runs again on the first one's snapshot."""
    setup = [schema_message("a", PROPS), *_records("a", range(1, 5), "x"), state({})]
    assert run(tmp_path, setup, **lake.config()).exit_code == 0
    mine = Database(lake.path, "main")
    theirs = Database(lake.path, "main")
    attempts = []

    def body() -> None:
        attempts.append(len(attempts) + 1)
        mine.execute("DELETE FROM a WHERE id = 1")
        if len(attempts) == 1:  # another writer commits a conflicting delete meanwhile
            theirs.execute("DELETE FROM a WHERE id = 2")

    try:
        with caplog.at_level("INFO", logger="target-duckdb"):
            mine.committed(body, "The test's commit")
    finally:
        mine.close()
        theirs.close()
    assert attempts == [1, 2]
    retries = [r.getMessage() for r in caplog.records if "conflicted" in r.getMessage()]
    assert len(retries) == 1
    assert retries[0].startswith(
        "The test's commit conflicted with another writer (attempt 1 of 12)"
    )
    assert lake.query("SELECT id FROM a ORDER BY id") == [(3,), (4,)]


def test_kill_9_mid_stream_then_a_rerun_completes_the_lake(lake: Lake, tmp_path):
    config = write_config(tmp_path, **lake.config(batch_size_rows=50))
    total = 2_000
    messages = [schema_message("a", PROPS)]
    for i in range(1, total + 1):
        messages.append(record("a", id=i, v=f"v{i}"))
        if i % 50 == 0:
            messages.append(state({"n": i}))
    scratch = tmp_path / "tmp"  # the killed target's batch files stay there, not in /tmp
    scratch.mkdir()
    process = subprocess.Popen(
        [*TARGET_COMMAND, "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(scratch)},
    )

    def feed() -> None:
        try:
            for start in range(0, len(messages), 100):
                process.stdin.write(to_lines(messages[start : start + 100]).encode())
                process.stdin.flush()
            process.stdin.close()
        except (BrokenPipeError, ValueError):
            pass  # killed while still writing: the point of the test

    writer = threading.Thread(target=feed)
    writer.start()
    emitted = [msgspec.json.decode(process.stdout.readline()) for _ in range(3)]
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    writer.join(timeout=60)
    covered = emitted[-1]["n"]
    assert covered < total
    committed = msgspec.json.decode(last_state(lake.config()))["n"]
    assert committed >= covered
    assert lake.query("SELECT count(*), count(DISTINCT id) FROM a WHERE id <= ?", [committed]) == [
        (committed, committed)
    ]
    # The rerun resumes from the committed state, as a tap would.
    rest = [schema_message("a", PROPS)]
    rest += [m for m in messages[1:] if m["type"] == "RECORD" and m["record"]["id"] > committed]
    rest.append(state({"n": total}))
    result = run(tmp_path, rest, **lake.config())
    assert result.exit_code == 0, result.stderr
    assert lake.query("SELECT count(*), count(DISTINCT id), max(id) FROM a") == [
        (total, total, total)
    ]
    assert msgspec.json.decode(last_state(lake.config())) == {"n": total}
