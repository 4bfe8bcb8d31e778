"""`target-duckdb-state`: print the last committed state, for `tap --state <(...)`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import msgspec

from target_duckdb.connection import Kind, NoLake
from target_duckdb.database import Database
from target_duckdb.errors import TargetError


def _config(paths: list[str]) -> dict:
    config: dict = {}
    for path in paths:
        try:
            config.update(msgspec.json.decode(Path(path).read_bytes()))
        except (OSError, msgspec.DecodeError) as error:
            raise TargetError(f"cannot read config file {path}: {error}") from error
    if "path" not in config:
        raise TargetError("config has no 'path'")
    return config


def last_state(config: dict) -> str:
    """The state persisted by the target for this config, as JSON text ('{}' if none: no
    file, no lake yet, no row of its state_id)."""
    path = str(config["path"])
    kind = Kind.of(path)
    if kind is Kind.MEMORY or (kind is Kind.FILE and not Path(path).expanduser().exists()):
        return "{}"
    try:
        database = Database(
            path,
            config.get("default_target_schema") or "main",
            lock_timeout=float(config.get("lock_timeout_seconds", 5)),
            read_only=True,
        )
    except NoLake:
        return "{}"
    try:
        return database.states.load(config.get("state_id") or "default") or "{}"
    finally:
        database.close()


def main(argv: list[str] | None = None) -> None:
    """Print the last persisted state as one JSON line."""
    parser = argparse.ArgumentParser(
        prog="target-duckdb-state",
        description="Print the last state target-duckdb committed, as JSON ({} if none).",
    )
    parser.add_argument("--config", action="append", required=True, help="target config file")
    arguments = parser.parse_args(argv)
    try:
        state = last_state(_config(arguments.config))
    except TargetError as error:
        sys.stderr.write(f"target-duckdb-state: error: {error}\n")
        sys.exit(1)
    print(state)  # after the file is closed: the target may be starting right now


if __name__ == "__main__":
    main()
