"""TargetDuckDB: Singer messages in, DuckDB tables out, states out only once committed.

The state rule lives here: a STATE value is held until a flush commits every record
received before it (all streams, one transaction that also writes the state row), and
only then is it written to stdout.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import typing as t

import msgspec
from singer_sdk import Target
from singer_sdk import typing as th
from singer_sdk.exceptions import MapExpressionError, StreamMapConfigError
from singer_sdk.helpers.capabilities import PluginCapabilities, TargetCapabilities
from singer_sdk.mapper import RemoveRecordTransform, SameRecordTransform

from target_duckdb.database import DEFAULT_MEMORY_LIMIT, Database
from target_duckdb.errors import (
    BadMessageError,
    BadSchemaError,
    DatabaseError,
    InputError,
    TargetError,
    UnknownStreamError,
)
from target_duckdb.messages import Message, MessageReader, Terminated
from target_duckdb.sinks import Sink, SinkSettings, check_schema

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.mapper import StreamMap
    from singer_sdk.plugin_base import _ConfigInput

DEFAULT_BATCH_SIZE_ROWS = 10_000
# Flush when the batches hold this many bytes of JSON, whatever their row count, so memory
# stays flat for very large records.
MAX_BATCH_BYTES = 32 * 1024 * 1024

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "path",
        th.StringType,
        required=True,
        title="DuckDB file",
        description="Path of the DuckDB database file; created (with its folder) if missing.",
    ),
    th.Property(
        "default_target_schema",
        th.StringType,
        description=(
            "Schema holding every stream's table. Default: the stream name's prefix "
            "before '-' if any, else 'main'."
        ),
    ),
    th.Property(
        "load_method",
        th.StringType,
        allowed_values=["upsert", "append-only", "overwrite"],
        description=(
            "upsert (the default for streams with key properties; the last record per key "
            "wins), append-only (the default without key properties) or overwrite (empty "
            "the table at the first load of the run)."
        ),
    ),
    th.Property(
        "batch_size_rows",
        th.IntegerType,
        default=DEFAULT_BATCH_SIZE_ROWS,
        description="Flush (commit all streams and emit the state) when the streams together "
        "hold this many records.",
    ),
    th.Property(
        "max_batch_age_seconds",
        th.NumberType,
        default=60,
        description="Flush when the oldest unflushed record is this old (checked as "
        "messages arrive).",
    ),
    th.Property(
        "hard_delete",
        th.BooleanType,
        default=False,
        description="Delete rows (ACTIVATE_VERSION, records carrying _sdc_deleted_at) "
        "instead of marking them with _sdc_deleted_at.",
    ),
    th.Property(
        "add_record_metadata",
        th.BooleanType,
        default=False,
        description="Add the _sdc_* metadata columns.",
    ),
    th.Property(
        "validate_records",
        th.BooleanType,
        default=False,
        description=(
            "Validate each record against its full JSON Schema (nested properties too). "
            "Top-level types are always checked against the columns; this full check "
            "costs several times the load's own time."
        ),
    ),
    th.Property(
        "on_invalid_record",
        th.StringType,
        default="fail",
        allowed_values=["fail", "log"],
        description=(
            "fail: stop with an error naming the record's input line. log: log a warning "
            "and load the record anyway, widening its columns as needed."
        ),
    ),
    th.Property(
        "state_id",
        th.StringType,
        default="default",
        description="Key of this pipeline's row in the _singer_state table.",
    ),
    th.Property(
        "memory_limit",
        th.StringType,
        default=DEFAULT_MEMORY_LIMIT,
        description="DuckDB's memory_limit (it spills to disk beyond it).",
    ),
    th.Property(
        "lock_timeout_seconds",
        th.NumberType,
        default=5,
        description="How long to retry opening a DuckDB file locked by another process.",
    ),
).to_dict()


class TargetDuckDB(Target):
    """Singer target for DuckDB."""

    name = "target-duckdb"
    config_jsonschema = CONFIG_SCHEMA
    capabilities: t.ClassVar = [
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
        PluginCapabilities.ACTIVATE_VERSION,
        TargetCapabilities.VALIDATE_RECORDS,
        TargetCapabilities.HARD_DELETE,
        TargetCapabilities.SOFT_DELETE,
        TargetCapabilities.TARGET_SCHEMA,
    ]

    def __init__(self, **kwargs: t.Any) -> None:
        """Set up the reader; the database opens on first use."""
        super().__init__(**kwargs)
        self.message_reader: MessageReader = MessageReader(on_stop=self._reading_stopped)
        self._closed = False
        self._database: Database | None = None
        self._temp_dir: str | None = None
        self._sinks: dict[str, Sink] = {}
        self._routes: dict[str, list[tuple[Sink, StreamMap | None]]] = {}
        self._schemas_seen: dict[str, tuple[dict, list[str]]] = {}
        self._overwritten: set[str] = set()
        self._state: object | None = None
        self._committed_state: bytes | None = None
        self._batch_size = int(self.config.get("batch_size_rows") or DEFAULT_BATCH_SIZE_ROWS)
        self._max_age = float(self.config.get("max_batch_age_seconds", 60))
        self._batch_started = time.monotonic()
        self._pending_records = 0
        self._pending_bytes = 0

    # Resources

    @property
    def database(self) -> Database:
        """The run's single DuckDB connection."""
        if self._database is None:
            self._database = Database(
                self.config["path"],
                self.state_schema,
                lock_timeout=float(self.config.get("lock_timeout_seconds", 5)),
                memory_limit=self.config.get("memory_limit", DEFAULT_MEMORY_LIMIT),
            )
        return self._database

    @property
    def state_schema(self) -> str:
        """Schema of the _singer_state table."""
        return self.config.get("default_target_schema") or "main"

    def _settings(self) -> SinkSettings:
        if self._temp_dir is None:
            self._temp_dir = tempfile.mkdtemp(prefix="target-duckdb-")
        return SinkSettings(
            database=self.database,
            temp_dir=self._temp_dir,
            load_method=self.config.get("load_method"),
            hard_delete=bool(self.config.get("hard_delete")),
            add_record_metadata=bool(self.config.get("add_record_metadata")),
            validate_records=bool(self.config.get("validate_records")),
            fail_on_invalid=self.config.get("on_invalid_record", "fail") == "fail",
            sync_started_at=self.initialized_at,
            line_number=lambda: self.message_reader.line_number,
        )

    def close(self) -> None:
        """Release the database file and temporary files (for good)."""
        self._closed = True
        if self._database is not None:
            self._database.close()
            self._database = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def table_for(self, stream: str) -> tuple[str, str]:
        """(schema, table) of a stream: `<schema>-<table>` names carry their own schema."""
        parts = stream.split("-")
        schema = self.config.get("default_target_schema") or (
            parts[-2] if len(parts) > 1 else "main"
        )
        return schema, parts[-1]

    # Messages

    def _process_schema_message(self, message: Message) -> None:  # type: ignore[override]
        stream = _stream_of(message, "SCHEMA")
        keys = message.key_properties or []
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise BadSchemaError(f"SCHEMA for stream '{stream}' has invalid key_properties")
        seen = self._schemas_seen.get(stream)
        if seen == (message.schema, keys):
            return
        check_schema(stream, message.schema, seen[0] if seen else None)
        try:
            self.mapper.register_raw_stream_schema(stream, message.schema, keys)
        except (MapExpressionError, StreamMapConfigError) as error:
            raise BadSchemaError(f"stream maps cannot map stream '{stream}': {error}") from error
        routes: list[tuple[Sink, StreamMap | None]] = []
        for stream_map in self.mapper.stream_maps[stream]:
            if isinstance(stream_map, RemoveRecordTransform):
                continue
            alias = stream_map.stream_alias
            map_keys = list(stream_map.transformed_key_properties or [])
            sink = self._sinks.get(alias)
            if sink is None:
                schema_name, table = self.table_for(alias)
                sink = Sink(
                    stream=alias,
                    schema_name=schema_name,
                    table=table,
                    schema=stream_map.transformed_schema,
                    key_properties=map_keys,
                    settings=self._settings(),
                    overwritten=self._overwritten,
                )
                self._sinks[alias] = sink
            else:
                if sink.key_properties != map_keys and sink.pending:
                    self.flush()
                sink.update_schema(stream_map.transformed_schema, map_keys)
            identity = type(stream_map) is SameRecordTransform and not (
                stream_map.flattening_enabled
            )
            routes.append((sink, None if identity else stream_map))
        self._routes[stream] = routes
        self._schemas_seen[stream] = (message.schema, keys)

    def _process_record_message(self, message: Message) -> None:  # type: ignore[override]
        routes = self._routes.get(message.stream)
        if routes is None:
            stream = _stream_of(message, "RECORD")
            raise UnknownStreamError(f"RECORD for stream '{stream}' arrived before its SCHEMA")
        if not message.record:
            raise BadMessageError("RECORD message has no 'record'")
        version = _version_of(message, required=False)
        for sink, stream_map in routes:
            if stream_map is None:
                self._pending_bytes += sink.add_raw(message.record, version, message.time_extracted)
            else:
                record = msgspec.json.decode(message.record)
                if not isinstance(record, dict):
                    raise BadMessageError(f"RECORD for stream '{sink.stream}' is not an object")
                mapped = stream_map.transform(record)
                if mapped is None:
                    continue
                self._pending_bytes += sink.add_dict(mapped, version, message.time_extracted)
            self._pending_records += 1
        # The limits count all streams together: memory stays bounded however many there are.
        if (
            self._pending_records >= self._batch_size
            or self._pending_bytes >= MAX_BATCH_BYTES
            or time.monotonic() - self._batch_started >= self._max_age
        ):
            self.flush()

    def _process_state_message(self, message: Message) -> None:  # type: ignore[override]
        value = message.value
        if value is None or (value == {} and self._state):
            self.logger.warning("Ignoring an empty STATE message after a non-empty one")
            return
        self._state = value
        # Nothing pending and the loader idle: commit and emit the state right away. Otherwise
        # it goes with the next flush: a commit of its own behind a load in flight measured
        # 20 % more DuckDB time (an extra checkpoint per batch).
        idle = self._database is None or not self._database.busy
        if idle and not any(sink.pending for sink in self._sinks.values()):
            self.flush()

    def _process_activate_version_message(self, message: Message) -> None:  # type: ignore[override]
        stream = _stream_of(message, "ACTIVATE_VERSION")
        version = _version_of(message, required=True)
        if stream not in self._routes:
            raise UnknownStreamError(f"ACTIVATE_VERSION for stream '{stream}' before its SCHEMA")
        if not self.config.get("process_activate_version_messages", True):
            self.logger.warning("Ignoring ACTIVATE_VERSION for '%s' (disabled)", stream)
            return
        self.flush()
        for sink, _ in self._routes[stream]:
            sink.activate_version(version)

    def _process_batch_message(self, message: Message) -> None:  # type: ignore[override]
        raise BadMessageError("BATCH messages are not supported by target-duckdb")

    # Flushing and state

    def flush(self) -> None:
        """Commit every pending batch and the latest state in one transaction, then emit it.

        The load runs on the database's loader thread while the next batch is read; the
        state goes to stdout only after its transaction committed.
        """
        self._batch_started = time.monotonic()
        self._pending_records = self._pending_bytes = 0
        if self._closed:
            return
        batches = [sink.take_batch() for sink in self._sinks.values() if sink.pending]
        state = msgspec.json.encode(self._state) if self._state is not None else None
        if not batches and state == self._committed_state:
            return
        new_state = state if state != self._committed_state else None
        self._committed_state = state
        database = self.database
        state_id = self.config.get("state_id", "default")
        if new_state is not None:
            database.ensure_state_table()

        def commit() -> None:
            started = time.perf_counter()
            with database.transaction():
                loaded = sum(batch.load(database) for batch in batches)
                if new_state is not None:
                    database.save_state(state_id, new_state.decode())
            if loaded:
                self.logger.info(
                    "Committed %d records from %d streams in %.2fs",
                    loaded,
                    len(batches),
                    time.perf_counter() - started,
                )
            if new_state is not None:
                sys.stdout.write(new_state.decode() + "\n")
                sys.stdout.flush()

        database.submit(commit)

    def finish(self) -> None:
        """Flush whatever is pending, wait for it to commit, then close."""
        try:
            self.flush()
            if self._database is not None:
                self._database.wait()
        finally:
            self.close()

    def _reading_stopped(self, error: BaseException) -> None:
        """The reader stops on `error`: what arrived before a bad line or a signal is
        committed (and its state emitted); after any other error the file is released.
        """
        if not isinstance(error, InputError | Terminated):
            self.close()
            return
        try:
            self.finish()
        except DatabaseError as flush_error:
            if isinstance(error, Terminated):
                raise
            _report(flush_error)

    def process_endofpipe(self) -> None:
        """End of input: commit and emit the last state."""
        self.finish()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: stop reading, then flush, commit, emit and exit 0.

        While the reader waits for input the signal interrupts the wait; while a message
        is being processed it is finished first, so no batch is left half-built.
        """
        _ = frame
        self.logger.info("Received signal %d: committing and stopping", signum)
        reader = self.message_reader
        if not isinstance(reader, MessageReader):  # still starting up: nothing to commit
            raise Terminated
        reader.stop_requested = True
        if reader.waiting:
            raise Terminated

    # CLI

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        file_input: t.IO[str] | None = None,
    ) -> None:
        """Run the target; errors become one line on stderr and a non-zero exit."""
        if about:
            super().invoke(about=about, about_format=about_format, config=config)
        config_paths = config.config if config else None
        parse_env = config.parse_env if config else False
        target: TargetDuckDB | None = None
        try:
            # The file opens at the first message, not before: in `tap --state
            # <(target-duckdb-state ...) | target-duckdb` the state command must read it first.
            target = cls(config=config_paths, validate_config=True, parse_env_config=parse_env)
            target.listen(file_input)
        except Terminated:
            sys.exit(0)
        except TargetError as error:
            if target is not None:
                target.close()
            _report(error)
            sys.exit(1)


def _report(error: BaseException) -> None:
    sys.stderr.write(f"target-duckdb: error: {error}\n")
    sys.stderr.flush()


def _stream_of(message: Message, kind: str) -> str:
    if not isinstance(message.stream, str) or not message.stream:
        raise BadMessageError(f"{kind} message has no 'stream'")
    return message.stream


def _version_of(message: Message, *, required: bool) -> int | None:
    version = message.version
    if version is None and not required:
        return None
    if not isinstance(version, int) or isinstance(version, bool):
        raise BadMessageError(f"'version' must be an integer, got {version!r}")
    return version
