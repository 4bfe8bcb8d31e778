"""Issue 10, items 6-10: one rule for rejected input, names, widening, JSON Schema, config.

Rule 6: whatever rejects a line, the records before it are committed with the last STATE
received before it, that state is emitted, and stderr ends with one line
`target-duckdb: error: input line N: ...`, without a traceback; the exit code is 1.
"""

from __future__ import annotations

import duckdb
import msgspec
import pytest

from tests.target.helpers import (
    Result,
    column_types,
    query,
    record,
    run,
    run_process,
    schema_message,
    state,
)

PROPS = {"id": {"type": "integer"}, "v": {"type": ["string", "null"]}}
GOOD = [schema_message("t", PROPS), record("t", id=1, v="kept"), state({"n": 1})]
PATHS = pytest.mark.parametrize(
    "path_settings",
    [{}, {"validate_records": True}],
    ids=["fast path", "dict path"],
)


def _rejected(result: Result, line: int, problem: str) -> None:
    assert result.exit_code == 1, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"target-duckdb: error: input line {line}: {problem}"), last


# Item 6: one rule for every rejected input


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (b'{"type": "RECORD", "stream": "t", "record": {"id": 2, "v": "\xff"}}', "RECORD for"),
        (
            '{"type": "RECORD", "stream": "t", "record": {"id": 2',
            "line is not valid JSON",
        ),
        (
            '{"type": "RECORD", "stream": "t", "record": {"id": 2, "v": '
            + "[" * 5000
            + "]" * 5000
            + "}}",
            "line nests JSON deeper than the decoder allows",
        ),
        (record("t", id=2, **{"": "x"}), "record for stream 't' has a property with an empty name"),
        (record("t", id=2, V="x"), "stream 't' has properties 'v' and 'V'"),
        (
            schema_message("u", {"id": {"type": "integer"}, "A": {}, "a": {}}),
            "SCHEMA for stream 'u' has properties 'A' and 'a'",
        ),
        (
            schema_message("u", {"id": {"type": "integer"}, "": {}}),
            "SCHEMA for stream 'u' has a property with an empty name",
        ),
        (schema_message("T", PROPS), "streams 't' and 'T' would both load into table main.T"),
        ({"type": "STATE"}, "STATE message has no 'value'"),
    ],
    ids=[
        "invalid utf-8",
        "truncated",
        "too deep",
        "empty name",
        "case collision in a record",
        "case collision in a schema",
        "empty name in a schema",
        "two streams one table",
        "state without value",
    ],
)
def test_every_rejected_line_commits_what_came_before(tmp_path, bad, problem) -> None:
    after = [record("t", id=3, v="never"), state({"n": 3})]
    result = run_process(tmp_path, [*GOOD, bad, *after])
    _rejected(result, 4, problem)
    assert result.states == [{"n": 1}]
    assert query(tmp_path, "SELECT id, v FROM t") == [(1, "kept")]
    assert msgspec.json.decode(query(tmp_path, "SELECT state FROM _singer_state")[0][0]) == {"n": 1}


def _constrained(tmp_path, table: str = "b") -> None:
    """A table whose CHECK constraint refuses v = 'boom': DuckDB fails the load itself."""
    connection = duckdb.connect(str(tmp_path / "out.duckdb"))
    connection.execute(f"CREATE TABLE {table} (id BIGINT, v VARCHAR CHECK (v <> 'boom'))")
    connection.close()


def test_load_error_names_the_input_line_across_streams_in_one_transaction(tmp_path) -> None:
    _constrained(tmp_path)
    messages = [
        schema_message("a", PROPS),
        schema_message("b", PROPS),
        record("a", id=1, v="x"),
        record("b", id=1, v="x"),
        state({"n": 1}),
        record("a", id=2, v="x"),
        record("b", id=2, v="boom"),  # line 7
        state({"n": 2}),
        record("a", id=3, v="x"),
        record("b", id=3, v="x"),
    ]
    # A real process: the load runs on the loader thread while the main one reads on.
    result = run_process(tmp_path, messages, batch_size_rows=1000)
    _rejected(result, 7, "DuckDB error: Constraint Error: CHECK constraint failed")
    assert ".json" not in result.stderr.strip().splitlines()[-1]
    assert result.states == [{"n": 1}]
    assert query(tmp_path, "SELECT id FROM a ORDER BY id") == [(1,), (2,)]
    assert query(tmp_path, "SELECT id FROM b ORDER BY id") == [(1,)]


def test_load_error_points_at_a_line_of_the_batch_file_and_is_mapped_back(tmp_path) -> None:
    """DuckDB names a line of its batch file; the report names the input line instead.

    `20240102` passes the dict path's date check (Python's fromisoformat) but read_json
    refuses it: a genuine error of the load itself.
    """
    messages = [
        schema_message("t", {"id": {"type": "integer"}, "d": {"type": "string", "format": "date"}}),
        *[record("t", id=i, d="2024-01-02") for i in range(1, 6)],
        state({"n": 5}),
        record("t", id=6, d="20240102"),  # line 8
        record("t", id=7, d="2024-01-03"),
    ]
    result = run(tmp_path, messages)
    _rejected(result, 8, "DuckDB error: Invalid Input Error: JSON transform error: invalid date")
    assert ".json" not in result.stderr.strip().splitlines()[-1]
    assert result.states == [{"n": 5}]
    assert query(tmp_path, "SELECT count(*) FROM t") == [(5,)]


def test_load_error_keeps_a_record_its_key_replaced_later_in_the_batch(tmp_path) -> None:
    _constrained(tmp_path, "t")
    messages = [
        schema_message("t", PROPS),
        record("t", id=1, v="first"),
        state({"n": 1}),
        record("t", id=2, v="boom"),  # line 4
        record("t", id=1, v="second"),
    ]
    result = run(tmp_path, messages)
    _rejected(result, 4, "DuckDB error: Constraint Error")
    assert result.states == [{"n": 1}]
    assert query(tmp_path, "SELECT id, v FROM t") == [(1, "first")]


def test_an_error_on_a_later_line_waits_for_the_earlier_load_error(tmp_path) -> None:
    """A bad line after a failed load: the load's line is the one reported."""
    _constrained(tmp_path, "t")
    messages = [*GOOD, record("t", id=2, v="boom"), state({"n": 2}), "{not json"]
    result = run_process(tmp_path, messages)
    _rejected(result, 4, "DuckDB error")
    assert result.stderr.count("target-duckdb: error:") == 1
    assert result.states == [{"n": 1}]


@pytest.mark.parametrize(
    "settings",
    [{}, {"validate_records": True}, {"add_record_metadata": True}],
    ids=["fast path", "dict path", "stamped"],
)
def test_duplicate_names_in_a_record_keep_the_last_value_on_every_path(tmp_path, settings) -> None:
    messages = [
        schema_message("t", PROPS),
        '{"type": "RECORD", "stream": "t", "record": {"id": 1, "v": "a", "v": "b"}}',
        '{"type": "RECORD", "stream": "t", "record": {"id": 9, "id": 2, "v": "c"}}',
        '{"type": "RECORD", "stream": "t", "version": 1, "record": {"id": 3, "v": "d", "v": "e"}}',
        state({"n": 3}),
    ]
    result = run(tmp_path, messages, **settings)
    assert result.exit_code == 0, result.stderr
    assert result.states == [{"n": 3}]
    assert query(tmp_path, "SELECT id, v FROM t ORDER BY id") == [(1, "b"), (2, "c"), (3, "e")]


# Item 7: names

ODD_NAMES = ["select", "order", "a b", 'a"b', "x" * 300, "a'b", "é", "a.b"]


@PATHS
def test_names_that_need_quoting_load_under_their_own_name(tmp_path, path_settings) -> None:
    props = {
        "id": {"type": "integer"},
        **{name: {"type": ["string", "null"]} for name in ODD_NAMES},
    }
    streams = ["select", "a b", 'q"uote', "s" * 300]
    messages = [
        message
        for stream in streams
        for message in (
            schema_message(stream, props),
            record(stream, id=1, **{name: name[:5] for name in ODD_NAMES}),
        )
    ]
    result = run(tmp_path, [*messages, state({"ok": 1})], **path_settings)
    assert result.exit_code == 0, result.stderr
    for stream in streams:
        table = stream.replace('"', '""')
        assert list(column_types(tmp_path, stream.replace("'", "''"))) == ["id", *ODD_NAMES]
        columns = ", ".join('"' + name.replace('"', '""') + '"' for name in ODD_NAMES)
        assert query(tmp_path, f'SELECT {columns} FROM "{table}"') == [
            tuple(name[:5] for name in ODD_NAMES)
        ]


def test_streams_landing_in_one_table_are_refused_naming_both(tmp_path) -> None:
    messages = [
        schema_message("a-orders", PROPS),
        record("a-orders", id=1),
        state({"n": 1}),
        schema_message("b-orders", PROPS),
    ]
    result = run(tmp_path, messages, default_target_schema="stripe")
    _rejected(
        result, 4, "streams 'a-orders' and 'b-orders' would both load into table stripe.orders"
    )
    assert result.states == [{"n": 1}]
    assert query(tmp_path, "SELECT id FROM stripe.orders") == [(1,)]


def test_a_column_of_an_earlier_run_in_another_case_takes_the_property(tmp_path) -> None:
    first = run(tmp_path, [schema_message("t", {"id": {"type": "integer"}, "Code": {}})])
    assert first.exit_code == 0, first.stderr
    result = run(tmp_path, [schema_message("t", PROPS), record("t", id=1, v="x", code="c")])
    assert result.exit_code == 0, result.stderr
    assert query(tmp_path, "SELECT id, v, Code FROM t") == [(1, "x", "c")]


# Item 8: values keep their text when a column widens


@PATHS
@pytest.mark.parametrize(
    ("declared", "values", "texts"),
    [
        (["integer", "string", "null"], [100, "c3"], ["100", "c3"]),
        (["boolean", "string", "null"], [True, "c3"], ["true", "c3"]),
        (["number", "string", "null"], [1.5, "c3"], ["1.5", "c3"]),
    ],
    ids=["integer|string", "boolean|string", "number|string"],
)
def test_a_declared_scalar_union_is_varchar_of_each_values_text(
    tmp_path, path_settings, declared, values, texts
) -> None:
    props = {"id": {"type": "integer"}, "code": {"type": declared}}
    messages = [
        schema_message("t", props),
        *[record("t", id=i, code=value) for i, value in enumerate(values)],
    ]
    result = run(tmp_path, messages, **path_settings)
    assert result.exit_code == 0, result.stderr
    assert column_types(tmp_path, "t")["code"] == "VARCHAR"
    assert query(tmp_path, "SELECT code FROM t ORDER BY id") == [(text,) for text in texts]
    assert query(tmp_path, "SELECT id FROM t WHERE code = 'c3'") == [(1,)]


@PATHS
@pytest.mark.parametrize(
    ("first", "second", "texts"),
    [(100, "c3", ["100", "c3"]), ("c3", 100, ["c3", "100"]), (True, "c3", ["true", "c3"])],
    ids=["bigint gets a string", "varchar gets an integer", "boolean gets a string"],
)
def test_values_widen_an_undeclared_column_to_varchar_keeping_their_text(
    tmp_path, path_settings, first, second, texts
) -> None:
    messages = [
        schema_message("t", {"id": {"type": "integer"}}),
        record("t", id=1, code=first),
        state({"n": 1}),  # commits the first value before the second widens its column
        record("t", id=2, code=second),
    ]
    result = run(tmp_path, messages, **path_settings)
    assert result.exit_code == 0, result.stderr
    assert column_types(tmp_path, "t")["code"] == "VARCHAR"
    assert query(tmp_path, "SELECT code FROM t ORDER BY id") == [(text,) for text in texts]


@PATHS
def test_a_later_schema_widens_bigint_and_varchar_columns_to_varchar(tmp_path, path_settings):
    first = [
        schema_message(
            "t", {"id": {"type": "integer"}, "n": {"type": "integer"}, "s": {"type": "string"}}
        ),
        record("t", id=1, n=100, s="c3"),
    ]
    assert run(tmp_path, first, **path_settings).exit_code == 0
    second = [
        schema_message(
            "t", {"id": {"type": "integer"}, "n": {"type": "string"}, "s": {"type": "integer"}}
        ),
        record("t", id=2, n="c4", s=7),
    ]
    result = run(tmp_path, second, **path_settings)
    assert result.exit_code == 0, result.stderr
    assert column_types(tmp_path, "t") == {"id": "BIGINT", "n": "VARCHAR", "s": "VARCHAR"}
    assert query(tmp_path, "SELECT n, s FROM t ORDER BY id") == [("100", "c3"), ("c4", "7")]
    assert query(tmp_path, "SELECT id FROM t WHERE s = 'c3'") == [(1,)]


# Item 9: JSON Schema semantics


@PATHS
def test_an_integral_float_is_an_integer(tmp_path, path_settings) -> None:
    messages = [
        schema_message("t", PROPS),
        '{"type": "RECORD", "stream": "t", "record": {"id": 1.0}}',
    ]
    result = run(tmp_path, messages, **path_settings)
    assert result.exit_code == 0, result.stderr
    assert column_types(tmp_path, "t")["id"] == "BIGINT"
    assert query(tmp_path, "SELECT id FROM t") == [(1,)]
    bad = run(tmp_path, [schema_message("t", PROPS), record("t", id=1.5)], **path_settings)
    _rejected(bad, 2, "record for stream 't' fails validation")


def test_state_without_value_is_refused_and_an_empty_one_is_named(tmp_path, caplog) -> None:
    result = run(tmp_path, [*GOOD, state({}), record("t", id=2), {"type": "STATE", "value": None}])
    _rejected(result, 6, "STATE message has no 'value'")
    assert "Ignoring STATE {} at input line 4" in caplog.text
    assert result.states == [{"n": 1}]
    assert query(tmp_path, "SELECT id FROM t ORDER BY id") == [(1,), (2,)]


# Item 10: config errors


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        ({"batch_size_rows": "ten"}, "config: batch_size_rows must be an integer, got 'ten'"),
        ({"load_method": "merge"}, "config: load_method must be one of"),
        ({"memory_limit": "lots"}, "config: memory_limit 'lots' is not a size DuckDB accepts"),
        ({"hard_delete": "yes"}, "config: hard_delete must be a boolean, got 'yes'"),
        ({"path": "/proc/no/such/out.duckdb"}, "config: path /proc/no/such/out.duckdb:"),
    ],
    ids=["wrong type", "unknown load_method", "memory_limit", "boolean", "unwritable path"],
)
def test_config_errors_are_one_line_naming_the_setting(tmp_path, settings, line) -> None:
    result = run_process(tmp_path, GOOD, **settings)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"target-duckdb: error: {line}")


@pytest.mark.parametrize(
    ("settings", "line"),
    [
        ({"memory_limit": "lots"}, "config: memory_limit 'lots' is not a size DuckDB accepts"),
        ({"batch_size_rows": 0}, "config: batch_size_rows must be 1 or more, got 0"),
        ({"max_batch_age_seconds": -1}, "config: max_batch_age_seconds must be more than 0"),
    ],
    ids=["memory_limit", "batch_size_rows", "max_batch_age_seconds"],
)
def test_settings_are_checked_before_any_input_even_an_empty_one(tmp_path, settings, line) -> None:
    result = run_process(tmp_path, [], **settings)
    assert result.exit_code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"target-duckdb: error: {line}")
    assert not (tmp_path / "out.duckdb").exists()


@pytest.mark.parametrize(
    ("content", "problem"), [(b"{not json", "is not JSON"), (b"[1]", "does not hold a JSON object")]
)
def test_a_config_file_that_is_not_a_json_object_is_one_line(tmp_path, content, problem) -> None:
    import subprocess

    from tests.target.helpers import TARGET_COMMAND

    config = tmp_path / "target.json"
    config.write_bytes(content)
    completed = subprocess.run(
        [*TARGET_COMMAND, "--config", str(config)],
        input=b"",
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = completed.stderr.decode()
    assert completed.returncode == 1
    assert "Traceback" not in stderr
    assert stderr.strip() == f"target-duckdb: error: config: file {config} {problem}" or (
        stderr.strip().startswith(f"target-duckdb: error: config: file {config} {problem}")
    )


# Fuzz findings (/tmp/fuzz-findings/NNN-*.md), one regression each

SCHEMA_ID = schema_message("t", {"id": {"type": "integer"}})
PREFIX = [SCHEMA_ID, record("t", id=1), state({"n": 1})]


def test_finding_001_boolean_property_schemas_are_untyped_json_columns(tmp_path) -> None:
    props = {"id": {"type": "integer"}, "p": False, "q": True, "r": {"anyOf": [True]}}
    result = run(tmp_path, [schema_message("t", props), record("t", id=1, q={"a": 1}, r=2)])
    assert result.exit_code == 0, result.stderr
    assert column_types(tmp_path, "t") == {"id": "BIGINT", "p": "JSON", "q": "JSON", "r": "JSON"}
    assert query(tmp_path, "SELECT CAST(q AS VARCHAR), CAST(r AS VARCHAR) FROM t") == [
        ('{"a":1}', "2")
    ]


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (
            schema_message("t", {"id": {"type": "integer"}, "ID": {"type": "string"}}),
            "SCHEMA for stream 't' has properties 'id' and 'ID'",
        ),  # 002
        ({"type": "SCHEMA", "stream": "-", "schema": SCHEMA_ID["schema"]}, "stream '-' gives"),
        ({"type": "SCHEMA", "stream": "x-", "schema": SCHEMA_ID["schema"]}, "stream 'x-' gives"),
        (record("t", id=2, **{"": 1}), "record for stream 't' has a property with an empty name"),
        (
            '{"type":"RECORD","stream":"t","record":{"id":2,"p":'
            + "[" * 100000
            + "]" * 100000
            + "}}",
            "line nests JSON deeper than the decoder allows",
        ),  # 006
        (b'{"type":"RECORD","stream":"t","record":{"id":"\xed\xa0\x80"}}', "RECORD for"),  # 009
    ],
    ids=["002", "005 dash", "005 trailing dash", "005 empty property", "006", "009"],
)
def test_findings_rejected_under_rule_6(tmp_path, bad, problem) -> None:
    result = run_process(tmp_path, [*PREFIX, bad, record("t", id=3)])
    _rejected(result, 4, problem)
    assert result.states == [{"n": 1}]
    assert query(tmp_path, "SELECT id FROM t") == [(1,)]


def test_finding_003_004_duplicate_names_before_a_bad_line_give_one_error(tmp_path) -> None:
    messages = [
        SCHEMA_ID,
        record("t", id=1),
        state({"n": 1}),
        '{"type":"RECORD","stream":"t","record":{"id":[],"id":2}}',
        "oops",
    ]
    result = run_process(tmp_path, messages)
    _rejected(result, 5, "line is not valid JSON")
    assert result.stderr.count("target-duckdb: error:") == 1
    assert result.states == [{"n": 1}]
    assert query(tmp_path, "SELECT id FROM t ORDER BY id") == [(1,), (2,)]


def test_finding_007_untyped_column_in_a_composite_key(tmp_path) -> None:
    props = {"id": {}, "k": {"type": "integer"}}
    messages = [
        schema_message("t", props, keys=["id", "k"]),
        record("t", id=1, k=0),
        record("t", id={"a": 1}, k=0),
        record("t", id=1, k=0),
    ]
    result = run(tmp_path, messages)
    assert result.exit_code == 0, result.stderr
    assert query(tmp_path, "SELECT CAST(id AS VARCHAR), k FROM t ORDER BY 1") == [
        ("1", 0),
        ('{"a":1}', 0),
    ]


@PATHS
def test_finding_008_names_msgspec_refuses_load_through_the_dict_path(tmp_path, path_settings):
    props = {"id": {"type": "integer"}, 'q"uote': {"type": "string"}}
    messages = [schema_message("t", props), record("t", id=1, **{'q"uote': "x", "a\\b": 1})]
    result = run(tmp_path, messages, **path_settings)
    assert result.exit_code == 0, result.stderr
    assert query(tmp_path, 'SELECT "q""uote", "a\\b" FROM t') == [("x", 1)]
