"""TargetDuckDB: Singer messages in, DuckDB tables out, states out only once committed.

The target routes messages: a SCHEMA makes or updates its streams' sinks (through the
stream maps; `names.Tables` gives each its table), a RECORD goes to them as its raw text
(`sinks.Sink.add_raw`, the fast path), a STATE to `commit.States`, an ACTIVATE_VERSION to
the sinks after a flush. A flush, when the batches reach their size, byte or age limit,
hands each sink's batch to a `commit.Commit`: the rule that commits data and state together
lives in `commit`, the load of a batch in `database.Database.load_batch`.

The rule for a rejected line (any InputError, whatever its cause) lives here: the records
of earlier lines are committed with the last state received before the line, that state
is emitted, and the line is reported. A load DuckDB refuses is traced back to its input
line by `commit.Commit`.
"""

from __future__ import annotations

import gc
import shutil
import sys
import tempfile
import time
import typing as t

import click
import msgspec
from singer_sdk import Target
from singer_sdk.exceptions import MapExpressionError, StreamMapConfigError
from singer_sdk.helpers.capabilities import PluginCapabilities, TargetCapabilities
from singer_sdk.mapper import RemoveRecordTransform, SameRecordTransform
from singer_sdk.plugin_base import _ConfigInput

from target_duckdb import names, settings
from target_duckdb.commit import States
from target_duckdb.database import DEFAULT_MEMORY_LIMIT, Database
from target_duckdb.errors import (
    BadMessageError,
    BadSchemaError,
    InputError,
    LoadError,
    TargetError,
    UnknownStreamError,
)
from target_duckdb.messages import Message, MessageReader, Terminated
from target_duckdb.schemas import check_schema
from target_duckdb.settings import CONFIG_SCHEMA, DEFAULT_BATCH_SIZE_ROWS
from target_duckdb.sinks import Sink, SinkSettings
from target_duckdb.state_table import STATE_TABLE
from target_duckdb.table_history import TableHistory

if t.TYPE_CHECKING:
    from types import FrameType

    from singer_sdk.mapper import StreamMap

# Flush when the batches hold this many bytes of JSON, whatever their row count, so memory
# stays flat for very large records.
MAX_BATCH_BYTES = 32 * 1024 * 1024


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
        self._tables = names.Tables(
            self.config.get("default_target_schema"), (self.state_schema, STATE_TABLE)
        )
        self._history = TableHistory()
        self._states = States(self.config.get("state_id", "default"))
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
                data_path=self.config.get("data_path"),
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
        return SinkSettings.of(self.config, self.database, self._temp_dir, self.initialized_at)

    def close(self) -> None:
        """Release the database file and temporary files (for good)."""
        self._closed = True
        if self._database is not None:
            self._database.close()
            self._database = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

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
                schema_name, table = self._tables.claim(alias)
                sink = Sink(
                    stream=alias,
                    schema_name=schema_name,
                    table=table,
                    schema=stream_map.transformed_schema,
                    key_properties=map_keys,
                    settings=self._settings(),
                    history=self._history,
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
        line = self.message_reader.line_number
        for sink, stream_map in routes:
            if stream_map is None:
                self._pending_bytes += sink.add_raw(
                    message.record, version, message.time_extracted, line
                )
            else:
                try:
                    record = msgspec.json.decode(message.record)
                except msgspec.DecodeError as error:
                    raise BadMessageError(f"RECORD for stream '{sink.stream}': {error}") from error
                if not isinstance(record, dict):
                    raise BadMessageError(f"RECORD for stream '{sink.stream}' is not an object")
                mapped = stream_map.transform(record)
                if mapped is None:
                    continue
                self._pending_bytes += sink.add_dict(mapped, version, message.time_extracted, line)
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
        if value is None:
            raise BadMessageError("STATE message has no 'value'")
        if value == {} and self._states.latest:
            self.logger.warning(
                "Ignoring STATE {} at input line %d: an empty state never replaces a non-empty one",
                self.message_reader.line_number,
            )
            return
        self._states.receive(self.message_reader.line_number, value)
        # Nothing pending and the loader idle: commit and emit the state right away. Otherwise
        # it goes with the next flush: a commit of its own behind a load in flight measured
        # 20 % more DuckDB time (an extra checkpoint per batch).
        idle = self._database is None or not self._database.busy
        if idle and not any(sink.pending for sink in self._sinks.values()):
            self.flush()

    def _process_activate_version_message(self, message: Message) -> None:  # type: ignore[override]
        stream = _stream_of(message, "ACTIVATE_VERSION")
        version = _version_of(message, required=True)
        scope = _scope_of(message)
        if stream not in self._routes:
            raise UnknownStreamError(f"ACTIVATE_VERSION for stream '{stream}' before its SCHEMA")
        if not self.config.get("process_activate_version_messages", True):
            self.logger.warning("Ignoring ACTIVATE_VERSION for '%s' (disabled)", stream)
            return
        self.flush()
        for sink, _ in self._routes[stream]:
            sink.activate_version(version, scope)

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
        commit = self._states.commit(batches)
        if commit is not None:
            commit.submit(self.database)

    def finish(self) -> None:
        """Flush whatever is pending, wait for it to commit, then close."""
        try:
            self.flush()
            if self._database is not None:
                self._database.wait()
                self._database.states.prune(self._states.state_id)
        finally:
            self.close()

    def _reading_stopped(self, error: BaseException) -> None:
        """The reader stops on `error`: what arrived before a bad line or a signal is
        committed (and its state emitted); after any other error the file is released.

        A failed load committed what came before its own line already, and nothing after
        it may be. When committing raises (an earlier line's load failed), that error, the
        earlier line's, is the one reported.
        """
        if isinstance(error, LoadError) or not isinstance(error, InputError | Terminated):
            self.close()
            return
        if isinstance(error, InputError) and error.line_number is not None:
            for sink in self._sinks.values():  # a line routed to several streams, half added
                sink.discard_from(error.line_number)
        self.finish()

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
        target: TargetDuckDB | None = None
        try:
            config_dict = config.config if config else {}
            parse_env = config.parse_env if config else False
            settings.check(
                {**config_dict, **(cls._env_var_config if parse_env else {})},
                settings.full_schema(cls),
            )
            # The file opens at the first message, not before: in `tap --state
            # <(target-duckdb-state ...) | target-duckdb` the state command must read it first.
            target = cls(config=config_dict, validate_config=True, parse_env_config=parse_env)
            # What exists now (mostly the modules imported) lives as long as the process: out
            # of the collector's sight, the exit no longer spends 70-140 ms collecting it
            # (20-25 ms left, measured on the benchmark's target-alone run).
            gc.freeze()
            target.listen(file_input)
        except Terminated:
            sys.exit(0)
        except TargetError as error:
            if target is not None:
                target.close()
            _report(error)
            sys.exit(1)

    @classmethod
    def cb_config(  # type: ignore[override]
        cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]
    ) -> _ConfigInput:
        """Read the config files; one that cannot be read is one line and exit code 1."""
        _ = param
        try:
            config = settings.read_files(path for path in value if path != "ENV")
        except TargetError as error:
            _report(error)
            ctx.exit(1)
        return _ConfigInput(config=config, parse_env="ENV" in value)


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


def _scope_of(message: Message) -> dict[str, t.Any] | None:
    """An ACTIVATE_VERSION's `scope`: the version covers only rows whose columns hold these
    values (one lake, many Stripe accounts: `{"_stripe_account": "acct_..."}`)."""
    scope = message.scope
    if scope is None:
        return None
    if not isinstance(scope, dict) or not all(
        isinstance(value, str | int | float | bool) or value is None for value in scope.values()
    ):
        raise BadMessageError(
            f"ACTIVATE_VERSION 'scope' must be an object of column names to scalar values, "
            f"got {msgspec.json.encode(scope).decode()[:200]}"
        )
    return scope
