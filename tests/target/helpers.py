"""Running target-duckdb in tests: as a real subprocess or through its CLI in-process."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import msgspec
from click.testing import CliRunner
from target_duckdb.target import TargetDuckDB

TARGET_COMMAND = [sys.executable, "-m", "target_duckdb"]


@dataclass
class Result:
    """Exit code and output of one target run."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def states(self) -> list[object]:
        """The STATE values the target emitted, in order."""
        return [msgspec.json.decode(line) for line in self.stdout.splitlines() if line.strip()]


def to_lines(messages: list[dict | str]) -> str:
    """Messages (dicts, or raw strings kept as they are) as newline-terminated lines."""
    return "".join(
        (m if isinstance(m, str) else msgspec.json.encode(m).decode()) + "\n" for m in messages
    )


def to_bytes(messages: list[dict | str | bytes]) -> bytes:
    """Like `to_lines`, as bytes; bytes entries are lines kept as they are (invalid UTF-8)."""
    return b"".join(
        (m if isinstance(m, bytes) else to_lines([m]).encode()[:-1]) + b"\n" for m in messages
    )


def write_config(tmp_path: Path, **settings: object) -> Path:
    """A config file for a DuckDB file in tmp_path (override any setting by keyword)."""
    config = {"path": str(tmp_path / "out.duckdb"), "lock_timeout_seconds": 0, **settings}
    path = tmp_path / "target.json"
    path.write_bytes(msgspec.json.encode(config))
    return path


def run(tmp_path: Path, messages: list[dict | str | bytes], **settings: object) -> Result:
    """Run the target CLI in-process on the messages."""
    config = write_config(tmp_path, **settings)
    input_path = tmp_path / "input.singer"
    input_path.write_bytes(to_bytes(messages))
    result = CliRunner().invoke(
        TargetDuckDB.cli, ["--config", str(config), "--input", str(input_path)]
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result.exit_code, result.stdout, result.stderr)


def run_process(tmp_path: Path, messages: list[dict | str | bytes], **settings: object) -> Result:
    """Run the target as a real subprocess reading stdin."""
    config = write_config(tmp_path, **settings)
    completed = subprocess.run(
        [*TARGET_COMMAND, "--config", str(config)],
        input=to_bytes(messages),
        capture_output=True,
        timeout=60,
        check=False,
    )
    return Result(completed.returncode, completed.stdout.decode(), completed.stderr.decode())


def query(tmp_path: Path, sql: str) -> list[tuple]:
    """Rows of a query against the run's DuckDB file (opened read-only)."""
    connection = duckdb.connect(str(tmp_path / "out.duckdb"), read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def column_types(tmp_path: Path, table: str, schema: str = "main") -> dict[str, str]:
    """Column name → DuckDB type of a table."""
    rows = query(
        tmp_path,
        "SELECT column_name, data_type FROM duckdb_columns() "
        f"WHERE schema_name = '{schema}' AND table_name = '{table}' ORDER BY column_index",
    )
    return dict(rows)


def schema_message(stream: str, properties: dict, keys: list[str] | None = None) -> dict:
    """A SCHEMA message."""
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"type": "object", "properties": properties},
        "key_properties": ["id"] if keys is None else keys,
    }


def record(stream: str, **values: object) -> dict:
    """A RECORD message."""
    return {"type": "RECORD", "stream": stream, "record": values}


def state(value: object) -> dict:
    """A STATE message."""
    return {"type": "STATE", "value": value}
