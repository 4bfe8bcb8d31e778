"""One sink per stream: the record path, from a RECORD's text to a line of the stream's batch.

The record path is built for speed: each stream gets a msgspec Struct type generated from
its table's columns, so one C-level decode checks every top-level value against its column
type, rejects properties the table does not have, and leaves nested objects and arrays as
raw JSON text (never parsed into Python objects). A record that passes goes into the batch
as the very text it arrived as. Anything unusual (an unknown property, a value a column
cannot hold, stream maps, full JSON Schema validation) takes the slower dict path, which
adds or widens columns so that no value is lost.

Each pending record keeps its input line number (an int beside its text), so that a load
DuckDB refuses can be traced to the input line of the record it fails on (see `commit`).
A flush takes the pending records as a `batch.Batch`; `Database.load_batch` loads it. The
table's columns live in `columns`, the SCHEMA checks in `schemas`.
"""

from __future__ import annotations

import datetime
import logging
import operator
import os
import tempfile
import typing as t
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import msgspec

from target_duckdb import names, types
from target_duckdb.batch import Batch, last_per_key
from target_duckdb.columns import SDC_COLUMNS, SDC_SCHEMAS, VERSION_COLUMNS, Columns
from target_duckdb.database import EXACT_KEYS, Database
from target_duckdb.errors import (
    BadMessageError,
    BadSchemaError,
    InvalidRecordError,
    MissingKeyError,
)
from target_duckdb.schemas import allowed, check_schema, json_kind, validator
from target_duckdb.table_history import TableHistory

logger = logging.getLogger("target-duckdb")

_RAW_NULL = msgspec.Raw(b"null")
_INT64 = t.Annotated[int, msgspec.Meta(ge=types.INT64_MIN, le=types.INT64_MAX)]
_FIELD_TYPES: dict[str, t.Any] = {
    types.BIGINT: _INT64 | None,
    types.DOUBLE: float | None,
    types.BOOLEAN: bool | None,
    types.TIMESTAMPTZ: datetime.datetime | None,
    types.DATE: datetime.date | None,
}


@dataclass(frozen=True)
class SinkSettings:
    """Settings shared by every sink of a run."""

    database: Database
    temp_dir: str
    load_method: str | None
    hard_delete: bool
    add_record_metadata: bool
    validate_records: bool
    fail_on_invalid: bool
    sync_started_at: int

    @classmethod
    def of(
        cls, config: Mapping[str, t.Any], database: Database, temp_dir: str, sync_started_at: int
    ) -> SinkSettings:
        """The sink settings of a run's config."""
        return cls(
            database=database,
            temp_dir=temp_dir,
            load_method=config.get("load_method"),
            hard_delete=bool(config.get("hard_delete")),
            add_record_metadata=bool(config.get("add_record_metadata")),
            validate_records=bool(config.get("validate_records")),
            fail_on_invalid=config.get("on_invalid_record", "fail") == "fail",
            sync_started_at=sync_started_at,
        )


_SCALAR_FIELDS: dict[str, t.Any] = {"string": str, "integer": int, "number": float, "boolean": bool}


def _text_field(kinds: frozenset[str]) -> t.Any:
    """The fast path's field type for a VARCHAR column: the scalars its schema allows (their
    text is what DuckDB stores), or None (raw JSON) when it allows objects or arrays.
    """
    members = kinds - {"null"}
    if not members or not members <= _SCALAR_FIELDS.keys():
        return None
    field: t.Any = None
    for kind in sorted(members):
        field = _SCALAR_FIELDS[kind] | field
    return field


class Sink:
    """Checks and batches one stream's records; a flush takes them as a Batch."""

    def __init__(
        self,
        *,
        stream: str,
        schema_name: str,
        table: str,
        schema: dict,
        key_properties: Sequence[str],
        settings: SinkSettings,
        history: TableHistory,
    ) -> None:
        """Create or evolve the table for the stream's schema (`history`: the run's)."""
        self.stream = stream
        self.schema_name = schema_name
        self.table = table
        self.settings = settings
        self._db = settings.database
        self._history = history
        self._table_id = f"{schema_name}.{table}"
        handle, self._file = tempfile.mkstemp(dir=settings.temp_dir, suffix=".json")
        os.close(handle)
        self.columns = Columns(self._db, schema_name, table, stream)
        self._texts: list[bytes | msgspec.Raw] = []
        self._lines: list[int] = []
        self._keys: list[t.Any] | None = None
        self._legacy_keys: tuple[str, ...] = ()
        self._legacy_of: tuple[str, ...] | None = None  # the keys _legacy_keys was found for
        self.update_schema(schema, key_properties)
        if self.columns.created and not self._db.kind.shared:  # only this run writes it
            history.track(self._table_id)

    # Schema and columns

    def update_schema(self, schema: dict, key_properties: Sequence[str]) -> None:
        """Adopt a (new) SCHEMA: add and widen columns, never drop any."""
        properties = dict(check_schema(self.stream, schema))
        if self.settings.add_record_metadata:
            for name, type_ in SDC_COLUMNS.items():
                properties.setdefault(name, SDC_SCHEMAS[type_])
        missing = [key for key in key_properties if key not in properties]
        if missing:
            raise BadSchemaError(
                f"SCHEMA for stream '{self.stream}' lacks its key properties {missing}"
            )
        for name in properties:
            self.columns.claim(name)
        self.key_properties = list(key_properties)
        self._kinds = {name: types.schema_kinds(prop) for name, prop in properties.items()}
        self._validator = validator(schema) if self.settings.validate_records else None
        self.columns.adopt({name: types.column_type(prop) for name, prop in properties.items()})
        if self._legacy_of != tuple(key_properties):  # asked once per key set
            self._history.forget(self._table_id)  # keys of other columns say nothing
            self._legacy_of = tuple(key_properties)
            self._legacy_keys = tuple(
                self._db.legacy_keys(self.schema_name, self.table, self.key_properties)
            )
        self._build_decoder()
        if not self._texts:
            self.start_batch()

    def _build_decoder(self) -> None:
        fields = []
        rename = {}
        raw_fields: set[str] = set()
        columns = self.columns.types
        for index, (name, type_) in enumerate(columns.items()):
            attribute = f"f{index}"
            rename[attribute] = name
            field_type = _FIELD_TYPES.get(type_)
            if type_ == types.VARCHAR:
                field_type = _text_field(self._kinds.get(name, frozenset({"string"})))
            if field_type is None:
                fields.append((attribute, msgspec.Raw, _RAW_NULL))
                raw_fields.add(name)
            else:
                fields.append((attribute, field_type, None))
        # msgspec cannot bound integers beyond int64 (HUGEINT columns) nor take every name
        # as a field: such streams take the dict path.
        self._fast = (
            self._validator is None
            and types.HUGEINT not in columns.values()
            and all(names.struct_safe(name) for name in columns)
        )
        # Whether the table-version columns exist, asked of every record with a version.
        self._versioned = self.columns.versioned()
        if self._fast:
            struct = msgspec.defstruct("Record", fields, rename=rename, forbid_unknown_fields=True)
            self._decoder = msgspec.json.Decoder(struct)
        self._encoder = msgspec.json.Encoder()
        attributes = {name: attribute for attribute, name in rename.items()}
        self._attributes = attributes
        self._key_getter: Callable[[t.Any], t.Any] | None = (
            operator.attrgetter(*(attributes[key] for key in self.key_properties))
            if self.key_properties
            else None
        )
        self._plain_keys = bool(self.key_properties) and not raw_fields & set(self.key_properties)

    # Records

    @property
    def method(self) -> str:
        """The load method for this stream (upsert by default when it has keys)."""
        method = self.settings.load_method or ("upsert" if self.key_properties else "append-only")
        return "append-only" if method == "upsert" and not self.key_properties else method

    @property
    def pending(self) -> int:
        """Records waiting for the next load (every version of a key counts)."""
        return len(self._texts)

    def add_raw(
        self, raw: bytes, version: int | None, time_extracted: str | None, line: int
    ) -> int:
        """Add a record given as its raw JSON text (the fast path), of input line `line`;
        returns its size."""
        if version is not None:
            self._ensure_version_columns()
        if self._fast:
            try:
                record = self._decoder.decode(raw)
            except msgspec.DecodeError:
                pass  # the dict path below decides (or reports the line is not JSON)
            else:
                if self._plain_keys:
                    key = _present(self._key_getter(record), self.stream, self.key_properties)
                else:
                    key = self._key(record, self._key_getter)
                if self.settings.add_record_metadata or version is not None:
                    self._stamp_struct(record, version, time_extracted)
                    return self._append(key, self._encoder.encode(record), line)
                # The decode proved every value fits its column: load the text as sent.
                return self._append(key, raw, line)
        try:
            value = msgspec.json.decode(raw)
        except msgspec.DecodeError as error:
            raise BadMessageError(f"RECORD for stream '{self.stream}': {error}") from error
        if not isinstance(value, dict):
            raise BadMessageError(f"RECORD for stream '{self.stream}' is not a JSON object")
        return self.add_dict(value, version, time_extracted, line, raw=raw)

    def add_dict(
        self,
        record: dict,
        version: int | None,
        time_extracted: str | None,
        line: int,
        *,
        raw: bytes | msgspec.Raw | None = None,
    ) -> int:
        """Add a record given as a dict (stream maps, unusual records, validation).

        `raw` is the record's own JSON text when `record` is its unmodified decoding.
        Returns the size of the record's JSON.
        """
        if version is not None:
            self._ensure_version_columns()
        key = self._key(record, _dict_key_getter(self.key_properties))
        if self._validator is not None:
            error = self._validator(record)
            if error is not None:
                self._invalid(error, line)
        changed = False
        check_kinds = self._validator is None  # the full validation covers the kinds
        for name, value in record.items():
            kinds = self._kinds.get(name)
            kind = json_kind(value)
            if check_kinds and kinds is not None and not allowed(kind, value, kinds):
                self._invalid(
                    f"property '{name}' is {kind}, schema allows {', '.join(sorted(kinds))}",
                    line,
                )
            if name not in self.columns.claimed:
                if not name:
                    raise BadMessageError(
                        f"record for stream '{self.stream}' has a property with an empty name"
                    )
                self.columns.claim(name)
            table_name = self.columns.names.get(name.lower())
            if table_name is None:
                type_ = SDC_COLUMNS.get(name) or types.value_type(value)
                logger.warning(
                    "Stream '%s': property '%s' is not in its schema; adding column as %s",
                    self.stream,
                    name,
                    type_ or types.JSON,
                )
                changed |= self.columns.set(name, type_)
            elif table_name != name or not types.fits(self.columns.types[table_name], value):
                changed |= self.columns.set(name, types.value_type(value))
        if changed:
            self._build_decoder()
        if self.settings.add_record_metadata or version is not None:
            if raw is not None:
                # Top-level values as sent: nested objects keep their text, as on the fast path.
                record = msgspec.json.decode(raw, type=dict[str, msgspec.Raw])
            self._stamp_dict(record, version, time_extracted)
        elif raw is not None:
            return self._append(key, raw, line)
        return self._append(key, msgspec.json.encode(record), line)

    def _invalid(self, message: str, line: int) -> None:
        text = f"record for stream '{self.stream}' fails validation: {message}"
        if self.settings.fail_on_invalid:
            raise InvalidRecordError(text)
        logger.warning("input line %d: %s (loaded anyway)", line, text)

    def _key(self, record: t.Any, getter: Callable[[t.Any], t.Any] | None) -> t.Any:
        if getter is None:
            return None
        key = getter(record)
        key = tuple(map(_hashable, key)) if isinstance(key, tuple) else _hashable(key)
        return _present(key, self.stream, self.key_properties)

    def _append(self, key: t.Any, text: bytes | msgspec.Raw, line: int) -> int:
        self._texts.append(text)
        self._lines.append(line)
        if self._keys is not None:
            self._keys.append(key)
        return len(text) + 1

    def _ensure_version_columns(self) -> None:
        if self._versioned:
            return
        for name in VERSION_COLUMNS:
            self.columns.set(name, SDC_COLUMNS[name])
        self._build_decoder()

    def _stamp_struct(self, record: t.Any, version: int | None, extracted: str | None) -> None:
        for name, value in _metadata(self.settings, version, extracted).items():
            setattr(record, self._attributes[name], value)

    def _stamp_dict(self, record: dict, version: int | None, extracted: str | None) -> None:
        record.update(_metadata(self.settings, version, extracted))

    # Batches

    def start_batch(self) -> None:
        """Start an empty batch; upserts also keep each record's key."""
        self._texts = []
        self._lines = []
        self._keys = [] if self.method == "upsert" else None

    def take_batch(self) -> Batch:
        """Hand the pending records over as a Batch and start a new one.

        Upserts load the last record per key; the records it replaced stay with the batch
        (rarely any), so that a load failing at a later line can still commit them.
        """
        texts, lines, keys = self._texts, self._lines, self._keys
        superseded: list[tuple[int, t.Any, bytes | msgspec.Raw]] = []
        replaced = None
        if keys is not None:
            texts, lines, keys, superseded = last_per_key(texts, lines, keys)
            kinds = [EXACT_KEYS.get(self.columns.types[key]) for key in self.key_properties]
            replaced = self._history.replaced(self._table_id, keys, kinds)
        batch = Batch(
            schema_name=self.schema_name,
            table=self.table,
            stream=self.stream,
            file=self._file,
            payload=b"\n".join(texts) + b"\n",
            lines=lines,
            record_keys=keys,
            replaced=replaced,
            superseded=superseded,
            columns=dict(self.columns.types),
            keys=list(self.key_properties),
            method=self._history.load_method(self._table_id, self.method),
            hard_delete=self.settings.hard_delete,
            legacy_keys=self._legacy_keys,
        )
        self.start_batch()
        return batch

    def discard_from(self, line: int) -> None:
        """Drop the pending records of input line `line` and later ones."""
        end = len(self._lines)
        while end and self._lines[end - 1] >= line:
            end -= 1
        del self._texts[end:], self._lines[end:]
        if self._keys is not None:
            del self._keys[end:]

    def activate_version(self, version: int, scope: Mapping[str, t.Any] | None = None) -> None:
        """Retire rows of older table versions; with a `scope`, only those whose columns
        hold its values."""
        self._ensure_version_columns()
        columns = self.columns.of_scope(scope or {}, f"ACTIVATE_VERSION for stream '{self.stream}'")
        self._db.activate_version(
            self.schema_name,
            self.table,
            version,
            hard_delete=self.settings.hard_delete,
            scope=columns,
        )


def _metadata(
    settings: SinkSettings, version: int | None, time_extracted: str | None
) -> dict[str, t.Any]:
    """The metadata values stamped on a record: its table version, or with
    `add_record_metadata` the SDK's set (`_sdc_deleted_at` is left to the record)."""
    if not settings.add_record_metadata:
        return {"_sdc_table_version": version}
    now = datetime.datetime.now(datetime.UTC)
    return {
        "_sdc_extracted_at": time_extracted,
        "_sdc_received_at": now,
        "_sdc_batched_at": now,
        "_sdc_sequence": int(now.timestamp() * 1000),
        "_sdc_table_version": version,
        "_sdc_sync_started_at": settings.sync_started_at,
    }


def _present(key: t.Any, stream: str, key_properties: Sequence[str]) -> t.Any:
    """`key`, unless it or one of its values is missing. (Keys the fast path decodes to
    scalars, `Sink._plain_keys`, are hashable as they come: no `_hashable`.)"""
    if key is None or (type(key) is tuple and None in key):
        raise MissingKeyError(f"record for stream '{stream}' lacks key properties {key_properties}")
    return key


def _hashable(value: t.Any) -> t.Any:
    """A key value usable in a dict: raw JSON and objects become their JSON text."""
    if isinstance(value, msgspec.Raw):
        return None if bytes(value) == b"null" else bytes(value)
    if isinstance(value, dict | list):
        return msgspec.json.encode(value)
    return value


def _dict_key_getter(keys: Sequence[str]) -> Callable[[dict], t.Any] | None:
    if not keys:
        return None
    if len(keys) == 1:
        (key,) = keys
        return lambda record: record.get(key)
    return lambda record: tuple(record.get(key) for key in keys)
