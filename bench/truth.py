"""``python -m bench.truth DB --sim URL``: every table the tap wrote against the simulator.

A table is equal to the truth when it holds exactly the simulator's objects, by key, each
row equal to its object field by field (JSON columns parsed), the columns the object
lacks NULL: the rule of the end-to-end tests (``tests/e2e/harness.py``). As there, the
objects' nested lists are complete (Stripe embeds their first 10 entries; the tap pages
the rest), and the lists the registry reads for the children only (a customer's
``sources``) are not in the parent's row. Three things differ from the tests, for size
and for the run's limits: the rest of a list is taken from the child table's truth, not
fetched again through the rate-limited API, so an entry there may or may not carry the
parent's id (see ``_with_parent_column``); and an event the simulator's 30-day window
dropped while the run went on is excused, not extra.

Prints one JSON object per table (``TableVerdict``) and exits 1 when one differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import orjson
from tap_stripe.tables import TABLES, TABLES_BY_NAME, TableSpec

from bench.warehouse import table_counts
from stripe_sim.dataset import EVENT_RETENTION
from stripe_sim.runner import SimHandle

TABLE_VERSION = "_sdc_table_version"
ACCOUNT_COLUMN = "_stripe_account"
WORKERS = 2
# Stripe embeds a nested list's first 10 entries in its parent.
FIRST_PAGE = 10


@dataclass(frozen=True)
class TableVerdict:
    """One table against the truth; ``aged``: events gone from the simulator's window."""

    table: str
    rows: int
    truth: int
    missing: int = 0
    extra: int = 0
    different: int = 0
    duplicates: int = 0
    aged: int = 0

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.different or self.duplicates)

    def describe(self) -> str:
        parts = [
            f"{n:,} {what}"
            for n, what in (
                (self.missing, "missing"),
                (self.extra, "extra"),
                (self.different, "different"),
                (self.duplicates, "duplicate keys"),
            )
            if n
        ]
        return f"{self.table} ({', '.join(parts)} of {self.truth:,})"


def compare_all(sim_url: str, db: Path, schema: str) -> list[TableVerdict]:
    """Every table of ``schema`` (the target's own tables left out) against the truth,
    by table name; :data:`WORKERS` tables at a time, the biggest first so that the
    workers finish together (most of the time goes to building Python objects of both
    sides' JSON, one core per table)."""
    counts = table_counts(db, schema)
    oldest_event = SimHandle(sim_url, api_key="").info()["now"] - EVENT_RETENTION
    names = sorted(counts, key=counts.__getitem__, reverse=True)
    one = functools.partial(_compare_table, sim_url, db, schema, oldest_event)
    with ProcessPoolExecutor(WORKERS) as pool:
        return sorted(pool.map(one, names), key=lambda verdict: verdict.table)


def _compare_table(
    sim_url: str, db: Path, schema: str, oldest_event: int, name: str
) -> TableVerdict:
    spec = TABLES_BY_NAME[name]
    sim = SimHandle(sim_url, api_key="")
    connection = duckdb.connect(str(db), read_only=True)
    try:
        rows = list(_rows(connection, schema, name, sim.account_id))
    finally:
        connection.close()
    return compare(spec, rows, truth(sim, spec), oldest_event)


def compare(
    spec: TableSpec, rows: list[dict[str, Any]], expected: list[dict[str, Any]], oldest_event: int
) -> TableVerdict:
    """``rows`` (the table's) against ``expected`` (the simulator's objects)."""
    if spec.snapshot_field is not None:  # a row per run: the latest is the object
        latest = max(rows, key=lambda row: row[spec.snapshot_field])
        latest.pop(spec.snapshot_field)
        same = len(expected) == 1 and _same(latest, expected[0])
        return TableVerdict(spec.name, len(rows), len(expected), different=int(not same))
    _with_parent_column(spec, rows)
    keys = spec.key_properties
    wanted = {_key(obj, keys): obj for obj in expected}
    found = {_key(row, keys): row for row in rows}
    extra = found.keys() - wanted.keys()
    aged = {key for key in extra if spec.name == "event" and found[key]["created"] < oldest_event}
    return TableVerdict(
        spec.name,
        len(rows),
        len(expected),
        missing=len(wanted.keys() - found.keys()),
        extra=len(extra - aged),
        different=sum(not _same(found[key], obj) for key, obj in wanted.items() if key in found),
        duplicates=len(rows) - len(found),
        aged=len(aged),
    )


def truth(sim: SimHandle, spec: TableSpec) -> list[dict[str, Any]]:
    """The simulator's objects of ``spec`` as the tap writes them: the lists read for the
    children only left out, the other nested lists complete."""
    objects = sim.objects(spec.name)
    for obj in objects:
        for field in spec.child_expand:
            obj.pop(field, None)
    for field in spec.nested_lists:
        if field not in spec.child_expand:
            _complete(sim, spec, field, objects)
    return objects


def _complete(sim: SimHandle, spec: TableSpec, field: str, parents: list[dict[str, Any]]) -> None:
    """Replace each cut ``field`` list of ``parents`` by all its entries, in order: its
    embedded first page, then the rest of the rows of the child table made of that list."""
    cut = [obj for obj in parents if (obj.get(field) or {}).get("has_more")]
    if not cut:
        return
    child = _child(spec, field)
    entries: dict[str, list[dict[str, Any]]] = {}
    for row in sim.objects(child.name):
        entries.setdefault(row[child.parent.column], []).append(row)
    for obj in cut:
        rest = entries.get(obj["id"], [])[FIRST_PAGE:]
        obj[field] = {**obj[field], "data": obj[field]["data"] + rest, "has_more": False}


def _child(spec: TableSpec, field: str) -> TableSpec:
    """The child table made of ``spec``'s nested list ``field``."""
    (child,) = (
        table
        for table in TABLES
        if table.parent is not None
        and table.parent.table == spec.name
        and table.parent.embedded_field == field
    )
    return child


def _with_parent_column(spec: TableSpec, rows: list[dict[str, Any]]) -> None:
    """Give the entries past the first page of the rows' nested lists the parent column,
    as the child table's truth has it: that truth adds it where Stripe's object has none
    (most of them at the pinned API version), so whether the simulator served it there
    is not known."""
    for field in spec.nested_lists:
        if field in spec.child_expand:
            continue
        column = _child(spec, field).parent.column
        for row in rows:
            for entry in (row.get(field) or {}).get("data", [])[FIRST_PAGE:]:
                entry.setdefault(column, row["id"])


def _rows(
    connection: duckdb.DuckDBPyConnection, schema: str, table: str, account: str
) -> Iterator[dict]:
    """The table's rows of ``account`` (the simulator's main one: a row of another is
    missing from the truth's side) as DuckDB renders them in JSON (JSON columns nested),
    without the account and the table version (it names the run that last read the
    table)."""
    cursor = connection.execute(
        f'SELECT to_json(t) FROM "{schema}"."{table}" t WHERE {ACCOUNT_COLUMN} = ?', [account]
    )
    while batch := cursor.fetchmany(10_000):
        for (text,) in batch:
            row = orjson.loads(text)
            row.pop(TABLE_VERSION, None)
            row.pop(ACCOUNT_COLUMN)
            yield row


def _key(obj: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(obj.get(name) for name in keys)


def _same(row: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    """Every field of the object in the row with its value, the row's other columns NULL."""
    return all(name in row and row[name] == value for name, value in obj.items()) and all(
        value is None for name, value in row.items() if name not in obj
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.truth", description=__doc__)
    parser.add_argument("db", type=Path, help="the DuckDB file the target wrote")
    parser.add_argument("--sim", required=True, help="the simulator's URL")
    parser.add_argument("--schema", default="stripe")
    args = parser.parse_args(argv)
    verdicts = compare_all(args.sim, args.db, args.schema)
    for verdict in verdicts:
        print(json.dumps({**dataclasses.asdict(verdict), "equal": verdict.equal}))
    return 0 if all(verdict.equal for verdict in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
