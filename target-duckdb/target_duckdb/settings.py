"""The target's settings: their JSON Schema, and one line naming the setting that is wrong.

The SDK would log a list of jsonschema messages and, for a config file that is not JSON, a
traceback; these checks run first and raise ConfigError (`config: <setting> ...`).
"""

from __future__ import annotations

import copy
import typing as t
from pathlib import Path

import duckdb
import jsonschema
import msgspec
from singer_sdk import typing as th

from target_duckdb.connection import Kind
from target_duckdb.database import DEFAULT_MEMORY_LIMIT
from target_duckdb.errors import ConfigError

DEFAULT_BATCH_SIZE_ROWS = 10_000

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "path",
        th.StringType,
        required=True,
        title="DuckDB file or lake",
        description=(
            "Path of the DuckDB database file, created (with its folder) if missing; or a "
            "DuckLake, 'ducklake:postgres:dbname=... host=...' (several targets may write "
            "it at once); or MotherDuck, 'md:<database>'."
        ),
    ),
    th.Property(
        "data_path",
        th.StringType,
        title="DuckLake data path",
        description=(
            "Folder (or object storage URL) of a DuckLake's Parquet files; needed to create "
            "the lake, then optional (the lake remembers it). Only with a ducklake: path."
        ),
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
        th.IntegerType(minimum=1),
        default=DEFAULT_BATCH_SIZE_ROWS,
        description="Flush (commit all streams and emit the state) when the streams together "
        "hold this many records.",
    ),
    th.Property(
        "max_batch_age_seconds",
        th.NumberType(exclusive_minimum=0),
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
        description="How long to retry opening a DuckDB file locked by another process "
        "(a DuckLake has no lock: its writers' commits are checked against each other).",
    ),
).to_dict()


def read_files(paths: t.Iterable[str]) -> dict[str, t.Any]:
    """The settings of the config files (later files override earlier ones)."""
    config: dict[str, t.Any] = {}
    for path in paths:
        try:
            settings = msgspec.json.decode(Path(path).read_bytes())
        except OSError as error:
            raise ConfigError("file", f"{path} cannot be read: {error.strerror}") from error
        except msgspec.DecodeError as error:
            raise ConfigError("file", f"{path} is not JSON: {error}") from error
        if not isinstance(settings, dict):
            raise ConfigError("file", f"{path} does not hold a JSON object")
        config.update(settings)
    return config


def check(config: t.Mapping[str, t.Any], schema: dict) -> None:
    """Raise ConfigError for the first setting `schema` (the full schema) refuses."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    for error in sorted(validator.iter_errors(dict(config)), key=lambda e: list(e.path)):
        if error.validator == "required":
            missing = [name for name in error.validator_value if name not in config]
            raise ConfigError(missing[0] if missing else "", "is required")
        setting = ".".join(str(part) for part in error.path) or "(root)"
        value = error.instance
        if error.validator == "type":
            expected = error.validator_value
            expected = [expected] if isinstance(expected, str) else expected
            wanted = " or ".join(kind for kind in expected if kind != "null")
            raise ConfigError(setting, f"must be {_article(wanted)}, got {value!r}")
        if error.validator == "enum":
            allowed = ", ".join(repr(option) for option in error.validator_value)
            raise ConfigError(setting, f"must be one of {allowed}, got {value!r}")
        if error.validator == "minimum":
            raise ConfigError(setting, f"must be {error.validator_value} or more, got {value!r}")
        if error.validator == "exclusiveMinimum":
            raise ConfigError(setting, f"must be more than {error.validator_value}, got {value!r}")
        raise ConfigError(setting, f"is invalid: {error.message}")
    if "memory_limit" in config:
        _check_memory_limit(config["memory_limit"])
    if config.get("data_path") and Kind.of(str(config.get("path", ""))) is not Kind.LAKE:
        raise ConfigError("data_path", "applies only to a DuckLake path (ducklake:...)")


def _check_memory_limit(value: str) -> None:
    """Refuse a memory_limit DuckDB would refuse, before any input is read (an empty input
    would otherwise never open the file, and the mistake would pass unnoticed)."""
    connection = duckdb.connect(":memory:")
    try:
        connection.execute(f"SET memory_limit = '{value.replace(chr(39), chr(39) * 2)}'")
    except duckdb.Error as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "refused"
        raise ConfigError(
            "memory_limit", f"{value!r} is not a size DuckDB accepts: {first}"
        ) from error
    finally:
        connection.close()


def full_schema(target_class: type) -> dict:
    """The target's settings schema with the SDK's built-in settings added."""
    schema = copy.deepcopy(target_class.config_jsonschema)
    target_class.append_builtin_config(schema)
    return schema


def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"
