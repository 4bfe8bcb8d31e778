"""Change capture end to end: objects created, updated and deleted in the simulator between
runs reach DuckDB through `tap-stripe | target-duckdb`, and after every run each table
equals the simulator's truth, with deleted rows flagged (or gone under ``hard_delete``)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from tap_stripe.client import DEFAULT_API_VERSION
from tap_stripe.family import field_value
from tap_stripe.tables import TABLES_BY_NAME, ParentParam, ReadMode, TableKind, TableSpec

from stripe_sim.runner import SimHandle, run_simulator
from stripe_sim.tables import UPDATABLE, event_for
from tests.e2e.harness import (
    CHILDREN,
    DELETABLE,
    DELETED_AT,
    EVENTED,
    EVENTS_PATH,
    EVENTS_REQUESTS,
    LIST_PATHS,
    LOOKBACK,
    SIM_KNOBS,
    SINGLE_PATHS,
    STREAMS,
    TABLE_OF_OBJECT,
    TAP,
    TRACKED,
    Configs,
    Pipeline,
    assert_rows_match,
    bookmarks,
    child_refetch_table,
    deleted_at,
    entries,
    events_cursors,
    is_events_pass,
    is_listed_child_path,
    is_nested_path,
    key_of,
    owner,
    persisted_state,
    read_table,
    read_tables,
    run_pipe,
    tables,
    tap_records,
    truth,
    write_configs,
)

pytestmark = pytest.mark.e2e

# Every run lists every connected account's persons and capabilities: the mutations
# change persons without changing their account, which the default (relisting.py) leaves
# to the daily listing of every account (tests/tap/test_relisting.py).
RELIST_EVERY_RUN = {"relist_children_hours": 0}
# The simulator's clock runs this far behind the tap's: everything a test changes before
# starting the tap is stamped before the second the tap starts in (which the tap leaves
# to its next run), so no test waits for the clock.
CLOCK_LAG = 2
DAY = 86_400
# Creates, updates and deletes in every table the simulator can change; Stripe cannot
# delete charges, and a deleted subscription is cancelled (an update).
MUTATION: dict[str, dict[str, int]] = {
    "product": {"create": 1, "update": 2, "delete": 1},
    "price": {"create": 2, "update": 2, "delete": 1},
    "coupon": {"create": 1, "update": 1, "delete": 1},
    "customer": {"create": 3, "update": 3, "delete": 2},
    "subscription": {"create": 2, "update": 3, "delete": 2},
    "invoice": {"create": 3, "update": 3, "delete": 2},
    "charge": {"create": 10, "update": 4},
}
# Every other table with events: made from its registry entry alone by the simulator.
MUTATION |= {
    name: {"create": 2, "update": 2 if name in UPDATABLE else 0, "delete": int(name in DELETABLE)}
    for name in TRACKED
    if name not in MUTATION and name != "event"
}
# Children added, changed and removed, each with the events Stripe sends. Not the line
# items of draft quotes (Stripe sends no event when they change: no quote.updated), nor
# usage reported within a subscription's period (no event at all).
MUTATION |= {
    "invoicelineitem": {"create": 2, "update": 1, "delete": 1},
    "subscriptionitem": {"create": 2, "update": 1, "delete": 1},
    "paymentlinklineitem": {"create": 1, "update": 1, "delete": 1},
    "transferreversal": {"create": 1},
    "feerefund": {"create": 1},
    "card": {"create": 1, "update": 1, "delete": 1},
    "bankaccount": {"create": 1, "update": 1, "delete": 1},
    "taxid": {"create": 1, "update": 1, "delete": 1},
    "externalaccount": {"create": 1, "update": 1, "delete": 1},
    "paymentmethod": {"create": 2, "update": 1, "delete": 1},
    "customerbalancetransaction": {"create": 2},
    "customercashbalancetransaction": {"create": 1},
    "setupattempt": {"create": 2},
    "person": {"create": 1, "update": 1, "delete": 1},
    "capability": {"update": 1},
    "payoutbalancetransaction": {"create": 1},
}
# Top-level tables whose deletes arrive as tombstones (children: see assert_equals_truth).
DELETABLE_TOP = frozenset(name for name in DELETABLE if name not in CHILDREN)
# Tables read whole every run that Stripe changes, without an event: each run's read
# retires the rows it did not see. Not tax codes, Stripe's own catalogue.
MUTATION |= {
    "shippingrate": {"create": 1, "update": 1},
    "paymentlink": {"create": 1, "update": 1},
    "connectedaccount": {"create": 1, "update": 1, "delete": 1},
}
# Top-level tables whose deletes reach DuckDB: as tombstones, or retired by a read.
DELETED_TOP = DELETABLE_TOP | {"connectedaccount"}
# A payout pays out the funds available: after the first round's, none are left.
LATER_MUTATION = {name: ops for name, ops in MUTATION.items() if name != "payoutbalancetransaction"}


def unannounced(
    sim: SimHandle, stream: str, deleted: Mapping[str, set[str]]
) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a row of ``stream`` went without Stripe saying so, so that it stays as last
    seen (README, "Tables"): a removed subscription item's usage summaries; a deleted
    parent's rows its deletion event does not list; a row removed past the first 10 of
    its parent's list, which no update event's ``previous_attributes`` (a first page)
    names."""
    spec = TABLES_BY_NAME[stream]
    parent = spec.parent
    if parent is None:
        return lambda row: False
    column = parent.column
    if parent.table in CHILDREN:
        removed_parents = {row["id"] for row in sim.removed(parent.table)}
        return lambda row: row.get(column) in removed_parents
    if parent.embedded_field is None or owner(spec).read is ReadMode.FULL or spec.event_types:
        gone = deleted.get(parent.table, set())
        return lambda row: row.get(column) in gone
    field, kinds = parent.embedded_field, TABLES_BY_NAME[parent.table].object
    gone = deleted.get(parent.table, set())
    named: set[tuple[str, str]] = set()
    for event in sim.objects("event"):
        obj = event["data"]["object"]
        if obj.get("object") != kinds:
            continue
        lists = [obj] if obj.get("id") in gone else []
        lists.append(event["data"].get("previous_attributes") or {})
        for holder in lists:
            rows = (holder.get(field) or {}).get("data", [])
            named |= {(obj["id"], row.get("id")) for row in rows if isinstance(row, dict)}
    removed = {(row[column], row["id"]) for row in sim.removed(stream)}
    return lambda row: (
        (row.get(column), row.get("id")) not in named
        and (row.get(column) in gone or (row.get(column), row.get("id")) in removed)
    )


@pytest.fixture
def sim() -> Iterator[SimHandle]:
    """A simulator of the test's own (they mutate it), its clock CLOCK_LAG seconds behind."""
    with run_simulator(**SIM_KNOBS, now=int(time.time()) - CLOCK_LAG) as handle:
        yield handle


class Deletions:
    """Ids deleted from the simulator so far, by top-level table (the tables the tap
    tombstones); children's removals come from the simulator's truth."""

    def __init__(self) -> None:
        self.ids: dict[str, set[str]] = {stream: set() for stream in DELETED_TOP}

    def mutate(self, sim: SimHandle, **mutation: dict[str, int]) -> dict[str, Any]:
        """Apply ``mutation``; fail unless every table was created in, updated and deleted
        from as asked (so no test passes on a mutation that did nothing)."""
        summary = sim.mutate(**mutation)
        for stream, ops in mutation.items():
            for op, count in ops.items():
                assert len(summary[op].get(stream, [])) >= min(count, 1), (stream, op, summary)
        for stream, ids in summary["delete"].items():
            if stream in DELETED_TOP:
                self.ids[stream] |= set(ids)
        return summary

    def seen_by_catch_up(self, summary: Mapping[str, Any]) -> dict[str, set[str]]:
        """The deleted ids without those ``summary``'s mutation both created and deleted:
        a catch-up re-read never sees them, so they get no row (change capture writes
        their tombstone from the ``*.deleted`` event)."""
        return {
            stream: ids - set(summary["create"].get(stream, [])) for stream, ids in self.ids.items()
        }


def live_keys(database: Path) -> dict[str, set[tuple[Any, ...]]]:
    """Per child table, the keys of its live rows (to check their removals next run)."""
    return {
        stream: {key_of(stream, r) for r in rows if not r.get(DELETED_AT)}
        for stream, rows in read_tables(database, CHILDREN).items()
    }


def assert_equals_truth(
    database: Path,
    sim: SimHandle,
    deleted: Mapping[str, set[str]],
    *,
    hard: bool = False,
    live_before: Mapping[str, set[tuple[Any, ...]]] | None = None,
) -> None:
    """Every table: its live rows exactly the simulator's objects. A top-level table's
    rows marked deleted are exactly the ``deleted`` ids; a child's are rows the simulator
    removed, among them every one that was live before (``live_before``). None is left
    marked under ``hard_delete``."""
    assert tables(database) == set(STREAMS)
    for stream, read in read_tables(database, STREAMS).items():
        left = unannounced(sim, stream, deleted)
        rows = [row for row in read if not left(row)]
        live = [row for row in rows if row.get(DELETED_AT) is None]
        assert_rows_match(live, truth(sim, stream), stream)
        if stream in CHILDREN:
            gone = {key_of(stream, row) for row in rows if row.get(DELETED_AT) is not None}
            removed = {key_of(stream, row) for row in sim.removed(stream) if not left(row)}
            assert gone <= (set() if hard else removed), (stream, gone - removed)
            before = (live_before or {}).get(stream, set())
            if not hard:
                assert before & removed <= gone, (stream, (before & removed) - gone)
            continue
        gone_ids = {row["id"] for row in rows if row.get(DELETED_AT) is not None}
        expected = set() if hard else deleted.get(stream, set())
        assert gone_ids == expected, stream


def deletion_events(sim: SimHandle) -> dict[str, dict[str, Any]]:
    """Object id -> the ``*.deleted`` event of a deletable table's object."""
    found = {}
    for event in sim.objects("event"):
        obj = event["data"]["object"]
        table = _table_of(obj)
        if table in DELETABLE and TABLES_BY_NAME[table].is_delete_event(event["type"]):
            found[obj["id"]] = event
    return found


def assert_tombstones_from_events(database: Path, sim: SimHandle, deleted: Deletions) -> None:
    """Rows deleted through events hold the object as its ``*.deleted`` event carried it,
    and ``_sdc_deleted_at`` is that event's time."""
    events = deletion_events(sim)
    for stream, ids in ((s, i) for s, i in deleted.ids.items() if s in DELETABLE_TOP):
        rows = {row["id"]: row for row in read_table(database, stream) if row["id"] in ids}
        times = deleted_at(database, stream)
        for object_id in ids:
            event = events[object_id]
            row = dict(rows[object_id])
            row.pop(DELETED_AT)
            assert_rows_match([row], [event["data"]["object"]], stream)
            assert times[object_id] == event["created"], (stream, object_id)


def _table_of(obj: Mapping[str, Any]) -> str:
    return TABLE_OF_OBJECT.get(str(obj.get("object") or ""), "")


def expected_refetches(
    sim: SimHandle, cursors: Mapping[str, int], api_version: str = DEFAULT_API_VERSION
) -> dict[str, set[str]]:
    """Per evented table, the ids whose events since the cursor of the table (or of its
    parent) minus the lookback the tap cannot trust: the newest one is at another API
    version, or two share the newest second, or the table expands fields that events
    never do. Objects with a delete event are tombstones instead."""
    events: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for event in sim.objects("event"):
        obj = event["data"]["object"]
        table = _table_of(obj)
        spec = TABLES_BY_NAME.get(table)
        if spec is None or owner(spec).name not in cursors or not obj.get("id"):
            continue
        if event["created"] < cursors[owner(spec).name] - LOOKBACK:
            continue
        if any(fnmatchcase(event["type"], kind) for kind in spec.event_types):
            events.setdefault((table, obj["id"]), []).append(event)
    refetch: dict[str, set[str]] = {
        t: set() for t in EVENTED if owner(TABLES_BY_NAME[t]).name in cursors
    }
    for (table, object_id), found in events.items():
        spec = TABLES_BY_NAME[table]
        if any(spec.is_delete_event(event["type"]) for event in found):
            continue
        newest = max(event["created"] for event in found)
        last = [event for event in found if event["created"] == newest]
        if spec.expand or len(last) > 1 or last[0]["api_version"] != api_version:
            refetch[table].add(object_id)
    return refetch


def refetched(log: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    """(table, id) -> how often the run retrieved that object by id."""
    counts: Counter[tuple[str, str]] = Counter()
    for entry in log:
        head, _, object_id = entry["path"].rpartition("/")
        table = child_refetch_table(entry["path"])
        if table is not None:
            counts[(table, object_id)] += 1
        elif head in LIST_PATHS and object_id:
            counts[(LIST_PATHS[head], object_id)] += 1
    return counts


def request_kinds(log: list[dict[str, Any]]) -> Counter[str]:
    """The run's requests by kind: list pages, /v1/events pages of change capture,
    re-fetches by id, completions of nested lists, lists of children read per parent,
    the single objects."""
    kinds: Counter[str] = Counter()
    for entry in log:
        path = entry["path"]
        if is_events_pass(entry):
            kinds["events"] += 1
        elif is_listed_child_path(entry):
            kinds["children"] += 1
        elif path in LIST_PATHS:
            kinds["list"] += 1
        elif path in SINGLE_PATHS:
            kinds["single"] += 1
        elif is_nested_path(path):
            kinds["nested"] += 1
        elif path.rpartition("/")[0] in LIST_PATHS or child_refetch_table(path):
            kinds["refetch"] += 1
        else:
            kinds[path] += 1
    return kinds


LISTED_CHILDREN = tuple(
    spec for spec in TABLES_BY_NAME.values() if spec.kind is TableKind.PER_PARENT_CHILD
)


def listed_parents(log: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    """Per child listed per parent, how often the run listed each parent's rows."""
    found: dict[str, Counter[str]] = {spec.name: Counter() for spec in LISTED_CHILDREN}
    for entry in log:
        if not is_listed_child_path(entry):
            continue
        query = parse_qs(entry["query"])
        for spec in LISTED_CHILDREN:
            parent = spec.parent
            if parent.location is ParentParam.QUERY:
                if entry["path"] == spec.path and parent.parameter in query:
                    found[spec.name][query[parent.parameter][0]] += 1
                continue
            pattern = re.escape(spec.path).replace(
                re.escape(f"{{{parent.parameter}}}"), "(?P<parent>[^/]+)"
            )
            matched = re.fullmatch(pattern, entry["path"])
            if matched:
                found[spec.name][matched["parent"]] += 1
    return found


def expected_listed_parents(sim: SimHandle, state: Mapping[str, Any]) -> dict[str, set[str]]:
    """The read rule of children listed per parent, for an incremental run from ``state``:
    every parent of a table read whole; none for a child with events of its own; else the
    parents the run lists (created since the bookmark minus the lookback) and those whose
    events since the cursor minus the lookback changed a field the child follows, of
    those Stripe has the list for (``only_if``)."""
    since, cursors = bookmarks(state), events_cursors(state)
    events = sim.objects("event")
    expected: dict[str, set[str]] = {}
    for spec in LISTED_CHILDREN:
        top = owner(spec)
        if top.name not in since:
            expected[spec.name] = {obj["id"] for obj in _parents(sim, spec, sim.objects(top.name))}
            continue
        if spec.event_types:
            expected[spec.name] = set()
            continue
        listed = [
            o for o in truth(sim, top.name) if o[top.created_field] >= since[top.name] - LOOKBACK
        ]
        changed: dict[str, dict[str, Any]] = {}
        deleted_ids: set[str] = set()
        for event in sorted(events, key=lambda e: e["created"]):
            obj = event["data"]["object"]
            if obj.get("object") != top.object or event["created"] < cursors[top.name] - LOOKBACK:
                continue
            if not any(fnmatchcase(event["type"], kind) for kind in top.event_types):
                continue
            if top.is_delete_event(event["type"]):
                deleted_ids.add(obj["id"])
            fields = set(event["data"].get("previous_attributes") or {})
            refresh_on = set(spec.parent.refresh_on)
            if not refresh_on or fields & refresh_on:
                changed[obj["id"]] = obj
        current = {o["id"]: o for o in truth(sim, top.name)}
        changed_now = [current.get(i, o) for i, o in changed.items() if i not in deleted_ids]
        expected[spec.name] = {o["id"] for o in _parents(sim, spec, listed + changed_now)}
    return expected


def _parents(sim: SimHandle, spec: TableSpec, tops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The parents of ``spec`` among ``tops`` (for a child of a child, the rows of that
    child under ``tops``), those Stripe has its list for."""
    parent = spec.parent
    if parent.table != owner(spec).name:
        middle = TABLES_BY_NAME[parent.table]
        ids = {top["id"] for top in tops}
        tops = [row for row in truth(sim, middle.name) if row[middle.parent.column] in ids]
    return [
        obj
        for obj in tops
        if all(field_value(obj, key) == value for key, value in parent.only_if.items())
    ]


def incremental_run(configs: Configs, sim: SimHandle, tap_output: Path) -> list[dict[str, Any]]:
    """One run from the persisted state; returns the simulator's log of its requests."""
    sim.reset_stats()
    run_pipe(configs, resume=True, tap_output=tap_output)
    return sim.stats(log=True)["log"]


def assert_incremental_requests(
    log: list[dict[str, Any]], refetch: Mapping[str, set[str]]
) -> Counter[str]:
    """One page per list and per change-capture query (the changes are few), each
    expected object re-fetched once and nothing else but nested-list completions."""
    kinds = request_kinds(log)
    lists = Counter(
        entry["path"]
        for entry in log
        if entry["path"] in LIST_PATHS
        and not is_listed_child_path(entry)
        and not is_events_pass(entry)
    )
    # One page per table; the event table reads the run's one events pass.
    assert set(lists) == set(LIST_PATHS) - {EVENTS_PATH}, lists
    assert all(count == 1 for count in lists.values()), lists
    # The one events pass (its pages, and the partial page of each window it split into
    # when dense; a quiet run's single page is asserted by test_resume_one_liner).
    assert kinds["events"] >= EVENTS_REQUESTS, kinds
    assert kinds["single"] == len(SINGLE_PATHS)
    fetched = refetched(log)
    assert all(count == 1 for count in fetched.values()), fetched
    # By id (Stripe's ids name their kind): cards and bank accounts share a path.
    assert {i for _, i in fetched} == {i for ids in refetch.values() for i in ids}
    assert set(kinds) <= {"list", "events", "single", "refetch", "nested", "children"}, kinds
    return kinds


@pytest.mark.parametrize("hard", [False, True], ids=["soft-delete", "hard-delete"])
def test_updates_and_deletes_reach_duckdb_after_every_run(
    sim: SimHandle, tmp_path: Path, hard: bool
) -> None:
    configs = write_configs(tmp_path, sim, tap=RELIST_EVERY_RUN, target={"hard_delete": hard})
    run_pipe(configs)
    deleted = Deletions()
    assert_equals_truth(configs.database, sim, deleted.ids, hard=hard)

    for round_number in (1, 2):
        state = persisted_state(configs)
        cursors = events_cursors(state)
        assert set(cursors) == set(TRACKED)
        before = live_keys(configs.database)
        deleted.mutate(sim, **(MUTATION if round_number == 1 else LATER_MUTATION))
        refetch = expected_refetches(sim, cursors)
        log = incremental_run(configs, sim, tmp_path / f"run{round_number}.jsonl")

        assert_equals_truth(configs.database, sim, deleted.ids, hard=hard, live_before=before)
        if not hard:
            assert_tombstones_from_events(configs.database, sim, deleted)
        kinds = assert_incremental_requests(log, refetch)
        # Events at the pinned version are trusted: only objects with two events in
        # their newest second (created and updated in one mutation), and those of
        # tables that expand what events never do, are re-fetched.
        assert kinds["refetch"] == sum(map(len, refetch.values()))
        # Children listed per parent: exactly the parents the read rule names, each at
        # most twice (a new parent that also changed is written from both passes).
        listed = listed_parents(log)
        for child, parents in expected_listed_parents(sim, state).items():
            assert set(listed[child]) == parents, (child, set(listed[child]) ^ parents)
            assert all(count <= 2 for count in listed[child].values()), (child, listed[child])
        assert kinds["children"] == sum(sum(c.values()) for c in listed.values())
        print(f"round {round_number}: {len(log)} requests {dict(kinds)}")
    state = persisted_state(configs)
    assert all(cursor > cursors[table] for table, cursor in events_cursors(state).items())


def test_events_at_another_api_version_are_refetched(sim: SimHandle, tmp_path: Path) -> None:
    configs = write_configs(tmp_path, sim, tap=RELIST_EVERY_RUN)
    run_pipe(configs)
    cursors = events_cursors(persisted_state(configs))
    sim.set_knobs(other_api_version_rate=1.0)
    deleted = Deletions()
    summary = deleted.mutate(sim, **MUTATION)
    refetch = expected_refetches(sim, cursors)
    tap_output = tmp_path / "run.jsonl"
    log = incremental_run(configs, sim, tap_output)

    # Every object changed (not deleted) in a tracked table is re-fetched, once; a new
    # object only where Stripe reports its creation with an event.
    for stream in TRACKED:
        created = set(summary["create"].get(stream, [])) if event_for(stream, "created") else set()
        changed = created | set(summary["update"].get(stream, []))
        if stream not in DELETABLE:
            changed |= set(summary["delete"].get(stream, []))
        assert changed - deleted.ids.get(stream, set()) <= refetch[stream], stream
    kinds = assert_incremental_requests(log, refetch)
    print(f"other API version: {len(log)} requests {dict(kinds)}")

    # The old-version payloads leave null fields out; what the tap wrote has them all.
    truths = {stream: {obj["id"]: obj for obj in truth(sim, stream)} for stream in TRACKED}
    slim = [
        event
        for event in sim.objects("event")
        if event["api_version"] != DEFAULT_API_VERSION
        and (obj := event["data"]["object"])["id"] in truths.get(_table_of(obj), {})
        and set(truths[_table_of(obj)][obj["id"]]) - set(obj)
    ]
    assert slim, "no event payload left a field out: the test would prove nothing"
    for stream, records in tap_records(tap_output).items():
        for record in records:
            if record.get("id") in truths.get(stream, {}):
                assert set(truths[stream][record["id"]]) <= set(record), (stream, record["id"])
    assert_equals_truth(configs.database, sim, deleted.ids)


def _catch_up_state(state: dict[str, Any], *, cursor: int | None) -> dict[str, Any]:
    """``state`` with every tracked table's events cursor at ``cursor`` (None: removed,
    as in state written before change capture)."""
    for stream in TRACKED:
        entry = entries(state)[stream]
        if cursor is None:
            del entry["events_cursor"]
        else:
            entry["events_cursor"] = cursor
    return state


@pytest.mark.parametrize(
    ("cursor_age_days", "hard"),
    [(40, False), (None, True)],
    ids=["cursor-40-days-old-soft-delete", "no-cursor-hard-delete"],
)
def test_catch_up_when_events_cannot_be_read(
    sim: SimHandle, tmp_path: Path, cursor_age_days: int | None, hard: bool
) -> None:
    configs = write_configs(tmp_path, sim, tap=RELIST_EVERY_RUN, target={"hard_delete": hard})
    run_pipe(configs)
    deleted = Deletions()
    summary = deleted.mutate(sim, **MUTATION)
    cursor = None if cursor_age_days is None else int(time.time()) - cursor_age_days * DAY
    before = persisted_state(configs)
    state_file = tmp_path / "old-state.json"
    state_file.write_text(json.dumps(_catch_up_state(before, cursor=cursor)))

    sim.reset_stats()
    run = run_pipe(configs, state=state_file)
    log = sim.stats(log=True)["log"]

    warnings = [line for line in run.stderr.splitlines() if "CATCH-UP" in line]
    for stream in STREAMS:
        mine = [line for line in warnings if f"'{stream}'" in line]
        assert len(mine) == (1 if stream in TRACKED else 0), (stream, mine)
    assert len(warnings) == len(TRACKED), warnings
    # No change capture: the only events read are the event table's, from its bookmark.
    event_since = bookmarks(before)["event"] - LOOKBACK
    passes = [parse_qs(entry["query"]) for entry in log if is_events_pass(entry)]
    assert passes and all(int(q["created[gte]"][0]) >= event_since for q in passes), passes
    assert not refetched(log)
    assert_equals_truth(configs.database, sim, deleted.seen_by_catch_up(summary), hard=hard)
    after = persisted_state(configs)
    assert events_cursors(after).keys() == set(TRACKED)
    assert all(value >= bookmarks(before)[s] for s, value in bookmarks(after).items())

    # The next run is an ordinary incremental one again; its lookback re-reads the
    # events of the mutation above, tombstoning also the objects the catch-up never saw.
    deleted.mutate(sim, customer={"update": 1, "delete": 1}, charge={"create": 2})
    sim.reset_stats()
    run = run_pipe(configs, resume=True)
    assert "CATCH-UP" not in run.stderr
    log = sim.stats(log=True)["log"]
    assert any(is_events_pass(entry) for entry in log)
    assert_equals_truth(configs.database, sim, deleted.ids, hard=hard)


def test_interrupted_catch_up_starts_over(sim: SimHandle, tmp_path: Path) -> None:
    """A catch-up killed half-way leaves the tables it had not finished at their old
    cursor: the next run catches those up again, and no delete is missed."""
    configs = write_configs(tmp_path, sim, tap=RELIST_EVERY_RUN)
    run_pipe(configs)
    deleted = Deletions()
    # Only objects the first sync saw are deleted: both catch-ups and change capture
    # then owe the same tombstones.
    deleted.mutate(
        sim,
        **{stream: {"update": 2 * (stream in UPDATABLE), "delete": 1} for stream in DELETABLE},
    )
    old = int(time.time()) - 40 * DAY
    state_file = tmp_path / "old-state.json"
    state_file.write_text(json.dumps(_catch_up_state(persisted_state(configs), cursor=old)))

    def some_caught_up(message: dict) -> bool:
        if message["type"] != "STATE":
            return False
        cursors = set(events_cursors(message["value"]).values())
        return old in cursors and len(cursors) > 1

    with Pipeline(configs, state_file=state_file) as pipeline:
        # Tables are caught up at once: kill once some are done and some are not.
        pipeline.forward_until(some_caught_up, "a catch-up done", passing_it=True)
        pipeline.tap.kill()
        assert pipeline.wait(pipeline.tap) == -9
        assert pipeline.end_input() == 0

    cursors = events_cursors(persisted_state(configs))
    behind = {stream for stream, cursor in cursors.items() if cursor == old}
    assert behind, cursors
    assert behind < set(TRACKED), "the kill came before any catch-up completed"
    run = run_pipe(configs, resume=True)
    caught_up = {stream for stream in TRACKED if f"'{stream}': CATCH-UP" in run.stderr}
    assert caught_up == behind
    assert_equals_truth(configs.database, sim, deleted.ids)
    assert old not in events_cursors(persisted_state(configs)).values()


def _select_customer_fields(configs: Configs, fields: set[str], folder: Path) -> Path:
    """A catalog selecting ``fields`` of customer (plus its automatic ones), nothing else."""
    discovered = subprocess.run(
        [str(TAP), "--config", str(configs.tap), "--discover"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    catalog = json.loads(discovered.stdout)
    for entry in catalog["streams"]:
        wanted = entry["tap_stream_id"] == "customer"
        for metadata in entry["metadata"]:
            breadcrumb = metadata["breadcrumb"]
            if not breadcrumb:
                metadata["metadata"]["selected"] = wanted
            elif wanted and len(breadcrumb) == 2:
                metadata["metadata"]["selected"] = breadcrumb[-1] in fields
    path = folder / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def test_field_selection_keeps_deletes(sim: SimHandle, tmp_path: Path) -> None:
    """A selection of some fields still lands deletes (``_sdc_deleted_at`` is automatic)."""
    configs = write_configs(tmp_path, sim, tap=RELIST_EVERY_RUN)
    catalog = _select_customer_fields(configs, {"email"}, tmp_path)
    run_pipe(configs, catalog=catalog)
    deleted = Deletions()
    deleted.mutate(sim, customer={"update": 1, "delete": 2})
    run_pipe(configs, resume=True, catalog=catalog)

    assert set(deleted_at(configs.database, "customer")) == deleted.ids["customer"]
    live = {row["id"]: row for row in read_table(configs.database, "customer")}
    for obj in truth(sim, "customer"):
        assert live[obj["id"]]["email"] == obj["email"]
