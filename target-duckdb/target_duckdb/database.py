"""The single DuckDB connection: DDL, column changes, the state table, and the load of a
batch (`Database.load_batch`: its file written, the rows it replaces deleted, its records
inserted from read_json) inside the transaction `commit` opens."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import typing as t
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import duckdb

from target_duckdb import types
from target_duckdb.errors import ConfigError, DatabaseError, StatementError

if t.TYPE_CHECKING:
    from target_duckdb.batch import Batch

STATE_TABLE = "_singer_state"
DEFAULT_MEMORY_LIMIT = "128MB"
ROW_GROUP_SIZE = 20480
ALIAS = "target_duckdb"

logger = logging.getLogger("target-duckdb")


def quote(identifier: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def connect(
    path: str,
    *,
    lock_timeout: float = 0,
    read_only: bool = False,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> duckdb.DuckDBPyConnection:
    """Open (creating it and its folder if missing) the DuckDB file at `path`.

    A file locked by another process is retried for `lock_timeout` seconds: in
    `tap --state <(target-duckdb-state ...) | target-duckdb` the state command may still
    hold the file for a moment when the target starts.
    """
    location = path if path == ":memory:" else str(Path(path).expanduser())
    if location != ":memory:" and not read_only:
        _make_folder(path, Path(location).parent)
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone = 'UTC'")
    # One DuckDB thread: the other core decodes the next batch while this one loads.
    connection.execute("SET threads = 1")
    try:
        connection.execute(f"SET memory_limit = {literal(memory_limit)}")
    except duckdb.Error as error:
        connection.close()
        raise ConfigError(
            "memory_limit", f"{memory_limit!r} is not a size DuckDB accepts: {_first_line(error)}"
        ) from error
    if location == ":memory:":
        return connection
    connection.execute(f"SET temp_directory = {literal(location + '.tmp')}")
    # Row groups of ~2 batches: each checkpoint then writes the new rows once, instead of
    # rewriting a growing 122,880-row group at every checkpoint (measured 2x on commits).
    options = "READ_ONLY" if read_only else f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}"
    deadline = time.monotonic() + lock_timeout
    delay = 0.05
    while True:
        try:
            connection.execute(f"ATTACH {literal(location)} AS {ALIAS} ({options})")
            break
        except (OSError, duckdb.Error) as error:
            message = _first_line(error)
            locked = "lock" in message.lower()
            if locked and time.monotonic() + delay < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            connection.close()
            if locked:
                raise DatabaseError(
                    f"DuckDB file {path} is locked by another process: {message}"
                ) from error
            raise ConfigError("path", f"{path}: cannot open the DuckDB file: {message}") from error
    connection.execute(f"USE {ALIAS}")
    return connection


def _make_folder(path: str, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocking = next((p for p in (folder, *folder.parents) if p.exists()), folder)
        reason = f"{blocking} is not a folder" if not blocking.is_dir() else error.strerror
        raise ConfigError("path", f"{path}: cannot open the DuckDB file: {reason}") from error


class Database:
    """Everything the target does to the DuckDB file goes through this class."""

    def __init__(
        self,
        path: str,
        state_schema: str,
        *,
        lock_timeout: float = 0,
        read_only: bool = False,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        """Open the file; the state table lives in `state_schema`."""
        self.path = path
        self.connection = connect(
            path, lock_timeout=lock_timeout, read_only=read_only, memory_limit=memory_limit
        )
        self._state_schema = state_schema
        self._schemas: set[str] = set()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-load")
        self._job: Future | None = None
        self._failure: BaseException | None = None
        self._worker: int | None = None
        self._state_table_ready = False

    def close(self) -> None:
        """Let the background load finish, then release the file (and its lock).

        A failed load's error is the business of `wait` (whoever flushes): closing after
        another error must not replace that one.
        """
        self._executor.shutdown(wait=True)
        self._job = None
        self.connection.close()

    # Background work: one job at a time, so loading a batch overlaps reading the next.

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` on the loader thread once the previous job finished (and succeeded).

        A failed job fails every later `submit` and `wait` too: nothing read after the
        records it could not load may be committed.
        """
        self.wait()
        self._job = self._executor.submit(self._run_job, job)

    def _run_job(self, job: Callable[[], None]) -> None:
        self._worker = threading.get_ident()
        try:
            job()
        except OSError as error:  # the batch file, or stdout for the state
            raise DatabaseError(f"loading a batch failed: {error}") from error

    @property
    def busy(self) -> bool:
        """Whether a background job is still running."""
        return self._job is not None and not self._job.done()

    def wait(self) -> None:
        """Block until the background job finished; re-raise its error if it failed."""
        if self._failure is not None:
            raise self._failure
        job, self._job = self._job, None
        if job is not None:
            try:
                job.result()
            except BaseException as error:
                self._failure = error
                raise

    def execute(self, sql: str, parameters: Sequence | None = None) -> duckdb.DuckDBPyConnection:
        """Run one statement, turning DuckDB errors into one-line StatementErrors.

        Called from the main thread it first waits for the background job: the
        connection is never used by two threads at once.
        """
        if self._job is not None and threading.get_ident() != self._worker:
            self.wait()
        try:
            return self.connection.execute(sql, parameters)
        except duckdb.Error as error:
            raise StatementError(f"DuckDB error: {_first_line(error)}") from error

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT, rolled back if the body raises."""
        self.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                self.connection.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    @contextlib.contextmanager
    def trial(self) -> Iterator[None]:
        """BEGIN ... ROLLBACK: whether statements succeed, leaving nothing behind."""
        self.execute("BEGIN TRANSACTION")
        try:
            yield
        finally:
            with contextlib.suppress(duckdb.Error):
                self.connection.execute("ROLLBACK")

    # Tables and columns

    def ensure_schema(self, schema: str) -> None:
        """CREATE SCHEMA IF NOT EXISTS, once per run."""
        if schema not in self._schemas:
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
            self._schemas.add(schema)

    def columns(self, schema: str, table: str) -> dict[str, str]:
        """Existing columns of a table (name → type), empty when there is no table."""
        rows = self.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() AND lower(schema_name) = lower(?) "
            "AND lower(table_name) = lower(?) ORDER BY column_index",
            [schema, table],
        ).fetchall()
        return {name: types.normalize(data_type) for name, data_type in rows}

    def create_table(self, schema: str, table: str, columns: Mapping[str, str]) -> None:
        """CREATE TABLE with the given columns."""
        self.ensure_schema(schema)
        body = ", ".join(f"{quote(name)} {type_}" for name, type_ in columns.items())
        self.execute(f"CREATE TABLE IF NOT EXISTS {quote(schema)}.{quote(table)} ({body})")

    def add_column(self, schema: str, table: str, name: str, type_: str) -> None:
        """ALTER TABLE ADD COLUMN."""
        self.execute(f"ALTER TABLE {quote(schema)}.{quote(table)} ADD COLUMN {quote(name)} {type_}")

    def change_column_type(
        self, schema: str, table: str, name: str, source: str, dest: str
    ) -> None:
        """Widen a column in place, converting its values without loss."""
        expression = types.conversion(quote(name), source, dest)
        self.execute(
            f"ALTER TABLE {quote(schema)}.{quote(table)} ALTER COLUMN {quote(name)} "
            f"SET DATA TYPE {dest} USING {expression}"
        )

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
        spec = ", ".join(f"{literal(name)}: {literal(type_)}" for name, type_ in columns.items())
        source = (
            f"read_json({literal(batch.file)}, columns = {{{spec}}}, "
            "format = 'newline_delimited', records = true)"
        )
        upsert = batch.method == "upsert" and bool(keys)
        staged = False
        if batch.method == "overwrite":
            self.execute(f"DELETE FROM {target}")
        elif (
            upsert
            and len(keys) == 1
            and batch.record_keys is not None
            and set(map(type, batch.record_keys)) <= {str, int}
        ):
            # One key of strings or integers: its rows are deleted by value.
            key_type = columns.get(keys[0], "VARCHAR")
            self.execute(
                f"DELETE FROM {target} WHERE {quote(keys[0])} IN "
                f"(SELECT unnest(CAST(? AS {key_type}[])))",
                [batch.record_keys],
            )
        elif upsert:
            # Any other key: the records go through a staging table, whose keys are deleted.
            self.execute(
                f"CREATE OR REPLACE TEMP TABLE _target_duckdb_stage AS SELECT * FROM {source}"
            )
            match = " AND ".join(f"{target}.{quote(k)} = s.{quote(k)}" for k in keys)
            self.execute(f"DELETE FROM {target} USING _target_duckdb_stage AS s WHERE {match}")
            source, staged = "_target_duckdb_stage", True
        deleted_filter = (
            " WHERE _sdc_deleted_at IS NULL"
            if batch.hard_delete and "_sdc_deleted_at" in columns
            else ""
        )
        self.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {source}{deleted_filter}")
        if staged:
            self.execute("DROP TABLE _target_duckdb_stage")
        return batch.count

    def activate_version(self, schema: str, table: str, version: int, *, hard_delete: bool) -> None:
        """Remove (or mark `_sdc_deleted_at`) rows loaded under an older table version."""
        target = f"{quote(schema)}.{quote(table)}"
        older = "(_sdc_table_version IS NULL OR _sdc_table_version < ?)"
        if hard_delete:
            self.execute(f"DELETE FROM {target} WHERE {older}", [version])
        else:
            self.execute(
                f"UPDATE {target} SET _sdc_deleted_at = current_timestamp "
                f"WHERE {older} AND _sdc_deleted_at IS NULL",
                [version],
            )

    # State

    def _state_table(self) -> str:
        return f"{quote(self._state_schema)}.{quote(STATE_TABLE)}"

    def ensure_state_table(self) -> None:
        """Create the table holding the last committed state of each state id (once)."""
        if self._state_table_ready:
            return
        self._state_table_ready = True
        self.ensure_schema(self._state_schema)
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self._state_table()} "
            "(state_id VARCHAR PRIMARY KEY, state JSON, committed_at TIMESTAMPTZ)"
        )

    def save_state(self, state_id: str, state_json: str) -> None:
        """Persist a state given as JSON text (inside the caller's transaction)."""
        self.execute(
            f"INSERT OR REPLACE INTO {self._state_table()} VALUES (?, ?, current_timestamp)",
            [state_id, state_json],
        )

    def load_state(self, state_id: str) -> str | None:
        """The last persisted state as JSON text, or None."""
        exists = self.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = ? AND table_name = ?",
            [self._state_schema, STATE_TABLE],
        ).fetchone()
        if not exists or not exists[0]:
            return None
        row = self.execute(
            f"SELECT state FROM {self._state_table()} WHERE state_id = ?", [state_id]
        ).fetchone()
        return row[0] if row else None
