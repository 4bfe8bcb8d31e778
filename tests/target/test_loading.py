"""Load methods, de-duplication, ACTIVATE_VERSION, deletions, metadata, schemas, maps."""

from __future__ import annotations

import copy
import sys

import pytest
from target_duckdb.database import Database
from target_duckdb.messages import STDIN_BUFFER
from target_duckdb.schemas import check_schema
from target_duckdb.session import SWITCH_INTERVAL

from tests.target.helpers import (
    column_types,
    query,
    record,
    run,
    run_process,
    schema_message,
    state,
)

PROPS = {"id": {"type": "integer"}, "v": {"type": ["string", "null"]}}


def test_upsert_keeps_the_last_record_per_key_within_and_across_batches(tmp_path) -> None:
    messages = [
        schema_message("t", PROPS),
        record("t", id=1, v="first"),
        record("t", id=2, v="only"),
        record("t", id=1, v="second"),
        record("t", id=1, v="last"),
    ]
    assert run(tmp_path, messages).exit_code == 0
    assert query(tmp_path, "SELECT id, v FROM t ORDER BY id") == [(1, "last"), (2, "only")]
    # batches of 2: duplicates span batches and an earlier run
    result = run(
        tmp_path,
        [schema_message("t", PROPS)] + [record("t", id=i % 3, v=f"run2-{i}") for i in range(7)],
        batch_size_rows=2,
    )
    assert result.exit_code == 0, result.stderr
    assert query(tmp_path, "SELECT id, v FROM t ORDER BY id") == [
        (0, "run2-6"),
        (1, "run2-4"),
        (2, "run2-5"),
    ]


def test_composite_keys_upsert(tmp_path) -> None:
    props = {"a": {"type": "string"}, "b": {"type": "integer"}, "v": {"type": "integer"}}
    messages = [
        schema_message("t", props, keys=["a", "b"]),
        record("t", a="x", b=1, v=1),
        record("t", a="x", b=2, v=2),
        record("t", a="x", b=1, v=3),
    ]
    assert run(tmp_path, messages).exit_code == 0
    assert run(tmp_path, [messages[0], record("t", a="x", b=2, v=4)]).exit_code == 0
    assert query(tmp_path, "SELECT a, b, v FROM t ORDER BY b") == [("x", 1, 3), ("x", 2, 4)]


# Every kind of key, as (its schema, some values).
KEY_KINDS = pytest.mark.parametrize(
    ("key_schema", "values"),
    [
        # Keys read back from a keys file of their own (strings, integers, booleans, raw).
        ({"type": "string"}, ["ch_1", "ch_'2", 'ch_"3\u00e9']),
        ({"type": "integer"}, [1, -2, 2**62]),
        ({"type": "boolean"}, [True, False]),
        ({"type": ["string", "object"]}, ["cus_1", {"id": "cus_2"}, "cus_3"]),  # raw
        # Keys whose text may not read back as sent: the batch file is read again.
        (
            {"type": "string", "format": "date-time"},
            ["2024-01-01T00:00:00Z", "2024-01-02T00:00:00.1234567Z"],
        ),
        ({"type": "number"}, [1.5, 1e300, 2]),
        ({"type": "integer"}, [1, 2**70, 3]),  # HUGEINT
        ({"type": ["string", "integer"]}, ["a", 5]),  # an integer in a VARCHAR column
    ],
)


@KEY_KINDS
def test_upserts_replace_rows_of_every_kind_of_key(tmp_path, key_schema, values) -> None:
    props = {"id": key_schema, "v": {"type": "integer"}}
    first = [schema_message("t", props), *(record("t", id=k, v=1) for k in values)]
    assert run(tmp_path, first).exit_code == 0
    again = [schema_message("t", props)] + [record("t", id=k, v=n) for n in (2, 3) for k in values]
    result = run(tmp_path, again, batch_size_rows=2)
    assert result.exit_code == 0, result.stderr
    assert query(tmp_path, "SELECT count(*), count(DISTINCT id), min(v) FROM t") == [
        (len(values), len(values), 3)
    ]


@KEY_KINDS
def test_a_first_load_replaces_the_rows_its_earlier_batches_loaded(tmp_path, key_schema, values):
    # The table is new: the upserts delete only the rows of keys an earlier batch loaded.
    props = {"id": key_schema, "v": {"type": "integer"}}
    messages = [schema_message("t", props)]
    messages += [record("t", id=k, v=n) for n in (1, 2, 3) for k in values]
    result = run(tmp_path, messages, batch_size_rows=2)
    assert result.exit_code == 0, result.stderr
    assert query(tmp_path, "SELECT count(*), count(DISTINCT id), min(v) FROM t") == [
        (len(values), len(values), 3)
    ]


def test_a_first_load_replaces_a_key_sent_once_as_text_and_once_as_a_number(tmp_path) -> None:
    props = {"id": {"type": ["string", "integer"]}, "v": {"type": "integer"}}
    for first, then in (("1", 1), (1, "1")):
        messages = [schema_message("t", props), record("t", id=first, v=1)]
        messages += [record("t", id=then, v=2), record("t", id="2", v=3)]
        result = run(tmp_path, messages, batch_size_rows=1)
        assert result.exit_code == 0, result.stderr
        assert query(tmp_path, "SELECT id, v FROM t ORDER BY id") == [("1", 2), ("2", 3)]
        (tmp_path / "out.duckdb").unlink()


def test_a_first_load_deletes_only_what_earlier_batches_of_the_run_loaded(
    tmp_path, monkeypatch
) -> None:
    deletes: list[tuple[str, list | None]] = []
    execute = Database.execute

    def spy(self, sql, parameters=None):
        if sql.startswith('DELETE FROM "main"."t"'):
            deletes.append((sql, parameters))
        return execute(self, sql, parameters)

    monkeypatch.setattr(Database, "execute", spy)
    head = schema_message("t", PROPS)
    new_keys = [head, *(record("t", id=i, v="a") for i in range(6))]
    assert run(tmp_path, new_keys, batch_size_rows=2).exit_code == 0
    assert deletes == []  # three batches of new keys into a table the run created

    resent = [head, *(record("t", id=i, v="b") for i in (6, 7, 8, 1))]
    assert run(tmp_path, resent, batch_size_rows=2).exit_code == 0
    assert len(deletes) == 2  # a table of an earlier run: every batch deletes its keys
    assert query(tmp_path, "SELECT count(*) FROM t WHERE v = 'b'") == [(4,)]

    deletes.clear()
    (tmp_path / "out.duckdb").unlink()
    again = [head, *(record("t", id=i, v="c") for i in (1, 2, 3, 4, 2, 5))]
    assert run(tmp_path, again, batch_size_rows=2).exit_code == 0
    assert len(deletes) == 1  # only the third batch re-sends a key (2)
    assert query(tmp_path, "SELECT id FROM t ORDER BY id") == [(1,), (2,), (3,), (4,), (5,)]


@pytest.mark.parametrize(
    "values",
    [[("x", 1), ("x'", 2**62)], [("x", 1), ({"raw": 1}, 2)], [("x", 1.5), ("y", 2.5)]],
)
def test_upserts_replace_rows_of_composite_keys(tmp_path, values) -> None:
    props = {
        "a": {"type": ["string", "object"]},
        "b": {"type": "number" if isinstance(values[0][1], float) else "integer"},
        "v": {"type": "integer"},
    }
    head = schema_message("t", props, keys=["a", "b"])
    first = [head, *(record("t", a=a, b=b, v=1) for a, b in values)]
    assert run(tmp_path, first).exit_code == 0
    again = [head] + [record("t", a=a, b=b, v=n) for n in (2, 3) for a, b in values]
    assert run(tmp_path, again, batch_size_rows=3).exit_code == 0
    assert query(tmp_path, "SELECT count(*), min(v) FROM t") == [(len(values), 3)]


def test_append_only_and_streams_without_keys_keep_every_record(tmp_path) -> None:
    messages = [
        schema_message("t", PROPS),
        schema_message("nokey", PROPS, keys=[]),
        record("t", id=1, v="a"),
        record("t", id=1, v="b"),
        record("nokey", id=1, v="a"),
        record("nokey", id=1, v="b"),
    ]
    assert run(tmp_path, messages, load_method="append-only").exit_code == 0
    assert query(tmp_path, "SELECT count(*) FROM t") == [(2,)]
    assert run(tmp_path, messages).exit_code == 0
    assert query(tmp_path, "SELECT count(*) FROM nokey") == [(4,)]
    assert query(tmp_path, "SELECT count(*) FROM t") == [(1,)]


def test_overwrite_replaces_the_table_once_per_run(tmp_path) -> None:
    first = [schema_message("t", PROPS)] + [record("t", id=i, v="old") for i in range(5)]
    assert run(tmp_path, first).exit_code == 0
    second = [schema_message("t", PROPS), record("t", id=10, v="new"), record("t", id=11, v="new")]
    assert run(tmp_path, second, load_method="overwrite", batch_size_rows=1).exit_code == 0
    assert query(tmp_path, "SELECT id, v FROM t ORDER BY id") == [(10, "new"), (11, "new")]


def _versioned(version: int, ids: list[int]) -> list[dict]:
    return [{**record("t", id=i, v=f"v{version}"), "version": version} for i in ids] + [
        {"type": "ACTIVATE_VERSION", "stream": "t", "version": version}
    ]


def test_activate_version_soft_deletes_older_versions(tmp_path) -> None:
    messages = [schema_message("t", PROPS), *_versioned(1, [1, 2, 3]), *_versioned(2, [2, 3])]
    result = run(tmp_path, messages)
    assert result.exit_code == 0, result.stderr
    rows = query(
        tmp_path,
        "SELECT id, v, _sdc_table_version, _sdc_deleted_at IS NOT NULL FROM t ORDER BY id",
    )
    assert rows == [(1, "v1", 1, True), (2, "v2", 2, False), (3, "v2", 2, False)]


def test_activate_version_hard_deletes_older_versions(tmp_path) -> None:
    messages = [schema_message("t", PROPS), *_versioned(1, [1, 2, 3]), *_versioned(2, [2, 3])]
    result = run(tmp_path, messages, hard_delete=True)
    assert result.exit_code == 0, result.stderr
    assert query(tmp_path, "SELECT id, v FROM t ORDER BY id") == [(2, "v2"), (3, "v2")]


def test_deletion_marker_makes_a_tombstone_or_removes_the_row(tmp_path) -> None:
    props = {**PROPS, "_sdc_deleted_at": {"type": ["string", "null"], "format": "date-time"}}
    messages = [
        schema_message("t", props),
        record("t", id=1, v="alive"),
        record("t", id=2, v="doomed"),
    ]
    assert run(tmp_path, messages).exit_code == 0
    tombstone = [
        schema_message("t", props),
        record("t", id=2, _sdc_deleted_at="2024-05-01T00:00:00Z"),
    ]
    assert run(tmp_path, tombstone).exit_code == 0
    rows = query(tmp_path, "SELECT id, v, CAST(_sdc_deleted_at AS VARCHAR) FROM t ORDER BY id")
    assert rows == [(1, "alive", None), (2, None, "2024-05-01 00:00:00+00")]
    assert run(tmp_path, tombstone, hard_delete=True).exit_code == 0
    assert query(tmp_path, "SELECT id FROM t") == [(1,)]


def test_deletion_marker_outside_the_schema_is_a_timestamp_column(tmp_path) -> None:
    messages = [
        schema_message("t", PROPS),
        record("t", id=1, v="x"),
        record("t", id=1, _sdc_deleted_at="2024-05-01T00:00:00Z"),
    ]
    assert run(tmp_path, messages).exit_code == 0
    assert column_types(tmp_path, "t")["_sdc_deleted_at"] == "TIMESTAMP WITH TIME ZONE"


def test_record_metadata_columns(tmp_path) -> None:
    messages = [
        schema_message("t", PROPS),
        {**record("t", id=1, v="a"), "time_extracted": "2024-01-01T00:00:00+00:00"},
    ]
    assert run(tmp_path, messages, add_record_metadata=True).exit_code == 0
    columns = column_types(tmp_path, "t")
    assert columns["_sdc_extracted_at"] == "TIMESTAMP WITH TIME ZONE"
    assert columns["_sdc_received_at"] == "TIMESTAMP WITH TIME ZONE"
    assert columns["_sdc_sequence"] == "BIGINT"
    rows = query(
        tmp_path,
        "SELECT CAST(_sdc_extracted_at AS VARCHAR), _sdc_received_at IS NOT NULL FROM t",
    )
    assert rows == [("2024-01-01 00:00:00+00", True)]


def test_target_schema_and_stream_prefix(tmp_path) -> None:
    messages = [
        schema_message("t", PROPS),
        schema_message("sales-orders", PROPS),
        record("t", id=1),
        record("sales-orders", id=2),
        state({"s": 1}),
    ]
    assert run(tmp_path, messages).exit_code == 0
    assert query(tmp_path, "SELECT id FROM main.t") == [(1,)]
    assert query(tmp_path, "SELECT id FROM sales.orders") == [(2,)]
    assert run(tmp_path, messages, default_target_schema="stripe").exit_code == 0
    assert query(tmp_path, "SELECT id FROM stripe.orders") == [(2,)]
    assert query(tmp_path, "SELECT count(*) FROM stripe._singer_state") == [(1,)]


def test_stream_maps_alias_and_transform(tmp_path) -> None:
    messages = [schema_message("t", PROPS), record("t", id=1, v="a"), record("t", id=2, v="b")]
    maps = {
        "t": {"__alias__": "renamed", "v": "v.upper()", "__filter__": "id > 1"},
    }
    result = run(tmp_path, messages, stream_maps=maps)
    assert result.exit_code == 0, result.stderr
    assert query(tmp_path, "SELECT id, v FROM renamed") == [(2, "B")]


def test_full_validation_checks_nested_properties(tmp_path, caplog) -> None:
    props = {
        "id": {"type": "integer"},
        "o": {"type": "object", "properties": {"n": {"type": "integer"}}},
    }
    messages = [
        schema_message("t", props),
        record("t", id=1, o={"n": 1}),
        record("t", id=2, o={"n": "x"}),
    ]
    failed = run(tmp_path, messages, validate_records=True)
    assert failed.exit_code == 1
    assert failed.stderr.strip().splitlines()[-1] == (
        "target-duckdb: error: input line 3: record for stream 't' fails validation: "
        "record.o.n must be integer"
    )
    assert query(tmp_path, "SELECT id FROM t") == [(1,)]
    logged = run(tmp_path, messages, validate_records=True, on_invalid_record="log")
    assert logged.exit_code == 0
    assert "input line 3: record for stream 't' fails validation" in caplog.text
    assert query(tmp_path, "SELECT id, o ->> '$.n' FROM t ORDER BY id") == [(1, "1"), (2, "x")]
    # Without full validation nested values are not checked (top-level types always are).
    assert run(tmp_path, messages).exit_code == 0


def test_checks_never_fill_in_a_schema_s_defaults(tmp_path) -> None:
    # A compiled JSON Schema check fills in `default` values unless told not to: neither the
    # meta-schema check of a SCHEMA nor the full validation of records may change them.
    props = {
        "id": {"type": "integer"},
        "v": {"type": ["string", "null"], "default": "filled"},
        "o": {"type": "object", "properties": {"n": {"type": "string", "default": "filled"}}},
    }
    sent = schema_message("t", props)
    pristine = copy.deepcopy(sent["schema"])
    check_schema("t", sent["schema"])
    assert sent["schema"] == pristine
    messages = [sent, record("t", id=1, o={})]
    assert run(tmp_path, messages, validate_records=True).exit_code == 0
    assert query(tmp_path, "SELECT id, v, o FROM t") == [(1, None, "{}")]
    # A mapped record is loaded from the dict the validation saw, not from its text.
    mapped = run(tmp_path, messages, validate_records=True, stream_maps={"t": {"w": "str(id)"}})
    assert mapped.exit_code == 0, mapped.stderr
    assert query(tmp_path, "SELECT id, v, o, w FROM t") == [(1, None, "{}", "1")]


def test_table_names_match_case_insensitively_across_runs(tmp_path) -> None:
    assert (
        run(tmp_path, [schema_message("Orders", PROPS), record("Orders", id=1, v="a")]).exit_code
        == 0
    )
    second = run(
        tmp_path,
        [
            schema_message("orders", {"ID": {"type": "integer"}, "v": PROPS["v"]}, keys=["ID"]),
            record("orders", ID=1, v="b"),
        ],
    )
    assert second.exit_code == 0, second.stderr
    assert query(tmp_path, "SELECT id, v FROM orders") == [(1, "b")]


def test_columns_are_those_of_the_named_schemas_table_whatever_its_case(tmp_path) -> None:
    """Every connection has a catalog `memory`: with only `memory.main.orders`, the name
    `"memory"."orders"` means that table. The target's lookup of `orders` in a schema
    `memory` of its own file (qualified with the catalog) finds none, even inside a
    transaction, which stays usable; and it finds `main.ORDERS` in any case."""
    database = Database(str(tmp_path / "out.duckdb"), "main")
    try:
        database.execute("CREATE TABLE memory.main.orders (other INTEGER)")
        database.execute("CREATE TABLE main.orders (id INTEGER)")
        assert database.execute('DESCRIBE "memory"."orders"').fetchall()[0][0] == "other"
        with database.transaction():
            assert database.columns("memory", "orders") == {}
            assert database.columns("main", "missing") == {}
            database.execute("INSERT INTO main.orders VALUES (1)")
        assert list(database.columns("MAIN", "ORDERS")) == ["id"]
        assert database.execute("SELECT id FROM main.orders").fetchall() == [(1,)]
    finally:
        database.close()


def test_the_gil_changes_hands_quickly_while_the_loader_thread_runs(tmp_path) -> None:
    before = sys.getswitchinterval()
    database = Database(str(tmp_path / "out.duckdb"), "main")
    try:
        assert sys.getswitchinterval() == pytest.approx(min(before, SWITCH_INTERVAL))
    finally:
        database.close()
    assert sys.getswitchinterval() == before


def test_standard_input_is_read_whole_across_its_buffer(tmp_path) -> None:
    """Lines that straddle the reads of standard input, and one longer than a read."""
    long_text = "x" * (2 * STDIN_BUFFER + 1)
    messages = [schema_message("t", PROPS)]
    messages += [record("t", id=i, v=f"{i}-" + "y" * (i % 997)) for i in range(5_000)]
    messages += [record("t", id=5_000, v=long_text), state({"n": 5_000})]
    result = run_process(tmp_path, messages)
    assert result.exit_code == 0, result.stderr
    assert result.states == [{"n": 5_000}]
    rows = query(tmp_path, "SELECT count(*), sum(length(v)), max(length(v)) FROM t")
    expected = sum(len(f"{i}-") + i % 997 for i in range(5_000)) + len(long_text)
    assert rows == [(5_001, expected, len(long_text))]
