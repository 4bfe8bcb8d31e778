"""Compare a loaded table with the simulator's truth: ids, count and a column checksum."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson

# Scalar columns the checksum covers, plus ``metadata`` (a JSON object, compared parsed).
CHECKSUM_COLUMNS = (
    "id",
    "created",
    "amount",
    "amount_refunded",
    "currency",
    "status",
    "paid",
    "captured",
    "customer",
    "description",
    "balance_transaction",
    "metadata",
)


@dataclass(frozen=True)
class Comparison:
    """How a table compares with the truth; ``equal`` when ids, count and checksum match."""

    truth_count: int
    table_count: int
    missing_ids: int
    extra_ids: int
    truth_checksum: str
    table_checksum: str

    @property
    def equal(self) -> bool:
        return (
            self.truth_count == self.table_count
            and not self.missing_ids
            and not self.extra_ids
            and self.truth_checksum == self.table_checksum
        )

    def describe(self) -> str:
        verdict = "equal" if self.equal else "DIFFERENT"
        return (
            f"{verdict}: {self.table_count:,} rows vs {self.truth_count:,} in the simulator, "
            f"{self.missing_ids} missing, {self.extra_ids} extra ids, checksum "
            f"{self.table_checksum[:12]} vs {self.truth_checksum[:12]}"
        )


def _canonical(column: str, value: Any) -> Any:
    if column == "metadata" and isinstance(value, str):
        value = orjson.loads(value)
    if isinstance(value, dict):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return value


def checksum(rows: Iterable[Sequence[Any]], columns: Sequence[str]) -> str:
    """SHA-256 over the rows as JSON lines, sorted (so row order does not matter)."""
    digest = hashlib.sha256()
    lines = sorted(
        orjson.dumps([_canonical(c, v) for c, v in zip(columns, row, strict=True)]) for row in rows
    )
    for line in lines:
        digest.update(line)
        digest.update(b"\n")
    return digest.hexdigest()


def compare(truth: list[dict[str, Any]], db_path: Path, table: str) -> Comparison:
    """Compare ``truth`` (the simulator's objects) with ``table`` in the DuckDB file."""
    truth_rows = [tuple(obj.get(c) for c in CHECKSUM_COLUMNS) for obj in truth]
    connection = duckdb.connect(str(db_path), read_only=True)
    try:
        selected = ", ".join(f'"{c}"' for c in CHECKSUM_COLUMNS)
        table_rows = connection.execute(f"SELECT {selected} FROM {table}").fetchall()
    finally:
        connection.close()
    truth_ids = {row[0] for row in truth_rows}
    table_ids = {row[0] for row in table_rows}
    return Comparison(
        truth_count=len(truth_rows),
        table_count=len(table_rows),
        missing_ids=len(truth_ids - table_ids),
        extra_ids=len(table_ids - truth_ids),
        truth_checksum=checksum(truth_rows, CHECKSUM_COLUMNS),
        table_checksum=checksum(table_rows, CHECKSUM_COLUMNS),
    )


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
