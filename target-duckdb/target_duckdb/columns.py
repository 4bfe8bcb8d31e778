"""A stream's table in DuckDB as the run sees it: its columns, added and widened, never dropped.

Each column is known under the spelling this run uses for it (a column an earlier run
spelled in another case keeps its place: DuckDB matches names ignoring case, while
read_json looks for the records' spelling). The metadata columns (`_sdc_*`) are here too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from target_duckdb import types
from target_duckdb.database import Database
from target_duckdb.errors import BadMessageError, BadSchemaError

logger = logging.getLogger("target-duckdb")

# Metadata columns (the SDK's `add_record_metadata` set) and their types.
SDC_COLUMNS = {
    "_sdc_extracted_at": types.TIMESTAMPTZ,
    "_sdc_received_at": types.TIMESTAMPTZ,
    "_sdc_batched_at": types.TIMESTAMPTZ,
    "_sdc_deleted_at": types.TIMESTAMPTZ,
    "_sdc_sequence": types.BIGINT,
    "_sdc_table_version": types.BIGINT,
    "_sdc_sync_started_at": types.BIGINT,
}
VERSION_COLUMNS = ("_sdc_table_version", "_sdc_deleted_at")
# The metadata columns' properties, for a schema that lacks them.
SDC_SCHEMAS: Mapping[str, dict] = {
    types.TIMESTAMPTZ: {"type": ["null", "string"], "format": "date-time"},
    types.BIGINT: {"type": ["null", "integer"]},
}


class Columns:
    """One stream's table: each column's type (`types`, by this run's spelling)."""

    def __init__(self, database: Database, schema_name: str, table: str, stream: str) -> None:
        """No columns known yet: `adopt` reads (or creates) the table."""
        self._db = database
        self.schema_name = schema_name
        self.table = table
        self.stream = stream
        self.types: dict[str, str] = {}
        self.names: dict[str, str] = {}  # lower-cased name → this run's spelling
        # Property names this run has used (SCHEMA or records): another differing only in
        # case would be the same DuckDB column, so it is refused.
        self.claimed: set[str] = set()
        self.created = False  # whether this run created the table (empty until it loads)

    def adopt(self, wanted: Mapping[str, str]) -> None:
        """Create the table with the `wanted` columns, or add and widen its columns to them."""
        existing = self._db.columns(self.schema_name, self.table)
        if not existing:
            self._db.create_table(self.schema_name, self.table, wanted)
            self.created = True
            existing = self._db.columns(self.schema_name, self.table)
        # Keep this run's spelling of each column: pending records use it.
        spelling = {name.lower(): name for name in self.types}
        self.types = {spelling.get(name.lower(), name): type_ for name, type_ in existing.items()}
        self.names = {name.lower(): name for name in self.types}
        for name, type_ in wanted.items():
            self.set(name, type_)

    def claim(self, name: str) -> None:
        """Use property `name` for this run, refusing one that differs from another in case."""
        if name in self.claimed:
            return
        table_name = self.names.get(name.lower())
        if table_name in self.claimed:
            raise BadSchemaError(
                f"stream '{self.stream}' has properties '{table_name}' and '{name}', one "
                "column in DuckDB (its names ignore case)"
            )
        self.claimed.add(name)

    def set(self, name: str, type_: str | None) -> bool:
        """Make column `name` hold values of `type_`; True when the table changed."""
        table_name = self.names.get(name.lower())
        self.names[name.lower()] = name
        if table_name is None:
            new_type = type_ or types.JSON
            # In a shared database another writer may have added it first, with its type.
            current = self._db.add_column(self.schema_name, self.table, name, new_type)
            self.types[name] = current
            if current != types.widen(current, new_type):
                self._widen(name, current, new_type)
            return True
        # A column of an earlier run spelled in another case: the records' spelling is the
        # key read_json looks for (DuckDB matches the column itself ignoring case).
        current = self.types.pop(table_name)
        self.types[name] = current
        widened = types.widen(current, type_)
        if widened == current:
            return table_name != name
        self._widen(name, current, widened)
        return True

    def _widen(self, name: str, current: str, wanted: str) -> None:
        widened = types.widen(current, wanted)
        logger.info(
            "Widening column %s.%s.%s from %s to %s",
            self.schema_name,
            self.table,
            name,
            current,
            widened,
        )
        self.types[name] = self._db.change_column_type(
            self.schema_name, self.table, name, current, widened
        )

    def of_scope(self, scope: Mapping[str, object], message: str) -> dict[str, object]:
        """An ACTIVATE_VERSION's scope by this table's column names; a name the table lacks
        is the message's error."""
        columns = {}
        for name, value in scope.items():
            column = self.names.get(name.lower())
            if column is None:
                raise BadMessageError(
                    f"{message}: scope column '{name}' is not a column of table "
                    f"{self.schema_name}.{self.table}"
                )
            columns[column] = value
        return columns

    def versioned(self) -> bool:
        """Whether the table has the table-version columns (`VERSION_COLUMNS`)."""
        return all(name.lower() in self.names for name in VERSION_COLUMNS)
