"""What the target left in a DuckDB file."""

from __future__ import annotations

from pathlib import Path

import duckdb


def table_counts(db_path: Path, schema: str) -> dict[str, int]:
    """Rows per table of ``schema`` (the target's own state table left out)."""
    connection = duckdb.connect(str(db_path), read_only=True)
    try:
        names = connection.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
            "AND NOT starts_with(table_name, '_')",
            [schema],
        ).fetchall()
        return {
            name: connection.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0]
            for (name,) in names
        }
    finally:
        connection.close()
