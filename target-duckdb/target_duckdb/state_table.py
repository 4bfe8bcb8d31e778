"""The state table: each state id's last committed state, saved in the transaction of the
data it covers (`commit`), read by `target-duckdb-state`.

In a file a commit's state replaces its state id's row; in a DuckLake it is a new row
(appends by several writers never conflict, where deleting a row would conflict with every
other pipeline's commit): the newest row of a state id, by rowid, which DuckLake gives in
commit order, is its state, and the older ones go at the end of a run.
"""

from __future__ import annotations

import logging

from target_duckdb import conflicts
from target_duckdb.connection import ALIAS, Kind, literal, quote
from target_duckdb.names import REBUILT_SUFFIX
from target_duckdb.session import Session

STATE_TABLE = "_singer_state"

logger = logging.getLogger("target-duckdb")


class StateTable:
    """The state table in `schema` of the database `session` opened."""

    def __init__(self, session: Session, schema: str) -> None:
        """Nothing is created before the first `ensure`."""
        self._session = session
        self._schema = schema
        self._ready = False

    def _table(self) -> str:
        return f"{quote(self._schema)}.{quote(STATE_TABLE)}"

    def _listed(self, catalog: str, condition: str = "") -> bool:
        """Whether DuckDB's catalog function `catalog` (`duckdb_tables`) has a row of the
        state table (meeting `condition`)."""
        row = self._session.execute(
            f"SELECT count(*) FROM {catalog}() WHERE database_name = current_database() "
            f"AND schema_name = ? AND table_name = ?{condition}",
            [self._schema, STATE_TABLE],
        ).fetchone()
        return bool(row and row[0])

    def ensure(self) -> None:
        """Create the table holding the last committed state of each state id (once); one an
        earlier version keyed by `state_id` is rebuilt without the key (`_drop_key`)."""
        if self._ready:
            return
        self._ready = True
        self._session.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(self._schema)}")
        self._session.execute(
            f"CREATE TABLE IF NOT EXISTS {self._table()} "
            "(state_id VARCHAR, state JSON, committed_at TIMESTAMPTZ)"
        )
        if self._session.kind is Kind.LAKE:
            self._rows_as_files()
        else:
            self._drop_key()

    def _rows_as_files(self) -> None:
        """Have a lake write its state rows to Parquet files rather than into its catalog.

        DuckLake inlines small inserts into the catalog database: inlining a 10 MB state
        (1,000 accounts) into PostgreSQL took 3.8 s a commit and ~900 MB of memory, as a
        file 0.05 s and 210 MB (measured, DuckLake 1.0 with PostgreSQL).
        """
        option = "data_inlining_row_limit"
        rows = self._session.execute(
            f"SELECT value FROM ducklake_options({literal(ALIAS)}) "
            "WHERE option_name = ? AND scope_entry = ?",
            [option, f"{self._schema}.{STATE_TABLE}"],
        ).fetchall()
        if rows != [("0",)]:
            self._session.execute(
                f"CALL ducklake_set_option({literal(ALIAS)}, {literal(option)}, 0, "
                f"schema => {literal(self._schema)}, table_name => {literal(STATE_TABLE)})"
            )

    def _drop_key(self) -> None:
        """Rebuild a state table keyed by `state_id` without its key.

        Through the key a state replaced its row in place, and DuckDB kept each replaced
        value until the next checkpoint in memory it cannot spill: a 10 MB state needed
        about 100 MB of the 128 MB limit (measured with DuckDB 1.5.5). Without the key the
        row is deleted and inserted again, and DuckDB spills deleted rows like any other.
        """
        if not self._listed("duckdb_constraints", " AND constraint_type = 'PRIMARY KEY'"):
            return
        rebuilt = quote(STATE_TABLE + REBUILT_SUFFIX)

        def body() -> None:
            self._session.execute(
                f"CREATE TABLE {quote(self._schema)}.{rebuilt} AS SELECT * FROM {self._table()}"
            )
            self._session.execute(f"DROP TABLE {self._table()}")
            self._session.execute(
                f"ALTER TABLE {quote(self._schema)}.{rebuilt} RENAME TO {quote(STATE_TABLE)}"
            )

        self._session.committed(body, "Rebuilding the state table without its key")

    def save(self, state_id: str, state_json: str) -> None:
        """Persist a state given as JSON text (inside the caller's transaction): in a file
        it replaces the state id's row, in a DuckLake it is a new row."""
        if self._session.kind is not Kind.LAKE:
            self._session.execute(f"DELETE FROM {self._table()} WHERE state_id = ?", [state_id])
        self._session.execute(
            f"INSERT INTO {self._table()} VALUES (?, ?, current_timestamp)",
            [state_id, state_json],
        )

    def prune(self, state_id: str) -> None:
        """Delete the rows of `state_id` older than its newest (a DuckLake's, at the end of
        a run: one delete per run, where one per commit would conflict with the others).

        Housekeeping only: when it keeps conflicting the rows stay for the next run.
        """
        if self._session.kind is not Kind.LAKE or not self._ready:
            return
        table = self._table()
        try:
            self._session.execute(
                f"DELETE FROM {table} WHERE state_id = ? AND rowid < "
                f"(SELECT max(rowid) FROM {table} WHERE state_id = ?)",
                [state_id, state_id],
            )
        except conflicts.ConflictError as error:
            logger.warning("Older rows of state %r stay for the next run: %s", state_id, error)

    def load(self, state_id: str) -> str | None:
        """The last persisted state as JSON text, or None."""
        if not self._listed("duckdb_tables"):
            return None
        # A lake's rows get their rowid in commit order: the newest is the last committed,
        # whatever the clocks of the machines that wrote them.
        row = self._session.execute(
            f"SELECT state FROM {self._table()} WHERE state_id = ? ORDER BY rowid DESC LIMIT 1",
            [state_id],
        ).fetchone()
        return row[0] if row else None
