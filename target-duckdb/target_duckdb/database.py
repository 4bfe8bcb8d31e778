"""What the target does to its database: DDL, column changes, and the load of a batch
(`Database.load_batch`: its file written, the rows it replaces deleted, its records
inserted from read_json) inside the transaction `commit` opens; the state table is
`Database.states` (`state_table`). The connection, its loader thread and its transactions
are `session`'s.

Where it writes (a file, a DuckLake, MotherDuck) is `connection`'s business; what differs
here for a DuckLake: a column whose type DuckLake cannot change in place is rebuilt, and a
column change another writer made first is read back.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping, Sequence

import duckdb
import msgspec

from target_duckdb import conflicts, types
from target_duckdb.connection import literal, quote
from target_duckdb.errors import StatementError
from target_duckdb.names import REBUILT_SUFFIX
from target_duckdb.session import DEFAULT_MEMORY_LIMIT, Session
from target_duckdb.state_table import StateTable

if t.TYPE_CHECKING:
    from target_duckdb.batch import Batch


class Database(Session):
    """Everything the target does to the database goes through this class."""

    def __init__(
        self,
        path: str,
        state_schema: str,
        *,
        data_path: str | None = None,
        lock_timeout: float = 0,
        read_only: bool = False,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        """Open the file or lake; the state table lives in `state_schema`."""
        super().__init__(
            path,
            data_path=data_path,
            lock_timeout=lock_timeout,
            read_only=read_only,
            memory_limit=memory_limit,
        )
        self._schemas: set[str] = set()
        self._catalog: str | None = None
        self.states = StateTable(self, state_schema)

    # Tables and columns

    def ensure_schema(self, schema: str) -> None:
        """CREATE SCHEMA IF NOT EXISTS, once per run."""
        if schema not in self._schemas:
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
            self._schemas.add(schema)

    def columns(self, schema: str, table: str) -> dict[str, str]:
        """Existing columns of a table (name → type), empty when there is no table.

        DESCRIBE finds the one table (0.5 ms); duckdb_columns() lists every column of the
        database first (4 ms with Stripe's 60 tables, and a run asks about 150 times).
        DuckDB's names ignore case, so a table or schema spelt in another case is found.
        The name is qualified with the catalog: a schema that does not exist yet could
        otherwise be taken for a catalog of that name (every connection has `memory`).
        """
        if self._catalog is None:
            self._catalog = self.execute("SELECT current_database()").fetchone()[0]
        name = f"{quote(self._catalog)}.{quote(schema)}.{quote(table)}"
        try:
            rows = self.execute(f"DESCRIBE {name}").fetchall()
        except StatementError as error:
            if isinstance(error.__cause__, duckdb.CatalogException):
                return {}  # no such table or schema (an error that leaves a transaction open)
            raise
        return {row[0]: types.normalize(row[1]) for row in rows}

    def create_table(self, schema: str, table: str, columns: Mapping[str, str]) -> None:
        """CREATE TABLE with the given columns."""
        self.ensure_schema(schema)
        body = ", ".join(f"{quote(name)} {type_}" for name, type_ in columns.items())
        self.execute(f"CREATE TABLE IF NOT EXISTS {quote(schema)}.{quote(table)} ({body})")

    def add_column(self, schema: str, table: str, name: str, type_: str) -> str:
        """ALTER TABLE ADD COLUMN; returns the column's type, which in a shared database
        another writer may have added first with a type of its own."""
        self.execute(
            f"ALTER TABLE {quote(schema)}.{quote(table)} ADD COLUMN IF NOT EXISTS "
            f"{quote(name)} {type_}"
        )
        if not self.kind.shared:
            return type_
        return self._column_type(schema, table, name) or type_

    def change_column_type(self, schema: str, table: str, name: str, source: str, dest: str) -> str:
        """Widen a column to hold `dest`'s values, converting its values without loss;
        returns its new type.

        In a shared database the column's type is read again first (another writer may
        have widened it), and the change retried if it conflicts.
        """
        if not self.kind.shared:
            self._change_type(schema, table, name, source, dest)
            return dest

        def attempt() -> str:
            with self.transaction():
                current = self._column_type(schema, table, name) or source
                widened = types.widen(current, dest)
                if widened != current:
                    self._change_type(schema, table, name, current, widened)
                return widened

        return conflicts.retrying(attempt, f"Widening column {schema}.{table}.{name}")

    def _change_type(self, schema: str, table: str, name: str, source: str, dest: str) -> None:
        target = f"{quote(schema)}.{quote(table)}"
        if self.kind.constraints or types.is_promotion(source, dest):
            expression = types.conversion(quote(name), source, dest)
            self.execute(
                f"ALTER TABLE {target} ALTER COLUMN {quote(name)} "
                f"SET DATA TYPE {dest} USING {expression}"
            )
            return
        # DuckLake changes a type only by a promotion within its family: any other change
        # is a new column holding the converted values, which then takes the old one's name.
        rebuilt = quote(name + REBUILT_SUFFIX)
        self.execute(f"ALTER TABLE {target} ADD COLUMN {rebuilt} {dest}")
        self.execute(
            f"UPDATE {target} SET {rebuilt} = {types.conversion(quote(name), source, dest)}"
        )
        self.execute(f"ALTER TABLE {target} DROP COLUMN {quote(name)}")
        self.execute(f"ALTER TABLE {target} RENAME COLUMN {rebuilt} TO {quote(name)}")

    def _column_type(self, schema: str, table: str, name: str) -> str | None:
        columns = self.columns(schema, table)
        return next(
            (kind for column, kind in columns.items() if column.lower() == name.lower()), None
        )

    def legacy_keys(self, schema: str, table: str, keys: Sequence[str]) -> list[str]:
        """The key columns that upserts match NULL in: a NULL in a key column is a row
        written before that column was a key (a record's keys are never null), which the
        other key columns identify. Empty when every key column has NULLs (nothing would
        identify such a row) or there is one key."""
        if len(keys) < 2:
            return []
        counts = ", ".join(f"count(*) FILTER (WHERE {quote(key)} IS NULL) > 0" for key in keys)
        row = self.execute(f"SELECT {counts} FROM {quote(schema)}.{quote(table)}").fetchone()
        legacy = [key for key, has_null in zip(keys, row or (), strict=False) if has_null]
        return legacy if len(legacy) < len(keys) else []

    # Loading

    def load_batch(self, batch: Batch) -> int:
        """Load one stream's batch into its table (inside the caller's transaction); returns
        the number of records loaded.

        The method is upsert (delete the rows whose keys arrive, then insert), append-only
        or overwrite (delete every row first). With `hard_delete`, records carrying
        `_sdc_deleted_at` remove their rows instead of landing as tombstones.
        """
        # One write of the joined payload: it releases the GIL, unlike writing line by line,
        # which would contend with the main thread decoding the next batch.
        if batch.payload:
            with open(batch.file, "wb") as handle:
                handle.write(batch.payload)
            batch.payload = b""  # the file has it now: keep memory flat while DuckDB loads
        target = f"{quote(batch.schema_name)}.{quote(batch.table)}"
        columns, keys = batch.columns, batch.keys
        source = _read_json(batch.file, columns)
        if batch.method == "overwrite":
            self.execute(f"DELETE FROM {target}")
        elif batch.method == "upsert" and keys and batch.replaced != []:
            # The rows whose keys arrive are deleted by a join with the keys read from a file
            # (a list of keys bound as a parameter costs DuckDB ~0.1 ms a key): the keys
            # alone when they are sure to read back as the records' own, else the batch
            # file read again for its key columns. A row from before a key column was added
            # (NULL there) is matched by the other key columns: re-sent, it is replaced,
            # not duplicated (`legacy_keys`).
            key_columns = {k: columns[k] for k in keys}
            arrived = (
                f"SELECT DISTINCT {', '.join(map(quote, keys))} "
                f"FROM {_arrived_keys(batch, key_columns)}"
            )
            match = " AND ".join(
                f"({target}.{quote(k)} = s.{quote(k)} OR {target}.{quote(k)} IS NULL)"
                if k in batch.legacy_keys
                else f"{target}.{quote(k)} = s.{quote(k)}"
                for k in keys
            )
            self.execute(f"DELETE FROM {target} USING ({arrived}) AS s WHERE {match}")
        deleted_filter = (
            " WHERE _sdc_deleted_at IS NULL"
            if batch.hard_delete and "_sdc_deleted_at" in columns
            else ""
        )
        self.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {source}{deleted_filter}")
        return batch.count

    def activate_version(
        self,
        schema: str,
        table: str,
        version: int,
        *,
        hard_delete: bool,
        scope: Mapping[str, object] | None = None,
    ) -> None:
        """Remove (or mark `_sdc_deleted_at`) rows loaded under an older table version;
        with a `scope` (column → value), only the rows holding those values."""
        target = f"{quote(schema)}.{quote(table)}"
        scope = scope or {}
        where = "(_sdc_table_version IS NULL OR _sdc_table_version < ?)" + "".join(
            f" AND {quote(column)} IS NOT DISTINCT FROM ?" for column in scope
        )
        parameters = [version, *scope.values()]
        if hard_delete:
            self.execute(f"DELETE FROM {target} WHERE {where}", parameters)
        else:
            self.execute(
                f"UPDATE {target} SET _sdc_deleted_at = current_timestamp "
                f"WHERE {where} AND _sdc_deleted_at IS NULL",
                parameters,
            )


# The Python types of key values whose JSON, encoded again, reads back into a column of
# the type as the record's own text does. Others may not: a float (`1e2`), a timestamp
# (`.1234567`), a number in a VARCHAR column (`1.50`), an integer beyond 64 bits (which
# DuckDB's reader of a JSON array refuses).
EXACT_KEYS: Mapping[str, type] = {types.VARCHAR: str, types.BIGINT: int, types.BOOLEAN: bool}


def _arrived_keys(batch: Batch, key_columns: Mapping[str, str]) -> str:
    """DuckDB's read of the keys of a batch's records.

    The keys are written to a file of their own, one JSON array (of the key values, or of
    objects of their columns), for DuckDB to parse instead of the batch file again (a
    twentieth of a Stripe batch's bytes). When a value might read back otherwise than from
    its record's text (see `EXACT_KEYS`), the batch file is read again instead.
    """
    keys = batch.record_keys if batch.replaced is None else batch.replaced
    if keys is None:
        return _read_json(batch.file, key_columns)
    kinds = [EXACT_KEYS.get(type_) for type_ in key_columns.values()]
    values = [keys] if len(kinds) == 1 else [[key[i] for key in keys] for i in range(len(kinds))]
    written = [_as_written(column, kind) for column, kind in zip(values, kinds, strict=True)]
    if any(column is None for column in written):
        return _read_json(batch.file, key_columns)
    if len(written) == 1:
        payload = msgspec.json.encode(written[0])
    else:
        names = list(key_columns)
        payload = msgspec.json.encode(
            [dict(zip(names, key, strict=True)) for key in zip(*written, strict=True)]
        )
    file = batch.file + ".keys"
    with open(file, "wb") as handle:
        handle.write(payload)
    return _read_json(file, key_columns, array=True, records=len(written) > 1)


def _as_written(values: list, kind: type | None) -> list | None:
    """A key column's values as they go into the keys file (a raw value's JSON text, bytes
    from `sinks._hashable`, as it came), or None when one is not of the Python type `kind`
    whose JSON reads back exactly."""
    found = set(map(type, values))
    if not found <= {kind, bytes}:
        return None
    if bytes in found:
        return [msgspec.Raw(value) if type(value) is bytes else value for value in values]
    return values


def _read_json(
    file: str, columns: Mapping[str, str], *, array: bool = False, records: bool = True
) -> str:
    """DuckDB's read of these columns (name → type) from a batch file (one record a line),
    or from one JSON `array` of records (without `records`: of values, one column)."""
    spec = ", ".join(f"{literal(name)}: {literal(type_)}" for name, type_ in columns.items())
    layout = "array" if array else "newline_delimited"
    return (
        f"read_json({literal(file)}, columns = {{{spec}}}, format = '{layout}', "
        f"records = {str(records).lower()})"
    )
