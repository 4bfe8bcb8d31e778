"""Type mapping and widening: the pure rules, then through real loads into DuckDB."""

from __future__ import annotations

import pytest
from target_duckdb import types

from tests.target.helpers import column_types, query, record, run, schema_message, state


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "VARCHAR"),
        ({"type": ["string", "null"]}, "VARCHAR"),
        ({"type": "string", "format": "date-time"}, "TIMESTAMPTZ"),
        ({"type": ["null", "string"], "format": "date-time"}, "TIMESTAMPTZ"),
        ({"type": "string", "format": "date"}, "DATE"),
        ({"type": "integer"}, "BIGINT"),
        ({"type": ["integer", "null"]}, "BIGINT"),
        ({"type": "number"}, "DOUBLE"),
        ({"type": ["integer", "number"]}, "DOUBLE"),
        ({"type": "boolean"}, "BOOLEAN"),
        ({"type": "object", "properties": {"a": {"type": "integer"}}}, "JSON"),
        ({"type": ["object", "null"]}, "JSON"),
        ({"type": "array", "items": {"type": "string"}}, "JSON"),
        ({"type": ["string", "object", "null"]}, "VARCHAR"),
        ({"anyOf": [{"type": "string"}, {"type": "object"}]}, "VARCHAR"),
        ({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}, "TIMESTAMPTZ"),
        ({"type": ["string", "integer"]}, "VARCHAR"),
        ({"type": ["string", "number", "null"]}, "VARCHAR"),
        ({"type": ["boolean", "string"]}, "VARCHAR"),
        ({"type": ["boolean", "integer"]}, "VARCHAR"),
        ({"type": ["integer", "object"]}, "JSON"),
        ({"type": ["string", "array"]}, "JSON"),
        ({}, "JSON"),
        ({"type": "null"}, "JSON"),
    ],
)
def test_column_type(schema: dict, expected: str) -> None:
    assert types.column_type(schema) == expected


@pytest.mark.parametrize(
    ("current", "new", "expected"),
    [
        ("BIGINT", "BIGINT", "BIGINT"),
        ("BIGINT", "DOUBLE", "DOUBLE"),
        ("DOUBLE", "BIGINT", "DOUBLE"),
        ("BIGINT", "HUGEINT", "HUGEINT"),
        ("HUGEINT", "DOUBLE", "DOUBLE"),
        ("DATE", "TIMESTAMPTZ", "TIMESTAMPTZ"),
        ("TIMESTAMPTZ", "VARCHAR", "VARCHAR"),
        ("VARCHAR", "JSON", "VARCHAR"),
        ("JSON", "VARCHAR", "VARCHAR"),
        ("TIMESTAMPTZ", "JSON", "VARCHAR"),
        ("BIGINT", "VARCHAR", "VARCHAR"),
        ("VARCHAR", "DOUBLE", "VARCHAR"),
        ("BOOLEAN", "BIGINT", "VARCHAR"),
        ("DATE", "BIGINT", "VARCHAR"),
        ("BIGINT", "JSON", "JSON"),
        ("JSON", "BIGINT", "JSON"),
        ("VARCHAR", None, "VARCHAR"),
    ],
)
def test_widen(current: str, new: str | None, expected: str) -> None:
    assert types.widen(current, new) == expected


ALL_TYPES = {
    "id": {"type": "string"},
    "s": {"type": ["string", "null"]},
    "ts": {"type": ["string", "null"], "format": "date-time"},
    "d": {"type": ["string", "null"], "format": "date"},
    "i": {"type": ["integer", "null"]},
    "n": {"type": ["number", "null"]},
    "b": {"type": ["boolean", "null"]},
    "o": {"type": ["object", "null"], "properties": {"x": {"type": "integer"}}},
    "a": {"type": ["array", "null"], "items": {"type": "integer"}},
    "e": {"type": ["string", "object", "null"]},
    "u": {"type": ["integer", "number", "null"]},
    "any": {},
}


def test_every_mapping_lands_in_its_column_type(tmp_path) -> None:
    result = run(
        tmp_path,
        [
            schema_message("t", ALL_TYPES),
            record(
                "t",
                id="full",
                s='{"looks": "like json"}',
                ts="2024-01-02T03:04:05+02:00",
                d="2024-02-29",
                i=-(2**63),
                n=1.5,
                b=True,
                o={"x": 2**70, "nested": {"deep": [1, None, "ü"]}},
                a=[1, 2, 3],
                e={"id": "cus_1", "object": "customer"},
                u=7,
                any=["anything", 1],
            ),
            record("t", id="nulls", **{name: None for name in ALL_TYPES if name != "id"}),
            record("t", id="sparse"),
            record(
                "t", id="unicode ✓", s="héllo \u0000 wörld 🎉", e="cus_2", ts="2024-01-02 03:04:05"
            ),
            state({"done": True}),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert column_types(tmp_path, "t") == {
        "id": "VARCHAR",
        "s": "VARCHAR",
        "ts": "TIMESTAMP WITH TIME ZONE",
        "d": "DATE",
        "i": "BIGINT",
        "n": "DOUBLE",
        "b": "BOOLEAN",
        "o": "JSON",
        "a": "JSON",
        "e": "VARCHAR",
        "u": "DOUBLE",
        "any": "JSON",
    }
    rows = {
        row[0]: row[1:]
        for row in query(
            tmp_path,
            "SELECT id, s, CAST(ts AS VARCHAR), CAST(d AS VARCHAR), i, n, b, "
            'CAST(o AS VARCHAR), CAST(a AS VARCHAR), e, u, CAST("any" AS VARCHAR) FROM t',
        )
    }
    assert rows["full"] == (
        '{"looks": "like json"}',
        "2024-01-02 01:04:05+00",
        "2024-02-29",
        -(2**63),
        1.5,
        True,
        '{"x":1180591620717411303424,"nested":{"deep":[1,null,"ü"]}}',
        "[1,2,3]",
        '{"id":"cus_1","object":"customer"}',
        7.0,
        '["anything",1]',
    )
    assert rows["nulls"] == (None,) * 11
    assert rows["sparse"] == (None,) * 11
    assert rows["unicode ✓"][0] == "héllo \u0000 wörld 🎉"
    assert rows["unicode ✓"][1] == "2024-01-02 03:04:05+00"
    assert rows["unicode ✓"][8] == "cus_2"


def test_expandable_field_joins_without_casts(tmp_path) -> None:
    expandable = {"type": ["string", "object", "null"]}
    result = run(
        tmp_path,
        [
            schema_message("customer", {"id": {"type": "string"}, "email": {"type": "string"}}),
            schema_message("charge", {"id": {"type": "string"}, "customer": expandable}),
            record("customer", id="cus_1", email="a@example.com"),
            record("customer", id="cus_2", email="b@example.com"),
            record("charge", id="ch_1", customer="cus_1"),
            record("charge", id="ch_2", customer={"id": "cus_2", "object": "customer"}),
            record("charge", id="ch_3", customer=None),
        ],
    )
    assert result.exit_code == 0, result.stderr
    joined = query(
        tmp_path,
        "SELECT charge.id, customer.email FROM charge "
        "JOIN customer ON charge.customer = customer.id ORDER BY 1",
    )
    assert joined == [("ch_1", "a@example.com")]
    expanded = query(tmp_path, "SELECT customer ->> '$.id' FROM charge WHERE id = 'ch_2'")
    assert expanded == [("cus_2",)]


def test_integers_beyond_bigint_widen_without_loss(tmp_path) -> None:
    result = run(
        tmp_path,
        [
            schema_message("t", {"id": {"type": "integer"}, "v": {"type": ["integer", "null"]}}),
            record("t", id=1, v=2**63 - 1),
            record("t", id=2, v=2**64 + 1),
            record("t", id=3, v=-(2**100)),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert column_types(tmp_path, "t")["v"] == "HUGEINT"
    assert query(tmp_path, "SELECT v FROM t ORDER BY id") == [
        (2**63 - 1,),
        (2**64 + 1,),
        (-(2**100),),
    ]

    result = run(
        tmp_path, [schema_message("t", {"id": {"type": "integer"}}), record("t", id=4, v=2**130)]
    )
    assert result.exit_code == 0, result.stderr
    assert column_types(tmp_path, "t")["v"] == "JSON"
    values = query(tmp_path, "SELECT CAST(v AS VARCHAR) FROM t ORDER BY id")
    assert [row[0] for row in values] == [
        str(2**63 - 1),
        str(2**64 + 1),
        str(-(2**100)),
        str(2**130),
    ]


def test_schema_change_mid_stream_adds_and_widens(tmp_path) -> None:
    result = run(
        tmp_path,
        [
            schema_message("t", {"id": {"type": "integer"}, "v": {"type": "integer"}}),
            record("t", id=1, v=1),
            schema_message(
                "t",
                {"id": {"type": "integer"}, "v": {"type": "number"}, "w": {"type": "boolean"}},
            ),
            record("t", id=2, v=2.5, w=True),
        ],
        batch_size_rows=100,
    )
    assert result.exit_code == 0, result.stderr
    assert column_types(tmp_path, "t") == {"id": "BIGINT", "v": "DOUBLE", "w": "BOOLEAN"}
    assert query(tmp_path, "SELECT id, v, w FROM t ORDER BY id") == [(1, 1.0, None), (2, 2.5, True)]


def test_later_run_widens_and_never_drops_columns(tmp_path) -> None:
    first = run(
        tmp_path,
        [
            schema_message(
                "t",
                {
                    "id": {"type": "integer"},
                    "v": {"type": "integer"},
                    "o": {"type": "object"},
                    "gone": {"type": "string"},
                },
            ),
            record("t", id=1, v=10, o={"k": "v"}, gone="kept"),
        ],
    )
    assert first.exit_code == 0, first.stderr
    second = run(
        tmp_path,
        [
            schema_message(
                "t",
                {
                    "id": {"type": "integer"},
                    "v": {"type": "string"},
                    "o": {"type": ["string", "object"]},
                },
            ),
            record("t", id=2, v="text", o="plain"),
        ],
    )
    assert second.exit_code == 0, second.stderr
    assert column_types(tmp_path, "t") == {
        "id": "BIGINT",
        "v": "VARCHAR",
        "o": "VARCHAR",
        "gone": "VARCHAR",
    }
    assert query(tmp_path, "SELECT id, v, o, gone FROM t ORDER BY id") == [
        (1, "10", '{"k":"v"}', "kept"),
        (2, "text", "plain", None),
    ]


def test_property_missing_from_schema_becomes_a_column(tmp_path) -> None:
    result = run(
        tmp_path,
        [
            schema_message("t", {"id": {"type": "integer"}}),
            record("t", id=1, surprise="value", nested={"a": 1}, count=3, nothing=None),
            record("t", id=2, surprise="again"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert column_types(tmp_path, "t") == {
        "id": "BIGINT",
        "surprise": "VARCHAR",
        "nested": "JSON",
        "count": "BIGINT",
        "nothing": "JSON",
    }
    assert query(
        tmp_path, "SELECT id, surprise, CAST(nested AS VARCHAR), count FROM t ORDER BY id"
    ) == [
        (1, "value", '{"a":1}', 3),
        (2, "again", None, None),
    ]


def test_invalid_value_in_log_mode_widens_instead_of_losing_it(tmp_path, caplog) -> None:
    result = run(
        tmp_path,
        [
            schema_message("t", {"id": {"type": "integer"}, "v": {"type": ["integer", "null"]}}),
            record("t", id=1, v=5),
            record("t", id=2, v="five"),
        ],
        on_invalid_record="log",
    )
    assert result.exit_code == 0, result.stderr
    assert "input line 3: record for stream 't' fails validation: property 'v' is string" in (
        caplog.text
    )
    assert column_types(tmp_path, "t")["v"] == "VARCHAR"
    assert query(tmp_path, "SELECT v FROM t ORDER BY id") == [("5",), ("five",)]
