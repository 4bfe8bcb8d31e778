"""Run the real commands (tap, target, state, Meltano) and read what they left behind.

The pipes here are real processes connected the way a user connects them; the helpers
only write config files, start the commands and compare DuckDB tables with the
simulator's truth.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl

import duckdb
from tap_stripe.tables import TABLES, TABLES_BY_NAME, ReadMode, TableKind, TableSpec, platform_only

from stripe_sim.runner import SimHandle
from stripe_sim.tables import DERIVED

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TAP = BIN / "tap-stripe"
TARGET = BIN / "target-duckdb"
TARGET_STATE = BIN / "target-duckdb-state"
SCHEMA = "stripe"
STATE_TABLE = "_singer_state"
ACCOUNT_COLUMN = "_stripe_account"
# The tap's own table registry names the streams and their list endpoints.
STREAMS = tuple(sorted(table.name for table in TABLES))
TOP_LEVEL = tuple(table for table in TABLES if table.parent is None)
CHILDREN = frozenset(table.name for table in TABLES if table.parent is not None)
KEYS = {table.name: table.key_properties for table in TABLES}
LIST_PATHS = {table.path: table.name for table in TOP_LEVEL if not table.single_object}


def owner(table: TableSpec) -> TableSpec:
    """The top-level table whose reading writes ``table`` (itself, or its ancestor)."""
    while table.parent is not None:
        table = TABLES_BY_NAME[table.parent.table]
    return table


# Top-level tables whose updates and deletes the tap reads from /v1/events ("tracked":
# each keeps an events cursor), and the /v1/events filter each change-capture request
# carries -> the tracked table whose reading makes it (a child's own events: its parent).
TRACKED = tuple(sorted(table.name for table in TOP_LEVEL if table.event_types))
# Tables whose objects' events the tap folds: the tracked ones and children with events.
EVENTED = frozenset(table.name for table in TABLES if table.event_types) - {"event"}
DELETABLE = frozenset(table.name for table in TABLES if table.deletable or table.delete_event_types)
# Top-level tables read whole on every run (single objects, lists without events), and
# the others, which keep a ``created`` bookmark.
WHOLE = frozenset(table.name for table in TOP_LEVEL if table.replication_key is None)
BOOKMARKED = frozenset(table.name for table in TOP_LEVEL) - WHOLE
NEWEST_FIRST = frozenset(table.name for table in TABLES if table.read is ReadMode.NEWEST_FIRST)
# The tables a quiet run of the WHOLE ones writes: themselves and their children, but
# not the children listed per parent, listed only for parents changed since
# (``relisting.py``).
WRITTEN_WHOLE = frozenset(
    t.name for t in TABLES if owner(t).name in WHOLE and t.kind is not TableKind.PER_PARENT_CHILD
)
# Tables whose rows carry a table version: those with change capture (their full read),
# those read whole every run (each run's read retires the rows it did not see), and the
# children of either, written under their parent's version.
_VERSIONED_TOP = frozenset(TRACKED) | {t.name for t in TOP_LEVEL if t.read is ReadMode.FULL}
VERSIONED = _VERSIONED_TOP | {t.name for t in TABLES if owner(t).name in _VERSIONED_TOP}
EVENTS_PATH = "/v1/events"
# /v1/events requests of a quiet run: the one events pass, for every table's change
# capture and for the event table itself (whose own list it replaces).
EVENTS_REQUESTS = 1
# Columns the target adds to tracked tables: when a row was deleted from Stripe, and the
# table version (sync start) of the full read that last wrote it.
DELETED_AT = "_sdc_deleted_at"
TABLE_VERSION = "_sdc_table_version"
CHANGE_COLUMNS = frozenset({DELETED_AT, TABLE_VERSION})
LOOKBACK = 300  # the tap's default lookback_window
# Lists Stripe cuts at 10 entries and the tap completes: stream -> {field: path template}.
NESTED_LISTS = {table.name: dict(table.nested_lists) for table in TABLES if table.nested_lists}
SINGLE_PATHS = frozenset(table.path for table in TABLES if table.single_object)
# The table of a Stripe object, from its ``object`` field: the top-level tables, and the
# children with events of their own (a card, a payment method).
TABLE_OF_OBJECT = {
    kind: table.name
    for table in TABLES
    if table.parent is None or table.event_types
    for kind in table.object.split("|")
}


def _path_pattern(template: str) -> re.Pattern[str]:
    path = template.partition("?")[0]
    return re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)))


_NESTED_PATTERNS = tuple(
    _path_pattern(template)
    for templates in NESTED_LISTS.values()
    for template in templates.values()
)
# Children listed per parent: their list paths (those on a path of their own).
_LISTED_PATTERNS = tuple(
    _path_pattern(table.path)
    for table in TABLES
    if table.kind is TableKind.PER_PARENT_CHILD and table.path not in LIST_PATHS
)
# Retrieve paths of the children with events of their own (their re-fetches) -> table.
_CHILD_RETRIEVE_PATTERNS = tuple(
    (_path_pattern(table.retrieve), table.name)
    for table in TABLES
    if table.parent and table.retrieve
)


def is_nested_path(path: str) -> bool:
    """``path`` is one of the registry's nested-list endpoints."""
    return any(pattern.fullmatch(path) for pattern in _NESTED_PATTERNS)


def is_listed_child_path(entry: Mapping[str, Any]) -> bool:
    """The logged request lists one parent's rows of a child read per parent."""
    path = entry["path"]
    if any(pattern.fullmatch(path) for pattern in _LISTED_PATTERNS):
        return True
    query = parse_qs(entry.get("query", ""))
    return path == "/v1/balance_transactions" and "payout" in query


def child_refetch_table(path: str) -> str | None:
    """The child table one of whose rows ``path`` retrieves, if it does."""
    return next((t for pattern, t in _CHILD_RETRIEVE_PATTERNS if pattern.fullmatch(path)), None)


# Small enough for seconds per run, big enough for paging, split windows and nested lists.
# All data within the last 25 days, so no event crosses Stripe's 30-day retention mid-test.
SIM_KNOBS: dict[str, Any] = {
    "counts": {
        # Each table made from its shape alone: enough for a first page past ten children
        # (every 16th parent) and for the mutations, few enough to keep runs short.
        **dict.fromkeys(DERIVED, 17),
        "charge": 400,
        "customer": 60,
        "subscription": 50,
        "invoice": 120,
        "product": 8,
        "price": 16,
        "coupon": 6,
    },
    "days": 25,
}
RUN_TIMEOUT = 180


@dataclass(frozen=True)
class Configs:
    """The config files of one pipeline and the DuckDB file it writes."""

    tap: Path
    target: Path
    database: Path


def write_configs(
    folder: Path,
    sim: SimHandle,
    *,
    tap: Mapping[str, Any] | None = None,
    target: Mapping[str, Any] | None = None,
) -> Configs:
    """tap.json and target.json in ``folder``, pointing at ``sim`` and folder/warehouse.duckdb."""
    folder.mkdir(parents=True, exist_ok=True)
    database = folder / "warehouse.duckdb"
    tap_config = {
        "api_key": sim.api_key,
        "api_url": sim.url,
        # The simulator here has no limits (test_limits.py turns them on): no budgets.
        "max_requests_per_second": 0,
        "max_requests_per_second_per_endpoint": 0,
        "retry_backoff_seconds": 0.05,
        **(tap or {}),
    }
    target_config = {"path": str(database), "default_target_schema": SCHEMA, **(target or {})}
    (folder / "tap.json").write_text(json.dumps(tap_config))
    (folder / "target.json").write_text(json.dumps(target_config))
    return Configs(folder / "tap.json", folder / "target.json", database)


@dataclass(frozen=True)
class PipeRun:
    """What a finished pipe printed: the target's states, and both commands' logs."""

    states: str
    stderr: str


def run_pipe(
    configs: Configs,
    *,
    resume: bool = False,
    state: Path | None = None,
    catalog: Path | None = None,
    tap_output: Path | None = None,
    state_substitution: bool = False,
) -> PipeRun:
    """``tap-stripe | target-duckdb`` through bash; asserts it exits 0.

    ``resume`` first saves ``target-duckdb-state --config target.json`` and passes it as
    ``--state``; ``state`` passes a state file of the test's own instead;
    ``state_substitution`` runs the one-liner form,
    ``--state <(target-duckdb-state --config target.json)``. ``tap_output`` keeps a copy
    of the tap's messages (tee).
    """
    command = pipe_command(
        configs,
        resume=resume,
        state=state,
        catalog=catalog,
        tap_output=tap_output,
        state_substitution=state_substitution,
    )
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, (
        f"pipeline failed ({result.returncode}):\n{result.stderr[-3000:]}"
    )
    return PipeRun(result.stdout, result.stderr)


def pipe_command(
    configs: Configs,
    *,
    resume: bool = False,
    state: Path | None = None,
    catalog: Path | None = None,
    tap_output: Path | None = None,
    state_substitution: bool = False,
) -> str:
    """The bash command of ``run_pipe`` (which says what each option does)."""
    tap = [str(TAP), "--config", str(configs.tap)]
    if catalog is not None:
        tap += ["--catalog", str(catalog)]
    saved_state = shlex.join([str(TARGET_STATE), "--config", str(configs.target)])
    state_file = configs.tap.with_name("state.json")
    command = ""
    if resume:
        command = f"{saved_state} > {shlex.quote(str(state_file))} && "
        tap += ["--state", str(state_file)]
    elif state is not None:
        tap += ["--state", str(state)]
    command += shlex.join(tap)
    if state_substitution:
        command += f" --state <({saved_state})"
    if tap_output is not None:
        command += f" | tee {shlex.quote(str(tap_output))}"
    return command + " | " + shlex.join([str(TARGET), "--config", str(configs.target)])


def persisted_state(configs: Configs) -> dict[str, Any]:
    """What ``target-duckdb-state`` prints for this pipeline."""
    result = subprocess.run(
        [str(TARGET_STATE), "--config", str(configs.target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def entries(state: Mapping[str, Any], account: str | None = None) -> dict[str, dict[str, Any]]:
    """Stream -> its state entry for ``account`` (the tap keeps one per account: the
    SDK's partitions keyed by ``_stripe_account``); ``None``: a state of one account."""
    found = {}
    for stream, stream_state in state.get("bookmarks", {}).items():
        partitions = [
            partition
            for partition in stream_state.get("partitions", [])
            if account is None or partition["context"] == {ACCOUNT_COLUMN: account}
        ]
        assert len(partitions) <= 1, (stream, "a state of many accounts", partitions)
        if partitions:
            found[stream] = partitions[0]
    return found


def bookmarks(state: Mapping[str, Any], account: str | None = None) -> dict[str, int]:
    """Stream -> created bookmark, for the streams that have one."""
    return {
        stream: entry["replication_key_value"]
        for stream, entry in entries(state, account).items()
        if "replication_key_value" in entry
    }


def events_cursors(state: Mapping[str, Any], account: str | None = None) -> dict[str, int]:
    """Stream -> events cursor, for the streams that have one."""
    return {
        stream: entry["events_cursor"]
        for stream, entry in entries(state, account).items()
        if "events_cursor" in entry
    }


def relisted_by_lookback(sim: SimHandle, cursor: int) -> set[str]:
    """The tables a quiet run writes again from the events in its lookback window below
    ``cursor``: the event table's, and the tables of those events' objects."""
    recent = [event for event in sim.objects("event") if event["created"] >= cursor - LOOKBACK]
    objects = {event["data"]["object"]["object"] for event in recent}
    return ({"event"} if recent else set()) | {
        table.name for table in TOP_LEVEL if (table.object or table.name) in objects
    }


def tap_records(path: Path) -> dict[str, list[dict[str, Any]]]:
    """RECORD messages of a saved tap output, by stream."""
    records: dict[str, list[dict[str, Any]]] = {}
    with path.open("rb") as lines:
        for line in lines:
            message = json.loads(line)
            if message["type"] == "RECORD":
                records.setdefault(message["stream"], []).append(message["record"])
    return records


def connect(database: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(database), read_only=True)


def tables(database: Path) -> set[str]:
    with connect(database) as connection:
        rows = connection.execute(
            "select table_name from information_schema.tables where table_schema = ?", [SCHEMA]
        ).fetchall()
    return {name for (name,) in rows} - {STATE_TABLE}


def key_of(table: str, row: Mapping[str, Any]) -> tuple[Any, ...]:
    """The row's key in ``table`` (``(invoice, id)`` for invoice lines)."""
    return tuple(row.get(name) for name in KEYS[table])


def read_table(database: Path, table: str) -> list[dict[str, Any]]:
    """Every row as the JSON object DuckDB makes of it (JSON columns nested), by key.

    Without the table version: it names the run that last read the whole table, which
    differs between runs that land the same data."""
    return read_tables(database, [table])[table]


def read_tables(
    database: Path, names: Iterable[str], account: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """``read_table`` of each of ``names`` (only the rows read from ``account`` when
    given), through one connection: opening the file costs tens of milliseconds, paid
    once, not once per table."""
    with connect(database) as connection:
        return {table: table_rows(connection, table, account) for table in names}


def table_rows(
    connection: duckdb.DuckDBPyConnection, table: str, account: str | None = None
) -> list[dict[str, Any]]:
    """``table``'s rows (of ``account`` when given) through an open connection to a file
    or a lake, as ``read_table`` gives them."""
    where, parameters = (f" where {ACCOUNT_COLUMN} = ?", [account]) if account else ("", [])
    sql = f'select to_json(t) from {SCHEMA}."{table}" t{where}'
    rows = connection.execute(sql, parameters).fetchall()
    found = (without_version(json.loads(row)) for (row,) in rows)
    return sorted(found, key=lambda row: key_of(table, row))


def without_version(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` without the table version and the account it was read from (every row
    carries one; the tests of many accounts read it with ``read_tables``)."""
    row.pop(TABLE_VERSION, None)
    assert str(row.pop(ACCOUNT_COLUMN)).startswith("acct_"), row
    return row


def table_versions(database: Path, table: str) -> dict[str, int | None]:
    """Row id -> ``_sdc_table_version``."""
    with connect(database) as connection:
        rows = connection.execute(f'select id, {TABLE_VERSION} from {SCHEMA}."{table}"').fetchall()
    return dict(rows)


def deleted_at(database: Path, table: str) -> dict[str, float]:
    """Id -> ``_sdc_deleted_at`` (unix seconds) of the rows marked deleted."""
    with connect(database) as connection:
        rows = connection.execute(
            f'select id, epoch({DELETED_AT}) from {SCHEMA}."{table}" where {DELETED_AT} is not null'
        ).fetchall()
    return dict(rows)


def read_all(database: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows, to compare runs: a snapshot table (``balance``, a row per run)
    by its latest row without its stamp."""
    found = {}
    for table, rows in read_tables(database, sorted(tables(database))).items():
        snapshot = TABLES_BY_NAME[table].snapshot_field
        if snapshot is not None and rows:
            latest = max(rows, key=lambda row: row[snapshot])
            rows = [{k: v for k, v in latest.items() if k != snapshot}]
        found[table] = rows
    return found


def columns(database: Path, table: str) -> set[str]:
    with connect(database) as connection:
        rows = connection.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [SCHEMA, table],
        ).fetchall()
    return {name for (name,) in rows}


def row_count(database: Path) -> int:
    with connect(database) as connection:
        return sum(
            connection.execute(f'select count(*) from {SCHEMA}."{table}"').fetchall()[0][0]
            for table in tables(database)
        )


def truth(sim: SimHandle, stream: str, account: str | None = None) -> list[dict[str, Any]]:
    """The simulator's objects (of ``account``; default its main one), nested lists
    completed the way the tap completes them (those expanded for children only are not in
    the parent's rows), by key."""
    objects = sim.objects(stream, account)
    headers = {"Stripe-Account": account} if account and account != sim.account_id else None
    spec = TABLES_BY_NAME[stream]
    for obj in objects:
        for field in spec.child_expand:
            obj.pop(field, None)
    if spec.snapshot_field is not None:
        return objects
    for field, template in NESTED_LISTS.get(stream, {}).items():
        for obj in objects:
            if (obj.get(field) or {}).get("has_more"):
                path, _, query = template.format(id=obj["id"]).partition("?")
                params = {**dict(parse_qsl(query)), "limit": 100}
                page = sim.request(path, params, headers=headers).json()
                assert not page["has_more"]
                obj[field] = {**obj[field], "data": page["data"], "has_more": False}
    return sorted(objects, key=lambda obj: key_of(stream, obj))


def assert_rows_match(
    rows: list[dict[str, Any]], expected: list[dict[str, Any]], table: str
) -> None:
    """Same keys in the same order, every value equal; columns the object lacks are NULL
    (``_sdc_deleted_at`` too: these rows are live). A snapshot table (``balance``, a row
    per run) matches when its latest row is the object."""
    snapshot = TABLES_BY_NAME[table].snapshot_field
    if snapshot is not None:
        latest = max(rows, key=lambda row: row[snapshot])
        rows = [{k: v for k, v in latest.items() if k != snapshot}]
    else:
        found, wanted = [key_of(table, r) for r in rows], [key_of(table, o) for o in expected]
        extra, missing = sorted(set(found) - set(wanted)), sorted(set(wanted) - set(found))
        assert found == wanted, (table, "extra", extra[:5], "missing", missing[:5])
    for row, obj in zip(rows, expected, strict=True):
        key = key_of(table, obj)
        assert set(obj) <= set(row), (table, key, set(obj) - set(row))
        assert {name: row[name] for name in obj} == obj, (table, key)
        assert all(row[name] is None for name in set(row) - set(obj)), (table, key)


def assert_matches_truth(
    database: Path, sim: SimHandle, streams: tuple[str, ...] = STREAMS
) -> None:
    """The schema holds exactly ``streams``, each exactly the simulator's objects."""
    assert tables(database) == set(streams)
    for stream, rows in read_tables(database, streams).items():
        assert_rows_match(rows, truth(sim, stream), stream)


def quiet_run_requests(sim: SimHandle, account: str | None = None) -> int:
    """The requests of a run with nothing new, for ``account`` (default the simulator's
    main one): a list page per top-level list and a GET per single object (the platform's
    own tables only for the platform), the /v1/events queries, and what the tables read
    whole each run cost besides their first page: their further pages and their
    children's lists past Stripe's first 10. A child listed per parent costs nothing: its
    parents did not change since the last run listed them (``relisting.py``)."""
    connected = account is not None and account != sim.account_id
    read = [table for table in TOP_LEVEL if not (connected and platform_only(table))]
    headers = {"Stripe-Account": account} if connected and account else None
    total = len(read) - 1 + EVENTS_REQUESTS  # the event table's list is the pass
    for table in read:
        if table.read is not ReadMode.FULL:
            continue
        parents = sim.objects(table.name, account)
        total += max(0, -(-len(parents) // 100) - 1)
        for child in TABLES:
            if child.parent is None or child.parent.table != table.name:
                continue
            field = child.parent.embedded_field
            if field is None:
                continue
            for parent in parents:
                rows = len(_complete_list(sim, table, parent, field, headers))
                total += -(-(rows - 10) // 100) if rows > 10 else 0
    return total


def _complete_list(
    sim: SimHandle,
    table: TableSpec,
    parent: Mapping[str, Any],
    field: str,
    headers: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every row of ``parent``'s nested list ``field``, from its own endpoint."""
    path, _, query = table.nested_lists[field].format(id=parent["id"]).partition("?")
    page = sim.request(path, {**dict(parse_qsl(query)), "limit": 100}, headers=headers).json()
    rows = page["data"]
    while page["has_more"]:
        params = {**dict(parse_qsl(query)), "limit": 100, "starting_after": rows[-1]["id"]}
        page = sim.request(path, params, headers=headers).json()
        rows += page["data"]
    return rows


def is_events_pass(entry: Mapping[str, Any]) -> bool:
    """Whether a logged request of an incremental run is the run's events pass (every
    /v1/events request of such a run: the event table reads the pass too)."""
    return entry["path"] == EVENTS_PATH


def assert_reads_only_since(
    log: list[dict[str, Any]], state: Mapping[str, Any], quiet_requests: int
) -> None:
    """Every list request of ``log`` (the simulator's request log) asks only for objects
    created at or after its stream's bookmark in ``state`` minus the lookback, and every
    change-capture request only for events since the table's events cursor minus the
    lookback; and the run makes at most a few requests more than ``quiet_requests``."""
    since = bookmarks(state)
    cursors = events_cursors(state)
    assert set(cursors) == set(TRACKED)
    list_requests = [
        entry for entry in log if entry["path"] in LIST_PATHS and not is_listed_child_path(entry)
    ]
    captures = [entry for entry in list_requests if is_events_pass(entry)]
    listed = [entry for entry in list_requests if not is_events_pass(entry)]
    creations = [entry for entry in listed if LIST_PATHS[entry["path"]] not in WHOLE]
    assert {LIST_PATHS[entry["path"]] for entry in creations} == set(since) - {"event"}
    # Tables read whole are listed whole, without a created filter.
    wholes = [parse_qs(entry["query"]) for entry in listed if LIST_PATHS[entry["path"]] in WHOLE]
    assert not any("created[gte]" in query for query in wholes)
    assert captures, "no events pass"
    for entry in creations:
        query = parse_qs(entry["query"])
        stream = LIST_PATHS[entry["path"]]
        if stream in NEWEST_FIRST:  # no created filter: read newest first, one page here
            assert "created[gte]" not in query, entry
            continue
        assert int(query["created[gte]"][0]) >= since[stream] - LOOKBACK, entry
    # The pass reads from the oldest cursor (the event table's bookmark among them), no
    # older, and filters no type.
    oldest = min([*cursors.values(), since["event"]]) - LOOKBACK
    for entry in captures:
        query = parse_qs(entry["query"])
        assert int(query["created[gte]"][0]) >= oldest, entry
        assert not {"type", "types[]"} & set(query), entry
    assert len(log) < quiet_requests + 40, f"{len(log)} requests for a handful of new objects"


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any Meltano or plugin settings a developer may have set."""
    prefixes = ("MELTANO_", "TAP_STRIPE_", "TARGET_DUCKDB_", "STRIPE_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env.update(extra)
    return env


class Pipeline:
    """``tap-stripe`` -> this process -> ``target-duckdb``: real processes, with the test
    deciding how many lines pass, so either side can be killed at a known point."""

    def __init__(self, configs: Configs, *, state_file: Path | None = None) -> None:
        tap = [str(TAP), "--config", str(configs.tap)]
        if state_file is not None:
            tap += ["--state", str(state_file)]
        folder = configs.tap.parent
        self.stderr = (folder / "tap.err").open("wb"), (folder / "target.err").open("wb")
        self.tap = subprocess.Popen(tap, stdout=subprocess.PIPE, stderr=self.stderr[0])
        self.target = subprocess.Popen(
            [str(TARGET), "--config", str(configs.target)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr[1],
        )
        self.forwarded = 0
        self.states: list[dict[str, Any]] = []
        self.bookmark_committed = threading.Event()
        self._reader = threading.Thread(target=self._read_states, daemon=True)
        self._reader.start()

    def _read_states(self) -> None:
        assert self.target.stdout is not None
        for line in self.target.stdout:
            state = json.loads(line)
            self.states.append(state)
            if bookmarks(state):
                self.bookmark_committed.set()

    def forward(self, lines: int | None = None, until: threading.Event | None = None) -> None:
        """Pass ``lines`` more tap lines to the target, or pass lines until ``until`` is set."""
        assert self.tap.stdout is not None and self.target.stdin is not None
        passed = 0
        while (lines is None or passed < lines) and not (until is not None and until.is_set()):
            line = self.tap.stdout.readline()
            assert line, "the tap finished before the point the test wanted"
            self.target.stdin.write(line)
            self.target.stdin.flush()
            passed += 1
        self.forwarded += passed

    def forward_until_record_of(self, stream: str) -> None:
        """Pass tap lines to the target until the first RECORD of ``stream``, which is
        read but not passed."""
        self.forward_until(
            lambda m: m["type"] == "RECORD" and m["stream"] == stream, f"a record of {stream}"
        )

    def forward_until(
        self, stop: Callable[[dict], bool], what: str, *, passing_it: bool = False
    ) -> None:
        """Pass tap lines to the target until the first message ``stop`` holds for, which
        is read and passed only when ``passing_it``."""
        assert self.tap.stdout is not None and self.target.stdin is not None
        while True:
            line = self.tap.stdout.readline()
            assert line, f"the tap finished without {what}"
            found = stop(json.loads(line))
            if found and not passing_it:
                return
            self.target.stdin.write(line)
            self.target.stdin.flush()
            self.forwarded += 1
            if found:
                return

    def end_input(self) -> int:
        """Close the target's input (the tap is gone) and wait for the target to finish."""
        assert self.target.stdin is not None
        self.target.stdin.close()
        return self.wait(self.target)

    def end_output(self) -> int:
        """Close the tap's output (the target is gone) and wait for the tap to stop."""
        assert self.tap.stdout is not None
        self.tap.stdout.close()
        return self.wait(self.tap)

    @staticmethod
    def wait(process: subprocess.Popen) -> int:
        return process.wait(timeout=RUN_TIMEOUT)

    def close(self) -> None:
        for process in (self.tap, self.target):
            if process.poll() is None:
                process.kill()
                process.wait()
        self._reader.join(timeout=RUN_TIMEOUT)
        for file in self.stderr:
            file.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
