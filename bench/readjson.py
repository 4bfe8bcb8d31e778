"""``python -m bench.readjson NDJSON_DIR DB``: DuckDB's own ``read_json`` as a reference.

Loads every ``<stream>.ndjson`` of ``NDJSON_DIR`` into table ``<stream>`` of a new
DuckDB file (column types detected by DuckDB) and prints ``{"records", "seconds"}`` as
JSON, timing only the loads and the closing checkpoint, not Python's or DuckDB's startup.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import orjson


def load(ndjson_dir: Path, db_path: Path) -> tuple[int, float]:
    """Load the files; return (rows loaded, seconds)."""
    files = sorted(ndjson_dir.glob("*.ndjson"))
    db_path.unlink(missing_ok=True)
    connection = duckdb.connect(str(db_path))
    started = time.perf_counter()
    rows = 0
    for path in files:
        table = '"' + path.stem.replace('"', '""') + '"'
        connection.execute(
            f"CREATE TABLE {table} AS SELECT * FROM read_json(?, format = 'newline_delimited', "
            "sample_size = -1)",
            [str(path)],
        )
        rows += connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    connection.close()
    return rows, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readjson", description=__doc__)
    parser.add_argument("ndjson_dir", type=Path)
    parser.add_argument("db", type=Path)
    args = parser.parse_args(argv)
    rows, seconds = load(args.ndjson_dir, args.db)
    sys.stdout.write(orjson.dumps({"records": rows, "seconds": seconds}).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
