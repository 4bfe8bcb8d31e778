"""The one place that maps JSON Schema and JSON values to DuckDB column types.

Mapping: string → VARCHAR (format date-time → TIMESTAMPTZ, date → DATE), integer → BIGINT,
number → DOUBLE, boolean → BOOLEAN, object/array → JSON. A union becomes the narrowest type
holding every member: integer|number → DOUBLE; a union of scalars (string, integer, number,
boolean) → VARCHAR, each value kept as its text (`100` as '100', `true` as 'true'), so
`where code = 'c3'` works whatever else the column holds; string|object (Stripe's
expandable fields) → VARCHAR holding the id string raw or the object as JSON text; JSON only
when objects or arrays join other scalars (or for an untyped schema).

Widening (a column meeting a type it cannot hold) follows the same lattice, so a value is
never lost and keeps its text: BIGINT → HUGEINT → DOUBLE, DATE → TIMESTAMPTZ, any two
scalar families (numbers, booleans, strings and temporals) → VARCHAR, JSON + a string or
temporal → VARCHAR (JSON strings become their raw text), JSON + numbers or booleans → JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

BIGINT = "BIGINT"
HUGEINT = "HUGEINT"
DOUBLE = "DOUBLE"
BOOLEAN = "BOOLEAN"
VARCHAR = "VARCHAR"
TIMESTAMPTZ = "TIMESTAMPTZ"
DATE = "DATE"
JSON = "JSON"

JSON_KINDS = frozenset({"string", "integer", "number", "boolean", "object", "array", "null"})

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT128_MIN, INT128_MAX = -(2**127), 2**127 - 1

# Names DuckDB reports for the types above, as found in duckdb_columns().
_DUCKDB_NAMES = {
    "TIMESTAMP WITH TIME ZONE": TIMESTAMPTZ,
    "INTEGER": BIGINT,
    "SMALLINT": BIGINT,
    "TINYINT": BIGINT,
    "FLOAT": DOUBLE,
}

_NUMERIC_ORDER = (BIGINT, HUGEINT, DOUBLE)
_TEMPORAL_ORDER = (DATE, TIMESTAMPTZ)
_SCALAR_KINDS = frozenset({"string", "integer", "number", "boolean"})
_TEXTUAL = frozenset({VARCHAR, DATE, TIMESTAMPTZ})
_SCALAR_TYPES = frozenset({BIGINT, HUGEINT, DOUBLE, BOOLEAN}) | _TEXTUAL


def schema_kinds(schema: dict | bool) -> frozenset[str]:
    """JSON types a property schema allows (all of them for an untyped schema or `true`)."""
    if isinstance(schema, bool):
        return JSON_KINDS if schema else frozenset()
    members = schema.get("anyOf") or schema.get("oneOf")
    if members:
        kinds: set[str] = set()
        for member in members:
            kinds |= schema_kinds(member)
        return frozenset(kinds)
    declared = schema.get("type")
    if declared is None:
        return JSON_KINDS
    if isinstance(declared, str):
        return frozenset({declared})
    return frozenset(declared)


def schema_format(schema: dict | bool) -> str | None:
    """The string `format` of a property schema, looking inside anyOf/oneOf members."""
    if isinstance(schema, bool):
        return None
    if "format" in schema:
        return schema["format"]
    for member in schema.get("anyOf") or schema.get("oneOf") or ():
        if isinstance(member, dict) and "format" in member:
            return member["format"]
    return None


def column_type(schema: dict | bool) -> str:
    """DuckDB column type for a property's JSON Schema."""
    kinds = schema_kinds(schema) - {"null"}
    if kinds == {"string"}:
        fmt = schema_format(schema)
        if fmt == "date-time":
            return TIMESTAMPTZ
        if fmt == "date":
            return DATE
        return VARCHAR
    if kinds == {"integer"}:
        return BIGINT
    if kinds and kinds <= {"integer", "number"}:
        return DOUBLE
    if kinds == {"boolean"}:
        return BOOLEAN
    if kinds == {"string", "object"} or (kinds and kinds <= _SCALAR_KINDS):
        return VARCHAR
    return JSON


def value_type(value: Any) -> str | None:
    """Narrowest column type holding `value`; None for null, which says nothing."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        if INT64_MIN <= value <= INT64_MAX:
            return BIGINT
        if INT128_MIN <= value <= INT128_MAX:
            return HUGEINT
        return JSON
    if isinstance(value, float):
        return DOUBLE
    if isinstance(value, str):
        return VARCHAR
    return JSON


def fits(column: str, value: Any) -> bool:
    """Whether a column of this type can load `value` without losing it."""
    if value is None or column in (JSON, VARCHAR):
        return True
    if column == DOUBLE:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if column in (BIGINT, HUGEINT):
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 1.0 is a JSON Schema integer; DuckDB loads it as 1
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        low, high = (INT64_MIN, INT64_MAX) if column == BIGINT else (INT128_MIN, INT128_MAX)
        return low <= value <= high
    if column == BOOLEAN:
        return isinstance(value, bool)
    if not isinstance(value, str):
        return False
    parse = datetime.fromisoformat if column == TIMESTAMPTZ else date.fromisoformat
    try:
        parse(value)
    except ValueError:
        return False
    return True


def widen(current: str, new: str | None) -> str:
    """Narrowest type holding every value of both types."""
    if new is None or current == new:
        return current
    if current in _NUMERIC_ORDER and new in _NUMERIC_ORDER:
        return max(current, new, key=_NUMERIC_ORDER.index)
    if current in _TEMPORAL_ORDER and new in _TEMPORAL_ORDER:
        return max(current, new, key=_TEMPORAL_ORDER.index)
    if JSON in (current, new):
        other = new if current == JSON else current
        return VARCHAR if other in _TEXTUAL else JSON
    # Two scalar families (a number and a string, say): their text, one column that still
    # compares with strings. Types DuckDB has beyond ours (lists, structs) become JSON.
    return VARCHAR if {current, new} <= _SCALAR_TYPES else JSON


def is_promotion(source: str, dest: str) -> bool:
    """Whether `dest` holds `source`'s values by a plain cast within one family (a number
    to a wider number, a date to a timestamp): the only type changes DuckLake makes in place."""
    return any(source in order and dest in order for order in (_NUMERIC_ORDER, _TEMPORAL_ORDER))


def widen_all(types: Iterable[str | None], start: str) -> str:
    """Fold `widen` over several types."""
    result = start
    for type_ in types:
        result = widen(result, type_)
    return result


def normalize(duckdb_type: str) -> str:
    """Our name for a type as DuckDB reports it (DECIMAL and others pass through)."""
    return _DUCKDB_NAMES.get(duckdb_type, duckdb_type)


def conversion(quoted_column: str, source: str, dest: str) -> str:
    """SQL expression converting a column of type `source` to `dest` without loss."""
    if dest == JSON:
        return f"to_json({quoted_column})"
    if dest == VARCHAR and source == JSON:
        # JSON strings become their raw text; objects, arrays and numbers their JSON text.
        return (
            f"CASE WHEN json_type({quoted_column}) = 'VARCHAR' "
            f"THEN {quoted_column} ->> '$' ELSE CAST({quoted_column} AS VARCHAR) END"
        )
    return f"CAST({quoted_column} AS {dest})"
