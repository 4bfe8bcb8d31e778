"""The one DuckDB connection of a run and the discipline of its use: a loader thread that
runs one job at a time (loading a batch overlaps reading the next), statements as one-line
errors, transactions, the retry of those that conflict with another writer of a shared
database (`conflicts`), and a file's checkpoints after its commits (`checkpoints`; one
that fails has the file opened again). What the statements are is `database`'s business.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import duckdb

from target_duckdb import conflicts
from target_duckdb.checkpoints import Checkpoints
from target_duckdb.connection import Kind, connect, first_line
from target_duckdb.errors import DatabaseError, StatementError

DEFAULT_MEMORY_LIMIT = "128MB"
# DuckDB's Python binding takes the GIL back between the tasks of a query, and a thread
# waiting for the GIL waits Python's switch interval (5 ms by default) before the running
# thread is asked to let go: the loader waited so at every task while the main thread
# decoded the next batch. At 0.2 ms the benchmark's 100,000 records loaded in 1.96 s against
# 2.16 s (medians of 16 interleaved runs each; best 1.83 s and 1.98 s).
SWITCH_INTERVAL = 0.0002


class Session:
    """The connection, used by one thread at a time: the main thread, or the loader."""

    def __init__(
        self,
        path: str,
        *,
        data_path: str | None = None,
        lock_timeout: float = 0,
        read_only: bool = False,
        memory_limit: str = DEFAULT_MEMORY_LIMIT,
    ) -> None:
        """Open the file or lake."""
        self.path = path
        self.kind = Kind.of(path)
        self._open = functools.partial(
            connect,
            path,
            data_path=data_path,
            lock_timeout=lock_timeout,
            read_only=read_only,
            memory_limit=memory_limit,
        )
        self._checkpoints = Checkpoints(path) if self.kind is Kind.FILE and not read_only else None
        self.connection = self._connect()
        self._in_transaction = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-load")
        self._switch_interval = sys.getswitchinterval()  # the process's, back at close
        sys.setswitchinterval(min(self._switch_interval, SWITCH_INTERVAL))
        self._job: Future | None = None
        self._failure: BaseException | None = None
        self._worker: int | None = None

    def close(self) -> None:
        """Let the background load finish, then release the file (and its lock).

        A failed load's error is the business of `wait` (whoever flushes): closing after
        another error must not replace that one.
        """
        self._executor.shutdown(wait=True)
        self._job = None
        try:
            if self._checkpoints is not None and self._checkpoints.wal_bytes():
                # Before DuckDB's own checkpoint at close, which has no more memory than a load.
                self._checkpoints.run(self.connection)
            self.connection.close()
        finally:
            sys.setswitchinterval(self._switch_interval)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        connection = self._open()
        if self._checkpoints is not None:
            self._checkpoints.take_over(connection)
        return connection

    def _checkpoint(self) -> None:
        """Checkpoint the file if its WAL is due; after a failed checkpoint (every commit
        is in the WAL) open it again, which replays the WAL."""
        if self._checkpoints is None or not self._checkpoints.due:
            return
        if not self._checkpoints.run(self.connection):
            with contextlib.suppress(duckdb.Error):
                self.connection.close()
            self.connection = self._connect()

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
        connection is never used by two threads at once. Outside a transaction a statement
        commits alone; in a shared database one that conflicts runs again (every such
        statement the target runs is idempotent: IF NOT EXISTS, retiring older versions).
        """
        if self._job is not None and threading.get_ident() != self._worker:
            self.wait()
        if self._in_transaction or not self.kind.shared:
            return self._execute(sql, parameters)
        what = f"Statement {' '.join(sql.split()[:4])} ..."
        return conflicts.retrying(lambda: self._execute(sql, parameters), what)

    def _execute(self, sql: str, parameters: Sequence | None) -> duckdb.DuckDBPyConnection:
        try:
            return self.connection.execute(sql, parameters)
        except duckdb.Error as error:
            if self.kind.shared and conflicts.is_conflict(error):
                raise conflicts.Conflict(conflicts.reason(error)) from error
            raise StatementError(f"DuckDB error: {first_line(error)}") from error

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN ... COMMIT, rolled back if the body raises (a COMMIT that fails has ended
        the transaction itself)."""
        self.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            try:
                yield
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    self.connection.execute("ROLLBACK")
                raise
            self.execute("COMMIT")
        finally:
            self._in_transaction = False

    def committed(self, body: Callable[[], None], what: str) -> None:
        """Run `body` in one transaction, again from the start while its commit conflicts
        with another writer's (`what` names it in the log)."""

        def attempt() -> None:
            with self.transaction():
                body()

        if self.kind.shared:
            conflicts.retrying(attempt, what)
        else:
            attempt()
            self._checkpoint()

    @contextlib.contextmanager
    def trial(self) -> Iterator[None]:
        """BEGIN ... ROLLBACK: whether statements succeed, leaving nothing behind."""
        self.execute("BEGIN TRANSACTION")
        self._in_transaction = True
        try:
            yield
        finally:
            self._in_transaction = False
            with contextlib.suppress(duckdb.Error):
                self.connection.execute("ROLLBACK")
