"""Benchmark of the target alone on Stripe-sized records (run by hand from the repo root):

    .venv/bin/python -m bench.target --records 100000

It writes a Singer file of charge-like records (~2.8 KB, nested), then measures
1. `target-duckdb` reading that file on stdin into a new DuckDB file (records/s, max RSS), and
2. DuckDB's own `read_json` loading the same records from NDJSON with declared columns,
and prints one line per figure with the command that produced it.
"""

from __future__ import annotations

import argparse
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import msgspec
from target_duckdb import types

from tests.target.stripe_records import SCHEMA, singer_lines


def _write_inputs(directory: Path, count: int) -> tuple[Path, Path]:
    singer = directory / "charges.singer"
    ndjson = directory / "charges.ndjson"
    with singer.open("wb") as singer_file, ndjson.open("wb") as ndjson_file:
        for line in singer_lines(count):
            singer_file.write(line)
            message = msgspec.json.decode(line)
            if message["type"] == "RECORD":
                ndjson_file.write(msgspec.json.encode(message["record"]) + b"\n")
    return singer, ndjson


def _target(directory: Path, singer: Path, settings: dict) -> tuple[float, float, str]:
    config = directory / "target.json"
    config.write_bytes(msgspec.json.encode({"path": str(directory / "bench.duckdb"), **settings}))
    command = [sys.executable, "-m", "target_duckdb", "--config", str(config)]
    started = time.perf_counter()
    with singer.open("rb") as stdin:
        subprocess.run(
            command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )
    elapsed = time.perf_counter() - started
    max_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return elapsed, max_rss_mb, f"{shlex.join(command)} < {singer}"


def _read_json(directory: Path, ndjson: Path) -> tuple[float, str]:
    columns = {name: types.column_type(prop) for name, prop in SCHEMA["properties"].items()}
    spec = ", ".join(f"'{name}': '{type_}'" for name, type_ in columns.items())
    sql = (
        f"CREATE TABLE charge AS SELECT * FROM read_json('{ndjson}', columns = {{{spec}}}, "
        "format = 'newline_delimited')"
    )
    connection = duckdb.connect(str(directory / "read_json.duckdb"))
    started = time.perf_counter()
    connection.execute(sql)
    connection.close()
    return (
        time.perf_counter() - started,
        "duckdb: CREATE TABLE charge AS SELECT * FROM read_json(...)",
    )


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch-size-rows", type=int, default=None)
    arguments = parser.parse_args()
    settings = {}
    if arguments.batch_size_rows:
        settings["batch_size_rows"] = arguments.batch_size_rows
    with tempfile.TemporaryDirectory(prefix="target-duckdb-bench-") as name:
        directory = Path(name)
        singer, ndjson = _write_inputs(directory, arguments.records)
        size = ndjson.stat().st_size / arguments.records
        elapsed, rss, command = _target(directory, singer, settings)
        baseline, baseline_command = _read_json(directory, ndjson)
    count = arguments.records
    print(f"records: {count:,} charge-like records, {size:,.0f} bytes each as JSON")
    print(f"target-duckdb: {count / elapsed:,.0f} records/s, max RSS {rss:,.0f} MB  [{command}]")
    print(f"read_json:     {count / baseline:,.0f} records/s  [{baseline_command}]")
    print(f"ratio target / read_json: {baseline / elapsed:.2f}")


if __name__ == "__main__":
    main()
