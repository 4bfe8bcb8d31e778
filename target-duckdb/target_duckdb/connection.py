"""Where the target writes, and the DuckDB connection attached to it.

A `path` is one of three kinds (`Kind`):
- a DuckDB file: one writing process at a time, so a file another process holds is
  retried for `lock_timeout` seconds;
- a DuckLake, `ducklake:<catalog>` (`ducklake:postgres:dbname=... host=...`): the catalog in
  a database, the Parquet files in `data_path`; several processes write it at once, each
  commit checked against the others' (see `conflicts`);
- MotherDuck, `md:<database>`, DuckDB's hosted service.

Every kind is attached under one name to an in-memory DuckDB, with the extensions it needs
loaded from their packages (`extensions`) and DuckDB's own downloads off.
"""

from __future__ import annotations

import enum
import os
import re
import tempfile
import time
from pathlib import Path

import duckdb

from target_duckdb import conflicts, extensions
from target_duckdb.errors import ConfigError, DatabaseError

ALIAS = "target_duckdb"
LAKE_PREFIX = "ducklake:"
MOTHERDUCK_PREFIX = "md:"
# Row groups of ~2 batches: each checkpoint then writes the new rows once, instead of
# rewriting a growing 122,880-row group at every checkpoint (measured 2x on commits).
ROW_GROUP_SIZE = 20480
# The catalog database DuckLake attaches beside the lake it attaches as ALIAS.
_METADATA = f"__ducklake_metadata_{ALIAS}"
# A password (libpq's password=...) or a token (MotherDuck's motherduck_token=...).
_PASSWORD = re.compile(r"((?:password|[a-z_]*token)\s*=\s*)('[^']*'|[^\s\"'&]+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


class NoLake(DatabaseError):
    """A DuckLake opened read-only that nobody has created yet."""


class Kind(enum.Enum):
    """What a `path` names."""

    MEMORY = "memory"
    FILE = "file"
    LAKE = "lake"
    MOTHERDUCK = "motherduck"

    @classmethod
    def of(cls, path: str) -> Kind:
        """The kind of `path`."""
        if path == ":memory:":
            return cls.MEMORY
        if path.startswith(LAKE_PREFIX):
            return cls.LAKE
        if path.startswith(MOTHERDUCK_PREFIX):
            return cls.MOTHERDUCK
        return cls.FILE

    @property
    def shared(self) -> bool:
        """Whether other processes may write at the same time (commits can conflict)."""
        return self in (Kind.LAKE, Kind.MOTHERDUCK)

    @property
    def constraints(self) -> bool:
        """Whether tables can have a PRIMARY KEY (DuckLake has no constraints)."""
        return self is not Kind.LAKE


def scrubbed(text: str) -> str:
    """`text` without the password (or token) of a connection string or URI in it."""
    return _URI_PASSWORD.sub(r"\1***@", _PASSWORD.sub(r"\1***", text))


def first_line(error: BaseException) -> str:
    """An error's first line, passwords scrubbed."""
    text = str(error).strip()
    return scrubbed(text.splitlines()[0]) if text else type(error).__name__


def connect(
    path: str,
    *,
    data_path: str | None = None,
    lock_timeout: float = 0,
    read_only: bool = False,
    memory_limit: str,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with `path` attached as `ALIAS` (or, for MotherDuck, under its
    own name) and in use."""
    kind = Kind.of(path)
    connection = duckdb.connect(":memory:", config=extensions.CONFIG)
    try:
        _configure(connection, memory_limit)
        if kind is Kind.MEMORY:
            return connection
        if kind is Kind.FILE:
            _attach_file(connection, path, lock_timeout=lock_timeout, read_only=read_only)
        else:
            _spill_to_temp(connection)
            if kind is Kind.LAKE:
                _attach_lake(connection, path, data_path, read_only=read_only)
            else:
                _attach_motherduck(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def _configure(connection: duckdb.DuckDBPyConnection, memory_limit: str) -> None:
    connection.execute("SET TimeZone = 'UTC'")
    # One DuckDB thread: the other core decodes the next batch while this one loads.
    connection.execute("SET threads = 1")
    try:
        connection.execute(f"SET memory_limit = {literal(memory_limit)}")
    except duckdb.Error as error:
        raise ConfigError(
            "memory_limit", f"{memory_limit!r} is not a size DuckDB accepts: {first_line(error)}"
        ) from error


def _attach_file(
    connection: duckdb.DuckDBPyConnection, path: str, *, lock_timeout: float, read_only: bool
) -> None:
    """Attach the DuckDB file (creating it and its folder if missing).

    A file locked by another process is retried for `lock_timeout` seconds: in
    `tap --state <(target-duckdb-state ...) | target-duckdb` the state command may still
    hold the file for a moment when the target starts.
    """
    location = str(Path(path).expanduser())
    if not read_only:
        _make_folder(path, Path(location).parent)
    connection.execute(f"SET temp_directory = {literal(location + '.tmp')}")
    options = "READ_ONLY" if read_only else f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}"
    deadline = time.monotonic() + lock_timeout
    delay = 0.05
    while True:
        try:
            connection.execute(f"ATTACH {literal(location)} AS {ALIAS} ({options})")
            break
        except (OSError, duckdb.Error) as error:
            message = first_line(error)
            locked = "lock" in message.lower()
            if locked and time.monotonic() + delay < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            if locked:
                raise DatabaseError(
                    f"DuckDB file {path} is locked by another process: {message}"
                ) from error
            raise ConfigError("path", f"{path}: cannot open the DuckDB file: {message}") from error
    connection.execute(f"USE {ALIAS}")


def _attach_lake(
    connection: duckdb.DuckDBPyConnection, path: str, data_path: str | None, *, read_only: bool
) -> None:
    """Attach the DuckLake `path`; a new lake is created with its files in `data_path`."""
    try:
        extensions.load(connection, "ducklake")
        if path[len(LAKE_PREFIX) :].startswith("postgres:"):
            extensions.load(connection, "postgres_scanner")
    except extensions.MissingExtension as error:
        raise ConfigError("path", f"{scrubbed(path)}: {error}") from error
    options = []
    if data_path:
        options.append(f"DATA_PATH {literal(_data_location(data_path))}")
    if read_only:
        options.append("READ_ONLY")
    clause = f" ({', '.join(options)})" if options else ""

    def attach() -> None:
        try:
            connection.execute(f"ATTACH {literal(path)} AS {ALIAS}{clause}")
        except duckdb.Error as error:
            if "Failed to initialize DuckLake" in str(error) and "already exists" in str(error):
                # Another writer created the new lake's catalog at the same moment: the
                # next attempt finds it made.
                connection.execute(f"DETACH DATABASE IF EXISTS {_METADATA}")
                raise conflicts.Conflict(first_line(error)) from error
            raise

    try:
        conflicts.retrying(attach, "Creating the DuckLake")
    except duckdb.Error as error:
        message = first_line(error)
        if read_only and "creating a new DuckLake is explicitly disabled" in message:
            raise NoLake(f"no DuckLake at {scrubbed(path)} yet") from error
        if "data_path is not set" in message:
            raise ConfigError(
                "data_path", "is required to create a new DuckLake (where its Parquet files go)"
            ) from error
        raise DatabaseError(f"cannot attach the DuckLake {scrubbed(path)}: {message}") from error
    connection.execute(f"USE {ALIAS}")


def _attach_motherduck(connection: duckdb.DuckDBPyConnection, path: str) -> None:
    """Attach MotherDuck database `md:<name>` (its token from `motherduck_token`)."""
    try:
        extensions.load(connection, "motherduck")
    except extensions.MissingExtension as error:
        raise ConfigError("path", f"{scrubbed(path)}: {error}") from error
    name = path[len(MOTHERDUCK_PREFIX) :].split("?", 1)[0]
    if not name:
        raise ConfigError("path", f"{scrubbed(path)}: name the MotherDuck database (md:<database>)")
    try:
        connection.execute(f"ATTACH {literal(path)}")
        connection.execute(f"USE {quote(name)}")
    except duckdb.Error as error:
        raise DatabaseError(
            f"cannot attach MotherDuck {scrubbed(path)}: {first_line(error)}"
        ) from error


def _data_location(data_path: str) -> str:
    """A local data_path made absolute (every writer must name the same folder); a URL as
    given."""
    if "://" in data_path:
        return data_path
    return str(Path(data_path).expanduser().resolve())


def _spill_to_temp(connection: duckdb.DuckDBPyConnection) -> None:
    """Spill beyond memory_limit to the system's temporary folder (DuckDB's default for an
    in-memory database is `.tmp` in the working directory)."""
    folder = Path(tempfile.gettempdir()) / f"target-duckdb-{os.getpid()}.tmp"
    connection.execute(f"SET temp_directory = {literal(str(folder))}")


def _make_folder(path: str, folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocking = next((p for p in (folder, *folder.parents) if p.exists()), folder)
        reason = f"{blocking} is not a folder" if not blocking.is_dir() else error.strerror
        raise ConfigError("path", f"{path}: cannot open the DuckDB file: {reason}") from error


def literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def quote(identifier: str) -> str:
    """A DuckDB identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'
