"""How stream and property names become DuckDB names, and which names are refused.

Every name is quoted in SQL, so a name DuckDB can hold loads under its own spelling:
keywords (`select`), spaces, quotes, dots, non-ASCII, names of hundreds of characters.
A stream `<schema>-<table>` loads into `<schema>.<table>` (the part before the last '-'
and the part after it); without a '-' the schema is `main`. `default_target_schema`
replaces the schema and keeps the table part, so `a-orders` and `b-orders` would share one
table: that is refused, as is any pair of streams whose tables differ only in case.

DuckDB compares names case-insensitively, so `A` and `a` cannot be two columns: two
properties of one stream (in its SCHEMA or its records, for the whole run) that differ only
in case are refused, naming both. A property meeting a column left by an earlier run whose
name differs only in case loads into that column. Empty names are refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from target_duckdb.errors import BadSchemaError

# A column or table being rebuilt (a column type a DuckLake cannot change in place, a state
# table losing its key) is its name with this suffix until it replaces the old one, in the
# same transaction.
REBUILT_SUFFIX = "__target_duckdb_new"

# msgspec refuses these characters in the field names of the fast path's Struct: streams
# with such a property load through the dict path instead.
_STRUCT_UNSAFE = frozenset('\\"') | frozenset(chr(code) for code in range(0x20))


def table_for(stream: str, default_schema: str | None) -> tuple[str, str]:
    """(schema, table) of a stream: `<schema>-<table>` names carry their own schema."""
    parts = stream.split("-")
    schema = default_schema or (parts[-2] if len(parts) > 1 else "main")
    return schema, parts[-1]


class Tables:
    """The run's streams' tables: each stream's own, and none of them the state table."""

    def __init__(self, default_schema: str | None, state_table: tuple[str, str]) -> None:
        """`state_table` is the (schema, table) of the state table."""
        self._default_schema = default_schema
        self._state_table = (state_table[0].lower(), state_table[1].lower())
        self._streams: dict[tuple[str, str], str] = {}  # lower-cased (schema, table) → stream

    def claim(self, stream: str) -> tuple[str, str]:
        """The stream's (schema, table), refused when empty or another stream's already."""
        schema_name, table = table_for(stream, self._default_schema)
        if not schema_name or not table:
            raise BadSchemaError(f"stream '{stream}' gives an empty schema or table name")
        key = (schema_name.lower(), table.lower())
        if key == self._state_table:
            raise BadSchemaError(f"stream '{stream}' would load into the state table")
        other = self._streams.setdefault(key, stream)
        if other != stream:
            raise BadSchemaError(
                f"streams '{other}' and '{stream}' would both load into table {schema_name}.{table}"
            )
        return schema_name, table


def case_collision(names: Iterable[str]) -> tuple[str, str] | None:
    """Two of `names` that DuckDB would take for one (they differ only in case), if any."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(name.lower(), name)
        if other != name:
            return other, name
    return None


def struct_safe(name: str) -> bool:
    """Whether msgspec accepts `name` as a renamed Struct field."""
    return not _STRUCT_UNSAFE.intersection(name)
