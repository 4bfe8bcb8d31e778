"""Bad input: one clear line on stderr, a non-zero exit, and nothing committed is lost."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.target.helpers import query, record, run, run_process, schema_message, state

PROPS = {"id": {"type": "integer"}, "v": {"type": ["string", "null"]}}
GOOD = [schema_message("t", PROPS), record("t", id=1, v="kept"), state({"n": 1})]
AFTER = [record("t", id=2, v="never"), state({"n": 2})]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "input line 4: line is not valid JSON"),
        ("[1, 2]", "input line 4: line is JSON but not a JSON object"),
        ('{"stream": "t", "record": {"id": 3}}', "input line 4: message has no 'type'"),
        ('{"type": "FOO"}', "input line 4: unknown message type 'FOO'"),
        (
            record("other", id=3),
            "input line 4: RECORD for stream 'other' arrived before its SCHEMA",
        ),
        (
            {"type": "SCHEMA", "stream": "u", "schema": {"type": "object"}, "key_properties": []},
            "input line 4: SCHEMA for stream 'u' has no properties",
        ),
        (
            schema_message("u", {"id": {"type": "strnig"}}),
            "input line 4: SCHEMA for stream 'u' is not a valid JSON Schema at properties/id/type",
        ),
        (
            # A re-announcement adding a property: only the addition is checked, but checked.
            schema_message("t", {**PROPS, "w": {"type": "strnig"}}),
            "input line 4: SCHEMA for stream 't' is not a valid JSON Schema at properties/w/type",
        ),
        (
            # A re-announcement changing a property is checked whole.
            schema_message("t", {**PROPS, "v": {"type": "strnig"}, "w": {"type": "string"}}),
            "input line 4: SCHEMA for stream 't' is not a valid JSON Schema at properties/v/type",
        ),
        (
            record("t", id=3, v=5),
            "input line 4: record for stream 't' fails validation: property 'v' is integer, "
            "schema allows null, string",
        ),
        (
            record("t", v="no id"),
            "input line 4: record for stream 't' lacks key properties ['id']",
        ),
        (
            {"type": "RECORD", "stream": "t"},
            "input line 4: RECORD message has no 'record'",
        ),
        (
            {"type": "ACTIVATE_VERSION", "stream": "t", "version": "one"},
            "input line 4: 'version' must be an integer, got 'one'",
        ),
        (
            {"type": "ACTIVATE_VERSION", "stream": "other", "version": 1},
            "input line 4: ACTIVATE_VERSION for stream 'other' before its SCHEMA",
        ),
        (
            schema_message("u", {"v": {"type": "string"}}, keys=["id"]),
            "input line 4: SCHEMA for stream 'u' lacks its key properties ['id']",
        ),
        (
            {"type": "BATCH", "stream": "t", "encoding": {}, "manifest": []},
            "input line 4: BATCH messages are not supported by target-duckdb",
        ),
        (
            '{"type": "SCHEMA", "schema": {"type": "object", "properties": {}}}',
            "input line 4: SCHEMA message has no 'stream'",
        ),
    ],
)
def test_bad_line_reports_one_line_and_keeps_what_came_before(tmp_path, bad, message) -> None:
    result = run(tmp_path, [*GOOD, bad, *AFTER])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"target-duckdb: error: {message}"), lines
    assert "Traceback" not in result.stderr
    assert result.states == [{"n": 1}]
    assert query(tmp_path, "SELECT id, v FROM t") == [(1, "kept")]


def test_records_before_the_bad_line_are_committed_even_without_a_state(tmp_path) -> None:
    result = run(tmp_path, [schema_message("t", PROPS), record("t", id=1), "oops"])
    assert result.exit_code == 1
    assert result.states == []
    assert query(tmp_path, "SELECT id FROM t") == [(1,)]


def test_bad_line_in_a_real_process_has_no_traceback(tmp_path) -> None:
    result = run_process(tmp_path, [*GOOD, "{not json", *AFTER])
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith("target-duckdb: error: input line 4: line is not valid JSON")
    )
    assert result.states == [{"n": 1}]


def test_locked_database_file(tmp_path) -> None:
    path = tmp_path / "out.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "sys.stdin.read()",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = run_process(tmp_path, GOOD)
    finally:
        holder.communicate("", timeout=30)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"target-duckdb: error: DuckDB file {path} is locked by another process")
    assert "Could not set lock on file" in last


def test_unwritable_path(tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_process(tmp_path, GOOD, path=str(blocker / "sub" / "out.duckdb"))
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"target-duckdb: error: config: path {blocker / 'sub' / 'out.duckdb'}: "
            "cannot open the DuckDB file:"
        )
    )


def test_blank_lines_are_skipped(tmp_path) -> None:
    result = run(tmp_path, [GOOD[0], "", "   ", GOOD[1], GOOD[2]])
    assert result.exit_code == 0, result.stderr
    assert result.states == [{"n": 1}]


def test_failed_load_reports_the_input_line_and_keeps_what_came_before(tmp_path) -> None:
    """A DuckDB error in a later batch: earlier batches stay, the error names the input line."""
    import duckdb

    connection = duckdb.connect(str(tmp_path / "out.duckdb"))
    connection.execute("CREATE TABLE t (id BIGINT, v VARCHAR CHECK (v <> 'boom'))")
    connection.close()
    messages = [
        schema_message("t", PROPS),
        record("t", id=1, v="a"),
        record("t", id=2, v="b"),
        state({"n": 2}),
        record("t", id=3, v="c"),
        record("t", id=4, v="boom"),
        state({"n": 4}),
        record("t", id=5, v="e"),
    ]
    result = run(tmp_path, messages, batch_size_rows=2)
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "target-duckdb: error: input line 6: DuckDB error: Constraint Error: CHECK constraint"
        )
    )
    assert result.states == [{"n": 2}]
    assert query(tmp_path, "SELECT id FROM t ORDER BY id") == [(1,), (2,), (3,)]
